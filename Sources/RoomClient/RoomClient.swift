// RoomClient — rooms, participants, tracks and events, independent of the server; composes
// Signaling, Transport and Codec.
//
// Not implemented yet: this module is deliberately empty until its issue lands.
// Documentation/Architecture.md describes what it will own.
