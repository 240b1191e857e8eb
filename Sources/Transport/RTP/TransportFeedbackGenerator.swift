import Codec

/// Transport-wide congestion control feedback for what this side receives
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): the arrival time of every
/// packet carrying a transport-wide sequence number, reported to the sender every
/// `interval` — what a libwebrtc sender's bandwidth estimation runs on; without it such a
/// sender backs off and drops its higher simulcast layers.
package struct TransportFeedbackGenerator: Sendable {
    /// How often feedback goes out while packets arrive.
    package var interval: Duration = .milliseconds(100)
    private var unwrapper = SequenceUnwrapper(bits: 16)
    /// Arrivals not reported yet, by extended sequence number (bounded).
    private var arrivals: [Int64: Duration] = [:]
    private var nextToReport: Int64?
    private var count: UInt8 = 0
    /// When the next feedback is due (nil: nothing to report).
    package private(set) var nextDeadline: Duration?

    package init() {}

    /// A packet with transport-wide sequence number `sequence` arrived at `arrival`.
    package mutating func record(sequence: UInt16, arrival: Duration) {
        let extended = unwrapper.unwrap(UInt64(sequence))
        if nextToReport == nil { nextToReport = extended }
        guard let from = nextToReport, extended >= from, extended - from < 8192 else { return }
        arrivals[extended] = arrival
        if nextDeadline == nil { nextDeadline = arrival + interval }
    }

    /// The feedback for every packet since the last one (nil when none arrived).
    package mutating func feedback(senderSSRC: UInt32, mediaSSRC: UInt32, now: Duration) -> TransportCCFeedback? {
        defer { nextDeadline = arrivals.isEmpty ? nil : now + interval }
        guard let base = nextToReport, let last = arrivals.keys.max(), let firstArrival = arrivals.values.min() else {
            return nil
        }
        // Reference time in 64 ms units; deltas in 250 µs units from the previous arrival.
        let reference = Int32(
            clamping: firstArrival.components.seconds * 1000 / 64
                + firstArrival.components.attoseconds / 64_000_000_000_000_000)
        var previous = Int64(reference) * 64_000  // µs
        var deltas: [Int16?] = []
        var end = base
        for sequence in base...min(last, base + 4095) {
            guard let arrival = arrivals[sequence] else {
                deltas.append(nil)
                end = sequence
                continue
            }
            let micros = arrival.components.seconds * 1_000_000 + arrival.components.attoseconds / 1_000_000_000_000
            let ticks = (micros - previous) / 250
            guard let delta = Int16(exactly: ticks) else { break }  // the rest goes in the next feedback
            deltas.append(delta)
            previous += Int64(delta) * 250
            end = sequence
        }
        // Trailing losses are not reported yet: they may still arrive.
        while deltas.last.map({ $0 == nil }) == true {
            deltas.removeLast()
            end -= 1
        }
        guard !deltas.isEmpty else { return nil }
        for sequence in base...end { arrivals[sequence] = nil }
        nextToReport = end + 1
        count &+= 1
        return TransportCCFeedback(
            senderSSRC: senderSSRC, mediaSSRC: mediaSSRC, baseSequence: UInt16(truncatingIfNeeded: base),
            referenceTime: reference, feedbackCount: count &- 1, deltas: deltas)
    }
}
