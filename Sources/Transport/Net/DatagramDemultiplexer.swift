/// What a datagram on a WebRTC socket carries, told by its first byte (RFC 7983 §7, as
/// updated by RFC 9443): STUN, DTLS, or RTP/RTCP share one 5-tuple.
public enum DatagramKind: Sendable, Hashable {
    /// 0–3: STUN (ICE checks, consent, keep-alives).
    case stun
    /// 16–19: ZRTP (not used by WebRTC).
    case zrtp
    /// 20–63: DTLS records.
    case dtls
    /// 64–79: TURN channel data.
    case turnChannel
    /// 128–191: RTP or RTCP (SRTP/SRTCP).
    case rtp
    /// Anything else: drop.
    case unknown

    /// Classifies a datagram; empty datagrams are `unknown`. Inlined into callers, so the
    /// receive path reads the first byte of its array without generic indirection.
    @inlinable
    public init<C: Collection>(_ datagram: C) where C.Element == UInt8 {
        self.init(firstByte: datagram.first)
    }

    /// Classifies a datagram by its first byte (nil: empty).
    public init(firstByte: UInt8?) {
        guard let first = firstByte else {
            self = .unknown
            return
        }
        switch first {
        case 0...3: self = .stun
        case 16...19: self = .zrtp
        case 20...63: self = .dtls
        case 64...79: self = .turnChannel
        case 128...191: self = .rtp
        default: self = .unknown
        }
    }
}
