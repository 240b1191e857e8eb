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

/// One RTCP packet of a compound packet (RFC 3550 §6, RFC 4585, RFC 5104, REMB,
/// transport-cc). Types MeetKit does not interpret are kept as ``unknown(type:count:body:)``.
public enum RTCPPacket: Sendable, Hashable {
    /// SR: sender info and report blocks.
    case senderReport(
        ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
        reports: [RTCPReportBlock])
    /// RR: report blocks.
    case receiverReport(ssrc: UInt32, reports: [RTCPReportBlock])
    /// SDES: per source, items as (type, text); CNAME is type 1.
    case sourceDescription([(ssrc: UInt32, items: [(type: UInt8, text: String)])])
    /// BYE: sources leaving, and an optional reason.
    case goodbye(ssrcs: [UInt32], reason: String?)
    /// Generic NACK (RFC 4585 §6.2.1): sequence numbers lost.
    case nack(senderSSRC: UInt32, mediaSSRC: UInt32, lost: [UInt16])
    /// Picture loss indication (RFC 4585 §6.3.1): send a keyframe.
    case pictureLossIndication(senderSSRC: UInt32, mediaSSRC: UInt32)
    /// Full intra request (RFC 5104 §4.3.1): send a keyframe; entries (SSRC, command sequence).
    case fullIntraRequest(senderSSRC: UInt32, entries: [(ssrc: UInt32, sequence: UInt8)])
    /// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb).
    case remb(senderSSRC: UInt32, bitrate: UInt64, ssrcs: [UInt32])
    /// Transport-wide congestion control feedback.
    case transportCC(TransportCCFeedback)
    /// Anything else, kept raw: packet type, count/FMT field, body after the 4-byte header.
    case unknown(type: UInt8, count: UInt8, body: [UInt8])

    public static func == (a: RTCPPacket, b: RTCPPacket) -> Bool { a.serialized() == b.serialized() }
    public func hash(into hasher: inout Hasher) { hasher.combine(serialized()) }

    // MARK: parsing

    /// Parses a compound (or reduced-size, RFC 5506) RTCP packet.
    /// - Throws: ``RTPError`` when a header's length runs past the data or the version is wrong.
    public static func parseCompound(_ data: [UInt8]) throws(RTPError) -> [RTCPPacket] {
        var out: [RTCPPacket] = []
        var offset = 0
        while offset < data.count {
            guard data.count - offset >= 4 else { throw .truncated(needed: offset + 4, available: data.count) }
            let version = Int(data[offset] >> 6)
            guard version == 2 else { throw .badVersion(version) }
            let padding = data[offset] & 0x20 != 0
            let count = data[offset] & 0x1F
            let type = data[offset + 1]
            let length = (Int(data[offset + 2]) << 8 | Int(data[offset + 3]) + 1) * 4
            guard offset + length <= data.count else {
                throw .truncated(needed: offset + length, available: data.count)
            }
            var end = offset + length
            if padding {
                let pad = Int(data[end - 1])
                guard pad >= 1, pad <= length - 4 else { throw .badLength("RTCP padding of \(pad)") }
                end -= pad
            }
            let body = Array(data[(offset + 4)..<end])
            out.append(try parse(type: type, count: count, body: body))
            offset += length
        }
        return out
    }

    private static func parse(type: UInt8, count: UInt8, body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        func need(_ n: Int) throws(RTPError) {
            guard b.count >= n else { throw .truncated(needed: n, available: b.count) }
        }
        func blocks(at start: Int) throws(RTPError) -> [RTCPReportBlock] {
            try need(start + 24 * Int(count))
            return (0..<Int(count)).map { i in
                let o = start + 24 * i
                let lost =
                    Int32(bitPattern: UInt32(b[o + 5]) << 24 | UInt32(b[o + 6]) << 16 | UInt32(b[o + 7]) << 8) >> 8
                return RTCPReportBlock(
                    ssrc: be32(b, o), fractionLost: b[o + 4], cumulativeLost: lost, highestSequence: be32(b, o + 8),
                    jitter: be32(b, o + 12), lastSenderReport: be32(b, o + 16),
                    delaySinceLastSenderReport: be32(b, o + 20))
            }
        }
        switch type {
        case 200:
            try need(24)
            return .senderReport(
                ssrc: be32(b, 0), ntpTimestamp: UInt64(be32(b, 4)) << 32 | UInt64(be32(b, 8)),
                rtpTimestamp: be32(b, 12),
                packetCount: be32(b, 16), octetCount: be32(b, 20), reports: try blocks(at: 24))
        case 201:
            try need(4)
            return .receiverReport(ssrc: be32(b, 0), reports: try blocks(at: 4))
        case 202:
            var chunks: [(ssrc: UInt32, items: [(type: UInt8, text: String)])] = []
            var i = 0
            for _ in 0..<count {
                try need(i + 4)
                let ssrc = be32(b, i)
                i += 4
                var items: [(type: UInt8, text: String)] = []
                while i < b.count, b[i] != 0 {
                    try need(i + 2)
                    let n = Int(b[i + 1])
                    try need(i + 2 + n)
                    items.append((b[i], String(decoding: b[(i + 2)..<(i + 2 + n)], as: UTF8.self)))
                    i += 2 + n
                }
                i += 1
                i = (i + 3) & ~3  // chunks end on a 32-bit boundary
                chunks.append((ssrc, items))
            }
            return .sourceDescription(chunks)
        case 203:
            try need(4 * Int(count))
            let ssrcs = (0..<Int(count)).map { be32(b, 4 * $0) }
            var reason: String?
            let r = 4 * Int(count)
            if b.count > r {
                let n = Int(b[r])
                try need(r + 1 + n)
                reason = String(decoding: b[(r + 1)..<(r + 1 + n)], as: UTF8.self)
            }
            return .goodbye(ssrcs: ssrcs, reason: reason)
        case 205 where count == 1:
            try need(8)
            var lost: [UInt16] = []
            var i = 8
            while i + 4 <= b.count {
                let pid = UInt16(b[i]) << 8 | UInt16(b[i + 1])
                let blp = UInt16(b[i + 2]) << 8 | UInt16(b[i + 3])
                lost.append(pid)
                for bit in 0..<16 where blp & (1 << bit) != 0 { lost.append(pid &+ UInt16(bit + 1)) }
                i += 4
            }
            return .nack(senderSSRC: be32(b, 0), mediaSSRC: be32(b, 4), lost: lost)
        case 205 where count == 15:
            return .transportCC(try parseTransportCC(b))
        case 206 where count == 1:
            try need(8)
            return .pictureLossIndication(senderSSRC: be32(b, 0), mediaSSRC: be32(b, 4))
        case 206 where count == 4:
            try need(8)
            var entries: [(ssrc: UInt32, sequence: UInt8)] = []
            var i = 8
            while i + 8 <= b.count {
                entries.append((be32(b, i), b[i + 4]))
                i += 8
            }
            return .fullIntraRequest(senderSSRC: be32(b, 0), entries: entries)
        case 206 where count == 15 && b.count >= 16 && Array(b[8..<12]) == Array("REMB".utf8):
            let n = Int(b[12])
            try need(16 + 4 * n)
            let exponent = UInt64(b[13] >> 2)
            let mantissa = UInt64(b[13] & 0x03) << 16 | UInt64(b[14]) << 8 | UInt64(b[15])
            let bitrate = exponent >= 46 ? UInt64.max : mantissa << exponent
            return .remb(senderSSRC: be32(b, 0), bitrate: bitrate, ssrcs: (0..<n).map { be32(b, 16 + 4 * $0) })
        default:
            return .unknown(type: type, count: count, body: b)
        }
    }

    private static func parseTransportCC(_ b: [UInt8]) throws(RTPError) -> TransportCCFeedback {
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
        return TransportCCFeedback(
            senderSSRC: be32(b, 0), mediaSSRC: be32(b, 4), baseSequence: base, referenceTime: reference,
            feedbackCount: b[15], deltas: deltas)
    }

    // MARK: serialising

    /// Serialises packets into one compound packet.
    public static func serializeCompound(_ packets: [RTCPPacket]) -> [UInt8] { packets.flatMap { $0.serialized() } }

    /// The packet's bytes, padded to 32 bits.
    public func serialized() -> [UInt8] {
        var body: [UInt8] = []
        let type: UInt8
        var count: UInt8 = 0
        func block(_ r: RTCPReportBlock) {
            putBE32(&body, r.ssrc)
            body.append(r.fractionLost)
            let lost = UInt32(bitPattern: r.cumulativeLost) & 0x00FF_FFFF
            body += [UInt8(lost >> 16), UInt8((lost >> 8) & 0xFF), UInt8(lost & 0xFF)]
            for v in [r.highestSequence, r.jitter, r.lastSenderReport, r.delaySinceLastSenderReport] {
                putBE32(&body, v)
            }
        }
        switch self {
        case .senderReport(let ssrc, let ntp, let rtp, let packets, let octets, let reports):
            type = 200
            count = UInt8(min(31, reports.count))
            for v in [ssrc, UInt32(ntp >> 32), UInt32(ntp & 0xFFFF_FFFF), rtp, packets, octets] { putBE32(&body, v) }
            reports.prefix(31).forEach(block)
        case .receiverReport(let ssrc, let reports):
            type = 201
            count = UInt8(min(31, reports.count))
            putBE32(&body, ssrc)
            reports.prefix(31).forEach(block)
        case .sourceDescription(let chunks):
            type = 202
            count = UInt8(min(31, chunks.count))
            for chunk in chunks.prefix(31) {
                putBE32(&body, chunk.ssrc)
                for item in chunk.items {
                    let text = Array(item.text.utf8.prefix(255))
                    body.append(item.type)
                    body.append(UInt8(text.count))
                    body += text
                }
                body.append(0)
                while body.count % 4 != 0 { body.append(0) }
            }
        case .goodbye(let ssrcs, let reason):
            type = 203
            count = UInt8(min(31, ssrcs.count))
            for s in ssrcs.prefix(31) { putBE32(&body, s) }
            if let reason {
                let text = Array(reason.utf8.prefix(255))
                body.append(UInt8(text.count))
                body += text
            }
        case .nack(let sender, let media, let lost):
            type = 205
            count = 1
            putBE32(&body, sender)
            putBE32(&body, media)
            var remaining = lost
            while let pid = remaining.first {
                var blp: UInt16 = 0
                remaining.removeFirst()
                remaining.removeAll { seq in
                    let d = seq &- pid
                    guard d >= 1, d <= 16 else { return false }
                    blp |= 1 << (d - 1)
                    return true
                }
                putBE16(&body, pid)
                putBE16(&body, blp)
            }
        case .pictureLossIndication(let sender, let media):
            type = 206
            count = 1
            putBE32(&body, sender)
            putBE32(&body, media)
        case .fullIntraRequest(let sender, let entries):
            type = 206
            count = 4
            putBE32(&body, sender)
            putBE32(&body, 0)
            for e in entries {
                putBE32(&body, e.ssrc)
                body += [e.sequence, 0, 0, 0]
            }
        case .remb(let sender, let bitrate, let ssrcs):
            type = 206
            count = 15
            putBE32(&body, sender)
            putBE32(&body, 0)
            body += Array("REMB".utf8)
            var exponent: UInt64 = 0
            while (bitrate >> exponent) > 0x3FFFF { exponent += 1 }
            let mantissa = bitrate >> exponent
            body += [
                UInt8(min(255, ssrcs.count)), UInt8(exponent << 2) | UInt8((mantissa >> 16) & 0x03),
                UInt8((mantissa >> 8) & 0xFF), UInt8(mantissa & 0xFF),
            ]
            for s in ssrcs.prefix(255) { putBE32(&body, s) }
        case .transportCC(let f):
            type = 205
            count = 15
            putBE32(&body, f.senderSSRC)
            putBE32(&body, f.mediaSSRC)
            putBE16(&body, f.baseSequence)
            putBE16(&body, UInt16(min(0xFFFF, f.deltas.count)))
            let reference = UInt32(bitPattern: f.referenceTime) & 0x00FF_FFFF
            body += [UInt8(reference >> 16), UInt8((reference >> 8) & 0xFF), UInt8(reference & 0xFF), f.feedbackCount]
            // Two-bit status vector chunks, seven symbols each.
            let symbols: [UInt16] = f.deltas.map { d in
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
            for (s, d) in zip(symbols, f.deltas) {
                if s == 1 { body.append(UInt8(d!)) }
                if s == 2 { putBE16(&body, UInt16(bitPattern: d!)) }
            }
        case .unknown(let t, let c, let b):
            type = t
            count = c & 0x1F
            body = b
        }
        let pad = (4 - body.count % 4) % 4
        var out: [UInt8] = [0x80 | (pad > 0 ? 0x20 : 0) | count, type]
        putBE16(&out, UInt16((body.count + pad) / 4))
        out += body
        if pad > 0 {
            out += [UInt8](repeating: 0, count: pad - 1)
            out.append(UInt8(pad))
        }
        return out
    }
}
