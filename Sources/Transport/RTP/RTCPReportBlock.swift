import MeetKitNet

/// A reception report block of SR and RR (RFC 3550 §6.4.1).
public struct RTCPReportBlock: Sendable, Hashable {
    /// The source reported on.
    public var ssrc: UInt32
    /// Fraction lost since the last report, in 1/256.
    public var fractionLost: UInt8
    /// Cumulative packets lost (24-bit signed).
    public var cumulativeLost: Int32
    /// Extended highest sequence number received.
    public var highestSequence: UInt32
    /// Interarrival jitter in timestamp units.
    public var jitter: UInt32
    /// Middle 32 bits of the NTP timestamp of the last SR received (LSR).
    public var lastSenderReport: UInt32
    /// Delay since that SR, in 1/65536 s (DLSR).
    public var delaySinceLastSenderReport: UInt32

    /// A block from its fields.
    public init(
        ssrc: UInt32, fractionLost: UInt8 = 0, cumulativeLost: Int32 = 0, highestSequence: UInt32 = 0,
        jitter: UInt32 = 0,
        lastSenderReport: UInt32 = 0, delaySinceLastSenderReport: UInt32 = 0
    ) {
        self.ssrc = ssrc
        self.fractionLost = fractionLost
        self.cumulativeLost = cumulativeLost
        self.highestSequence = highestSequence
        self.jitter = jitter
        self.lastSenderReport = lastSenderReport
        self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }
}

extension RTCPReportBlock {
    /// `count` blocks of 24 bytes from `b` at `start`.
    static func parse(_ b: [UInt8], at start: Int, count: Int) throws(RTPError) -> [RTCPReportBlock] {
        guard b.count >= start + 24 * count else { throw .truncated(needed: start + 24 * count, available: b.count) }
        return (0..<count).map { i in
            let o = start + 24 * i
            let lost = Int32(bitPattern: UInt32(b[o + 5]) << 24 | UInt32(b[o + 6]) << 16 | UInt32(b[o + 7]) << 8) >> 8
            return RTCPReportBlock(
                ssrc: be32(b, o), fractionLost: b[o + 4], cumulativeLost: lost, highestSequence: be32(b, o + 8),
                jitter: be32(b, o + 12), lastSenderReport: be32(b, o + 16), delaySinceLastSenderReport: be32(b, o + 20))
        }
    }

    /// The block's 24 bytes.
    func serialize(into body: inout [UInt8]) {
        putBE32(&body, ssrc)
        body.append(fractionLost)
        let lost = UInt32(bitPattern: cumulativeLost) & 0x00FF_FFFF
        body += [UInt8(lost >> 16), UInt8((lost >> 8) & 0xFF), UInt8(lost & 0xFF)]
        for v in [highestSequence, jitter, lastSenderReport, delaySinceLastSenderReport] { putBE32(&body, v) }
    }
}
