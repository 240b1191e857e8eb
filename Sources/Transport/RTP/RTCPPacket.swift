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
            try RTCPReportBlock.parse(b, at: start, count: Int(count))
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
            return .transportCC(try TransportCCFeedback(parsing: b))
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

    // MARK: serialising

    /// Serialises packets into one compound packet.
    public static func serializeCompound(_ packets: [RTCPPacket]) -> [UInt8] { packets.flatMap { $0.serialized() } }

    /// The packet's bytes, padded to 32 bits.
    public func serialized() -> [UInt8] {
        var body: [UInt8] = []
        let type: UInt8
        var count: UInt8 = 0
        func block(_ r: RTCPReportBlock) { r.serialize(into: &body) }
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
            f.serialize(into: &body)
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
