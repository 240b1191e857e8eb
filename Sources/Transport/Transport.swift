// Transport — PeerConnection with ICE/STUN, DTLS (OpenSSL), SRTP (libsrtp2), RTP/RTCP and
// data channels, as sans-IO protocol machines under a thin async driver.
//
// Not implemented yet: this module is deliberately empty until the "Transport I" and
// "Transport II" issues land. Documentation/Architecture.md describes what it will own.
