import Codec
import MeetKitNet

/// The receiver's half of RTP retransmission (RFC 4585 §6.2.1, generic NACK): notices gaps
/// in the sequence numbers of one incoming stream and says which packets to ask for, now
/// and again later while they stay missing. Sans-IO: times are given by the caller.
///
/// A missing packet is asked for at once, then every `retryInterval` up to `maxRetries`
/// times; it is forgotten when it arrives, when it is older than `maxAge`, or when more
/// than `maxMissing` packets are missing (a burst that large is better served by a
/// keyframe than by retransmissions).
///
/// ```swift
/// var nacks = NACKGenerator()
/// let askNow = nacks.record(sequenceNumber: packet.header.sequenceNumber, now: now)
/// // later, at nacks.nextDeadline:
/// let askAgain = nacks.poll(now: now)
/// ```
public struct NACKGenerator: Sendable {
    /// Limits.
    public struct Configuration: Sendable, Equatable {
        /// Time between two requests for the same packet.
        public var retryInterval: Duration = .milliseconds(100)
        /// Requests per packet at most.
        public var maxRetries = 5
        /// A packet missing for longer than this is given up.
        public var maxAge: Duration = .milliseconds(1000)
        /// Most packets tracked as missing.
        public var maxMissing = 256

        /// The defaults.
        public init() {}
    }

    private struct Missing {
        var firstSeen: Duration
        var nextAt: Duration
        var sent: Int
    }

    /// The limits in force.
    public var configuration: Configuration
    /// Packets asked for (each request counted).
    public private(set) var requestsSent = 0
    /// Missing packets that arrived after being asked for.
    public private(set) var recovered = 0
    /// Missing packets given up.
    public private(set) var givenUp = 0
    private var unwrapper = SequenceUnwrapper(bits: 16)
    private var highest: Int64?
    private var missing: [Int64: Missing] = [:]

    /// A generator with `configuration`.
    public init(configuration: Configuration = .init()) { self.configuration = configuration }

    /// Records an arriving packet; returns the sequence numbers to NACK now (the gap it
    /// revealed), oldest first.
    public mutating func record(sequenceNumber: UInt16, now: Duration) -> [UInt16] {
        record(extendedSequenceNumber: unwrapper.unwrap(UInt64(sequenceNumber)), now: now)
    }

    /// ``record(sequenceNumber:now:)`` with the sequence number already extended to 64 bits.
    public mutating func record(extendedSequenceNumber extended: Int64, now: Duration) -> [UInt16] {
        let previous = highest
        if highest == nil || extended > highest! { highest = extended }
        if missing.removeValue(forKey: extended) != nil { recovered += 1 }
        guard let previous, extended > previous + 1 else { return [] }
        let gap = extended - previous - 1
        guard gap <= Int64(configuration.maxMissing) else {
            givenUp += missing.count + Int(gap)
            missing.removeAll()
            return []
        }
        var ask: [UInt16] = []
        for seq in (previous + 1)..<extended {
            missing[seq] = Missing(firstSeen: now, nextAt: now + configuration.retryInterval, sent: 1)
            ask.append(UInt16(truncatingIfNeeded: seq))
        }
        trim()
        requestsSent += ask.count
        return ask
    }

    /// The sequence numbers to NACK again at `now`, oldest first.
    public mutating func poll(now: Duration) -> [UInt16] {
        var ask: [UInt16] = []
        for seq in missing.keys.sorted() {
            guard var m = missing[seq] else { continue }
            if now - m.firstSeen > configuration.maxAge || m.sent >= configuration.maxRetries + 1 {
                if m.nextAt <= now {
                    missing[seq] = nil
                    givenUp += 1
                }
                continue
            }
            guard m.nextAt <= now else { continue }
            m.sent += 1
            m.nextAt = now + configuration.retryInterval
            missing[seq] = m
            ask.append(UInt16(truncatingIfNeeded: seq))
        }
        requestsSent += ask.count
        return ask
    }

    /// When ``poll(now:)`` has something to do, nil when nothing is missing.
    public var nextDeadline: Duration? { missing.values.map(\.nextAt).min() }

    /// Packets currently missing.
    public var missingCount: Int { missing.count }

    private mutating func trim() {
        guard missing.count > configuration.maxMissing else { return }
        for seq in missing.keys.sorted().prefix(missing.count - configuration.maxMissing) {
            missing[seq] = nil
            givenUp += 1
        }
    }
}
