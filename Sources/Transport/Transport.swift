// The Transport layer as one import: its modules, bottom to top — addresses and datagrams
// (MeetKitNet), SDP (MeetKitSDP), STUN and ICE (MeetKitICE), RTP and RTCP (MeetKitRTP),
// DTLS and SRTP (MeetKitDTLS), SCTP for data channels (MeetKitSCTP) — under the secure transport, the UDP driver and the
// PeerConnection defined here.

@_exported import MeetKitDTLS
@_exported import MeetKitICE
@_exported import MeetKitNet
@_exported import MeetKitRTP
@_exported import MeetKitSCTP
@_exported import MeetKitSDP
