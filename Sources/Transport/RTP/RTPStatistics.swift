import Codec
import MeetKitNet

/// Reception statistics of one incoming RTP stream (RFC 3550 §6.4.1, algorithms of
/// appendix A.3 and A.8): packets, loss, interarrival jitter, and the report block an RR
/// or SR carries back to the sender. Sans-IO: arrival times are given by the caller.
///
/// ```swift
/// var stats = RTPReceiveStatistics(ssrc: packet.header.ssrc, clockRate: 48_000)
/// stats.record(sequenceNumber: seq, rtpTimestamp: ts, arrival: now)
/// let block = stats.makeReportBlock(now: now)   // for the next RR
/// ```
public struct RTPReceiveStatistics: Sendable {
    /// The stream's SSRC.
    public let ssrc: UInt32
    /// The payload format's clock rate.
    public let clockRate: Int
    /// Packets received (duplicates included, as RFC 3550 counts them).
    public private(set) var packetsReceived = 0
    /// Payload bytes received.
    public private(set) var bytesReceived = 0
    /// Interarrival jitter estimate in timestamp units (RFC 3550 §6.4.1).
    public private(set) var jitter: Double = 0
    private var sequence = SequenceUnwrapper(bits: 16)
    private var baseSequence: Int64?
    private var lastTransit: Double?
    private var expectedPrior: Int64 = 0
    private var receivedPrior = 0
    private var lastSenderReport: (ntpMiddle: UInt32, arrival: Duration)?

    /// Statistics for `ssrc` on a `clockRate` clock.
    public init(ssrc: UInt32, clockRate: Int) {
        self.ssrc = ssrc
        self.clockRate = max(1, clockRate)
    }

    /// The extended highest sequence number received.
    public private(set) var highestSequence: Int64?

    /// Packets expected from the first to the highest sequence number.
    public var packetsExpected: Int64 {
        guard let base = baseSequence, let high = highestSequence else { return 0 }
        return high - base + 1
    }

    /// Cumulative packets lost (negative with duplicates), as reported.
    public var cumulativeLost: Int64 { packetsExpected - Int64(packetsReceived) }

    /// Records a packet's arrival.
    public mutating func record(sequenceNumber: UInt16, rtpTimestamp: UInt32, arrival: Duration, payloadBytes: Int = 0)
    {
        record(
            extendedSequenceNumber: sequence.unwrap(UInt64(sequenceNumber)), rtpTimestamp: rtpTimestamp,
            arrival: arrival, payloadBytes: payloadBytes)
    }

    /// Records a packet's arrival by its sequence number already extended to 64 bits (by
    /// the receiver that unwraps it once for everything it feeds).
    public mutating func record(
        extendedSequenceNumber extended: Int64, rtpTimestamp: UInt32, arrival: Duration, payloadBytes: Int = 0
    ) {
        if highestSequence == nil || extended > highestSequence! { highestSequence = extended }
        if baseSequence == nil || extended < baseSequence! { baseSequence = extended }
        packetsReceived += 1
        bytesReceived += payloadBytes
        // Transit time in timestamp units; jitter is its smoothed absolute difference.
        let arrivalUnits = arrival.seconds * Double(clockRate)
        let transit = arrivalUnits - Double(rtpTimestamp)
        if let last = lastTransit {
            var d = abs(transit - last)
            // A timestamp wrap looks like a jump of 2³² units: ignore such jumps.
            if d > Double(UInt32.max) / 2 { d = 0 }
            jitter += (d - jitter) / 16
        }
        lastTransit = transit
    }

    /// Records a sender report for this stream, for LSR/DLSR in the next report block.
    public mutating func recordSenderReport(ntpTimestamp: UInt64, arrival: Duration) {
        lastSenderReport = (UInt32((ntpTimestamp >> 16) & 0xFFFF_FFFF), arrival)
    }

    /// The report block for the next RR or SR, and starts a new reporting interval.
    public mutating func makeReportBlock(now: Duration) -> RTCPReportBlock {
        let expected = packetsExpected
        let expectedInterval = expected - expectedPrior
        let receivedInterval = Int64(packetsReceived - receivedPrior)
        expectedPrior = expected
        receivedPrior = packetsReceived
        let lostInterval = expectedInterval - receivedInterval
        let fraction: UInt8 =
            expectedInterval == 0 || lostInterval <= 0 ? 0 : UInt8(min(255, (lostInterval << 8) / expectedInterval))
        var lsr: UInt32 = 0
        var dlsr: UInt32 = 0
        if let sr = lastSenderReport {
            lsr = sr.ntpMiddle
            dlsr = UInt32(clamping: Int64((now - sr.arrival).seconds * 65536))
        }
        return RTCPReportBlock(
            ssrc: ssrc, fractionLost: fraction,
            cumulativeLost: Int32(clamping: max(-0x80_0000, min(0x7F_FFFF, cumulativeLost))),
            highestSequence: UInt32(truncatingIfNeeded: highestSequence ?? 0), jitter: UInt32(jitter.rounded()),
            lastSenderReport: lsr, delaySinceLastSenderReport: dlsr)
    }
}

/// NTP-format timestamps (RFC 3550 §4) from a sans-IO clock, and round-trip time from
/// report blocks (RFC 3550 §6.4.1).
public enum RTCPTime {
    /// 64-bit NTP timestamp (32.32 fixed point seconds) for a time since the clock's origin.
    public static func ntp(_ time: Duration) -> UInt64 {
        let (seconds, atto) = time.components
        let fraction = UInt64(Double(atto) / 1e18 * 4_294_967_296)
        return UInt64(max(0, seconds)) << 32 | min(fraction, 0xFFFF_FFFF)
    }

    /// An NTP timestamp as a time since its clock's origin.
    public static func duration(_ ntp: UInt64) -> Duration {
        .seconds(Int64(ntp >> 32)) + .nanoseconds(Int64(((ntp & 0xFFFF_FFFF) * 1_000_000_000) >> 32))
    }

    /// The middle 32 bits of an NTP timestamp (what LSR echoes).
    public static func middle(_ ntp: UInt64) -> UInt32 { UInt32((ntp >> 16) & 0xFFFF_FFFF) }

    /// Round-trip time from a report block about one of our streams, received at `now`:
    /// now − LSR − DLSR; nil when the block carries no LSR.
    public static func roundTrip(block: RTCPReportBlock, now: Duration) -> Duration? {
        guard block.lastSenderReport != 0 else { return nil }
        let arrival = middle(ntp(now))
        let rtt = Int64(arrival &- block.lastSenderReport &- block.delaySinceLastSenderReport)
        guard rtt >= 0, rtt < 65536 * 60 else { return nil }
        return .nanoseconds(rtt * 1_000_000_000 / 65536)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double` (for reports and arithmetic on rates).
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
