import MeetKitNet

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

    /// One packet by its type and count/FMT field; each kind's layout is in its own file.
    private static func parse(type: UInt8, count: UInt8, body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        switch type {
        case 200: try parseSenderReport(count: count, body: b)
        case 201: try parseReceiverReport(count: count, body: b)
        case 202: try parseSourceDescription(count: count, body: b)
        case 203: try parseGoodbye(count: count, body: b)
        case 205 where count == 1: try parseGenericNACK(body: b)
        case 205 where count == 15: .transportCC(try TransportCCFeedback(parsing: b))
        case 206 where count == 1: try parsePictureLoss(body: b)
        case 206 where count == 4: try parseFullIntraRequest(body: b)
        case 206 where count == 15 && isREMB(b): try parseREMB(body: b)
        default: .unknown(type: type, count: count, body: b)
        }
    }

    /// Throws unless a body holds at least `n` bytes.
    static func need(_ n: Int, in body: [UInt8]) throws(RTPError) {
        guard body.count >= n else { throw .truncated(needed: n, available: body.count) }
    }

    // MARK: serialising

    /// Serialises packets into one compound packet.
    public static func serializeCompound(_ packets: [RTCPPacket]) -> [UInt8] { packets.flatMap { $0.serialized() } }

    /// The packet's bytes, padded to 32 bits.
    public func serialized() -> [UInt8] {
        var body: [UInt8] = []
        let type: UInt8
        var count: UInt8 = 0
        switch self {
        case .senderReport(let ssrc, let ntp, let rtp, let packets, let octets, let reports):
            type = 200
            count = Self.serializeSenderReport(
                ssrc: ssrc, ntpTimestamp: ntp, rtpTimestamp: rtp, packetCount: packets, octetCount: octets,
                reports: reports, into: &body)
        case .receiverReport(let ssrc, let reports):
            type = 201
            count = Self.serializeReceiverReport(ssrc: ssrc, reports: reports, into: &body)
        case .sourceDescription(let chunks):
            type = 202
            count = Self.serializeSourceDescription(chunks, into: &body)
        case .goodbye(let ssrcs, let reason):
            type = 203
            count = Self.serializeGoodbye(ssrcs: ssrcs, reason: reason, into: &body)
        case .nack(let sender, let media, let lost):
            (type, count) = (205, 1)
            Self.serializeGenericNACK(sender: sender, media: media, lost: lost, into: &body)
        case .pictureLossIndication(let sender, let media):
            (type, count) = (206, 1)
            Self.serializePictureLoss(sender: sender, media: media, into: &body)
        case .fullIntraRequest(let sender, let entries):
            (type, count) = (206, 4)
            Self.serializeFullIntraRequest(sender: sender, entries: entries, into: &body)
        case .remb(let sender, let bitrate, let ssrcs):
            (type, count) = (206, 15)
            Self.serializeREMB(sender: sender, bitrate: bitrate, ssrcs: ssrcs, into: &body)
        case .transportCC(let f):
            (type, count) = (205, 15)
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
