// MeetKit: the whole SDK in one import, for integrators who want it all.
//
//     import MeetKit   // Codec, Transport, Signaling and RoomClient
//
// Each layer stays a product of its own (`import Codec` for a file tool, `import Transport`
// for a peer-to-peer call): see Documentation/Architecture.md.

@_exported import Codec
@_exported import RoomClient
@_exported import Signaling
@_exported import Transport
