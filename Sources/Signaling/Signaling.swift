// Signaling — joining rooms on real servers: the Janus VideoRoom adapter first, LiveKit
// next, behind one server-agnostic protocol; WebSocket transport, request/response
// correlation and typed server errors.
//
// Not implemented yet: this module is deliberately empty until its issue lands.
// Documentation/Architecture.md describes what it will own.
