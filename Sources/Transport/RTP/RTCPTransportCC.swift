import MeetKitNet

/// Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
public struct TransportCCFeedback: Sendable, Hashable {
    /// Sender of the feedback.
    public var senderSSRC: UInt32
    /// Media source (unused by senders, usually 0 or the first media SSRC).
    public var mediaSSRC: UInt32
    /// Transport sequence number of the first packet described.
    public var baseSequence: UInt16
    /// Reference time in multiples of 64 ms (24-bit signed).
    public var referenceTime: Int32
    /// Feedback packet counter (wraps).
    public var feedbackCount: UInt8
    /// Each packet from the base on: its receive delta from the previous received packet
    /// (or the reference time) in 250 µs units, or nil when not received.
    public var deltas: [Int16?]

    /// Feedback from its fields.
    public init(
        senderSSRC: UInt32, mediaSSRC: UInt32, baseSequence: UInt16, referenceTime: Int32, feedbackCount: UInt8,
        deltas: [Int16?]
    ) {
        self.senderSSRC = senderSSRC
        self.mediaSSRC = mediaSSRC
        self.baseSequence = baseSequence
        self.referenceTime = referenceTime
        self.feedbackCount = feedbackCount
        self.deltas = deltas
    }
}

extension TransportCCFeedback {
    /// Parses the FCI of a transport-cc feedback packet (after the common header).
    init(parsing b: [UInt8]) throws(RTPError) {
        guard b.count >= 16 else { throw .truncated(needed: 16, available: b.count) }
        let base = UInt16(b[8]) << 8 | UInt16(b[9])
        let statusCount = Int(b[10]) << 8 | Int(b[11])
        let reference = Int32(bitPattern: UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8) >> 8
        var statuses: [UInt8] = []
        statuses.reserveCapacity(statusCount)
        var i = 16
        while statuses.count < statusCount {
            guard i + 2 <= b.count else { throw .truncated(needed: i + 2, available: b.count) }
            let chunk = UInt16(b[i]) << 8 | UInt16(b[i + 1])
            i += 2
            if chunk & 0x8000 == 0 {
                let symbol = UInt8((chunk >> 13) & 0x03)
                let run = Int(chunk & 0x1FFF)
                statuses += [UInt8](repeating: symbol, count: min(run, statusCount - statuses.count))
            } else if chunk & 0x4000 == 0 {
                for bit in (0..<14).reversed() where statuses.count < statusCount {
                    statuses.append(UInt8((chunk >> bit) & 1))
                }
            } else {
                for slot in (0..<7).reversed() where statuses.count < statusCount {
                    statuses.append(UInt8((chunk >> (2 * slot)) & 0x03))
                }
            }
        }
        var deltas: [Int16?] = []
        deltas.reserveCapacity(statusCount)
        for s in statuses {
            switch s {
            case 1:
                guard i < b.count else { throw .truncated(needed: i + 1, available: b.count) }
                deltas.append(Int16(b[i]))
                i += 1
            case 2:
                guard i + 2 <= b.count else { throw .truncated(needed: i + 2, available: b.count) }
                deltas.append(Int16(bitPattern: UInt16(b[i]) << 8 | UInt16(b[i + 1])))
                i += 2
            default:
                deltas.append(nil)
            }
        }
        self.init(
            senderSSRC: be32(b, 0), mediaSSRC: be32(b, 4), baseSequence: base, referenceTime: reference,
            feedbackCount: b[15], deltas: deltas)
    }

    /// The FCI bytes: SSRCs, base, count, reference time, two-bit status vector chunks, deltas.
    func serialize(into body: inout [UInt8]) {
        putBE32(&body, senderSSRC)
        putBE32(&body, mediaSSRC)
        putBE16(&body, baseSequence)
        putBE16(&body, UInt16(min(0xFFFF, deltas.count)))
        let reference = UInt32(bitPattern: referenceTime) & 0x00FF_FFFF
        body += [UInt8(reference >> 16), UInt8((reference >> 8) & 0xFF), UInt8(reference & 0xFF), feedbackCount]
        // Two-bit status vector chunks, seven symbols each.
        let symbols: [UInt16] = deltas.map { d in
            guard let d else { return 0 }
            return (0...255).contains(d) ? 1 : 2
        }
        var i = 0
        while i < symbols.count {
            var chunk: UInt16 = 0xC000
            for slot in 0..<7 where i + slot < symbols.count { chunk |= symbols[i + slot] << (2 * (6 - slot)) }
            putBE16(&body, chunk)
            i += 7
        }
        for (s, d) in zip(symbols, deltas) {
            if s == 1 { body.append(UInt8(d!)) }
            if s == 2 { putBE16(&body, UInt16(bitPattern: d!)) }
        }
    }
}
