import Codec
import MeetKitNet

/// Why bytes are not an acceptable RTP or RTCP packet.
public enum RTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Shorter than its headers say.
    case truncated(needed: Int, available: Int)
    /// Version is not 2.
    case badVersion(Int)
    /// A length or padding field is inconsistent.
    case badLength(String)

    public var description: String {
        switch self {
        case .truncated(let needed, let available): "RTP/RTCP packet of \(available) bytes, needs \(needed)"
        case .badVersion(let v): "RTP/RTCP version \(v), expected 2"
        case .badLength(let what): "RTP/RTCP length: \(what)"
        }
    }
}

/// One RTP header extension element (RFC 8285): a local ID (1–14 in one-byte form,
/// 1–255 in two-byte form) and its data.
public struct RTPHeaderExtension: Sendable, Hashable {
    /// The ID negotiated with a=extmap.
    public var id: UInt8
    /// The element's data (1–16 bytes in one-byte form, 0–255 in two-byte form).
    public var data: [UInt8]

    /// An element from its parts.
    public init(id: UInt8, data: [UInt8]) {
        self.id = id
        self.data = data
    }
}

extension RTPHeaderExtension {
    /// Calls `body` with each RFC 8285 element of an extension block — one-byte (profile
    /// 0xBEDE) or two-byte (0x100x) — until it returns false. Other profiles are one element
    /// with ID 0. Malformed elements end the list. Nothing is copied.
    static func forEach(
        in block: ArraySlice<UInt8>, profile: UInt16, _ body: (UInt8, ArraySlice<UInt8>) -> Bool
    ) {
        let end = block.endIndex
        var i = block.startIndex
        if profile == 0xBEDE {
            while i < end {
                let id = block[i] >> 4
                if id == 0 {  // padding
                    i += 1
                    continue
                }
                if id == 15 { return }  // reserved: stop parsing (RFC 8285 §4.2)
                let length = Int(block[i] & 0x0F) + 1
                guard i + 1 + length <= end, body(id, block[(i + 1)..<(i + 1 + length)]) else { return }
                i += 1 + length
            }
        } else if profile & 0xFFF0 == 0x1000 {
            while i < end {
                let id = block[i]
                if id == 0 {
                    i += 1
                    continue
                }
                guard i + 1 < end else { return }
                let length = Int(block[i + 1])
                guard i + 2 + length <= end, body(id, block[(i + 2)..<(i + 2 + length)]) else { return }
                i += 2 + length
            }
        } else {
            _ = body(0, block)
        }
    }
}

/// An RTP packet (RFC 3550 §5.1) with RFC 8285 header extensions. Parsing copies nothing
/// and allocates nothing: the payload and the extension block are slices of the datagram.
///
/// ```swift
/// let packet = try RTPPacket(parsing: datagram)
/// packet.header.sequenceNumber; packet.payload
/// let level = packet.header.audioLevel(id: 1)          // RFC 6464
/// let bytes = RTPPacket(header: header, payload: opusPacket[...]).serialized()
/// ```
public struct RTPPacket: Sendable, Equatable {
    /// The fixed header, CSRCs and extensions.
    public var header: RTPHeader
    /// The payload, without padding.
    public var payload: ArraySlice<UInt8>
    /// Padding bytes to add when serialising (the P bit), 0 for none.
    public var paddingLength: Int

    /// A packet from its parts.
    public init(header: RTPHeader, payload: ArraySlice<UInt8>, paddingLength: Int = 0) {
        self.header = header
        self.payload = payload
        self.paddingLength = paddingLength
    }

    /// Parses a datagram.
    /// - Throws: ``RTPError`` for a wrong version or inconsistent lengths.
    public init(parsing data: [UInt8]) throws(RTPError) {
        // The fixed header and the lengths are read through one pointer (no per-byte bounds
        // checks); only the slices refer to the array afterwards.
        let count = data.count
        guard count >= 12 else { throw .truncated(needed: 12, available: count) }
        let (first, second, sequenceNumber, timestamp, ssrc) = data.withUnsafeBytes { d in
            (
                d[0], d[1], UInt16(bigEndian: d.loadUnaligned(fromByteOffset: 2, as: UInt16.self)),
                UInt32(bigEndian: d.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
                UInt32(bigEndian: d.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            )
        }
        guard first >> 6 == 2 else { throw .badVersion(Int(first >> 6)) }
        // Lengths first; then the header of a packet without CSRCs or extensions is built
        // from its five fields alone (the others are amended only when present), and the
        // packet by its memberwise initialiser: assigning the packet's properties one by
        // one made the optimiser copy the whole packet out of this initialiser.
        let csrcCount = Int(first & 0x0F)
        var offset = 12 + 4 * csrcCount
        guard count >= offset else { throw .truncated(needed: offset, available: count) }
        var extensionBlock: Range<Int>?
        var profile: UInt16?
        if first & 0x10 != 0 {
            guard count >= offset + 4 else { throw .truncated(needed: offset + 4, available: count) }
            profile = UInt16(data[offset]) << 8 | UInt16(data[offset + 1])
            let words = Int(data[offset + 2]) << 8 | Int(data[offset + 3])
            let start = offset + 4
            let end = start + 4 * words
            guard count >= end else { throw .truncated(needed: end, available: count) }
            extensionBlock = start..<end
            offset = end
        }
        var payloadEnd = count
        if first & 0x20 != 0 {
            let pad = Int(data[count - 1])
            guard pad >= 1, pad <= count - offset else { throw .badLength("padding of \(pad) bytes") }
            payloadEnd -= pad
        }
        var header = RTPHeader(
            payloadType: second & 0x7F, sequenceNumber: sequenceNumber, timestamp: timestamp, ssrc: ssrc,
            marker: second & 0x80 != 0)
        if first & 0x1F != 0 {
            header.extensionProfile = profile
            header.receivedExtensions = extensionBlock.map { data[$0] }
            if csrcCount > 0 { header.csrcs = (0..<csrcCount).map { be32(data, 12 + 4 * $0) } }
        }
        self.init(header: header, payload: data[offset..<payloadEnd], paddingLength: count - payloadEnd)
    }

    /// The packet's bytes. Extensions use the one-byte form when every ID is 1–14 and every
    /// element 1–16 bytes, else the two-byte form.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12 + 4 * header.csrcs.count + 64 + payload.count + paddingLength)
        let ext = header.encodedExtensions()
        var first: UInt8 = 0x80 | UInt8(min(15, header.csrcs.count))
        if paddingLength > 0 { first |= 0x20 }
        if ext != nil { first |= 0x10 }
        out.append(first)
        out.append((header.marker ? 0x80 : 0) | (header.payloadType & 0x7F))
        out.append(UInt8(header.sequenceNumber >> 8))
        out.append(UInt8(header.sequenceNumber & 0xFF))
        putBE32(&out, header.timestamp)
        putBE32(&out, header.ssrc)
        for c in header.csrcs.prefix(15) { putBE32(&out, c) }
        if let ext { out += ext }
        out += payload
        if paddingLength > 0 {
            out += [UInt8](repeating: 0, count: paddingLength - 1)
            out.append(UInt8(paddingLength))
        }
        return out
    }

    /// The fields a payload format needs (Codec's view of RTP).
    public var payloadPacket: RTPPayloadPacket {
        RTPPayloadPacket(
            sequenceNumber: header.sequenceNumber, timestamp: header.timestamp, marker: header.marker,
            payload: Array(payload))
    }
}

/// The RTP fixed header with CSRCs and extensions.
public struct RTPHeader: Sendable, Hashable {
    /// Payload type 0–127.
    public var payloadType: UInt8
    /// Sequence number.
    public var sequenceNumber: UInt16
    /// Timestamp on the payload format's clock.
    public var timestamp: UInt32
    /// Synchronisation source.
    public var ssrc: UInt32
    /// The marker bit.
    public var marker: Bool
    /// Contributing sources.
    public var csrcs: [UInt32] {
        get { rare?.csrcs ?? [] }
        set {
            rare = newValue.isEmpty && (rare?.extensions.isEmpty ?? true) ? nil : Rare(newValue, rare?.extensions ?? [])
        }
    }
    /// The extension profile seen when parsing (0xBEDE one-byte, 0x100x two-byte).
    public var extensionProfile: UInt16?
    /// Extension elements. A parsed header keeps its extension block as received and reads
    /// elements from it on demand, so parsing allocates nothing.
    public var extensions: [RTPHeaderExtension] {
        get {
            guard let block = receivedExtensions else { return rare?.extensions ?? [] }
            var out: [RTPHeaderExtension] = []
            RTPHeaderExtension.forEach(in: block, profile: extensionProfile ?? 0) { id, data in
                out.append(RTPHeaderExtension(id: id, data: Array(data)))
                return true
            }
            return out
        }
        set {
            rare = newValue.isEmpty && (rare?.csrcs.isEmpty ?? true) ? nil : Rare(rare?.csrcs ?? [], newValue)
            receivedExtensions = nil
        }
    }

    /// What most received packets lack — CSRCs, extensions built by a sender — kept out of
    /// line in one immutable object, so a parsed header holds one empty reference for them.
    private final class Rare: Sendable, Hashable {
        let csrcs: [UInt32]
        let extensions: [RTPHeaderExtension]
        init(_ csrcs: [UInt32], _ extensions: [RTPHeaderExtension]) {
            self.csrcs = csrcs
            self.extensions = extensions
        }
        static func == (a: Rare, b: Rare) -> Bool { a.csrcs == b.csrcs && a.extensions == b.extensions }
        func hash(into hasher: inout Hasher) {
            hasher.combine(csrcs)
            hasher.combine(extensions)
        }
    }
    private var rare: Rare?
    /// The extension block of a parsed packet (elements, padding), a slice of the datagram.
    var receivedExtensions: ArraySlice<UInt8>?

    /// A header with no CSRC and no extension.
    public init(payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32, marker: Bool = false) {
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.marker = marker
    }

    /// The data of extension `id`, if present.
    public func extensionData(id: UInt8) -> [UInt8]? { extensionBytes(id: id).map { Array($0) } }

    /// The data of extension `id` without copying it out of a received packet.
    public func extensionBytes(id: UInt8) -> ArraySlice<UInt8>? {
        guard let block = receivedExtensions else { return rare?.extensions.first { $0.id == id }?.data[...] }
        var found: ArraySlice<UInt8>?
        RTPHeaderExtension.forEach(in: block, profile: extensionProfile ?? 0) { elementID, data in
            if elementID == id { found = data }
            return found == nil
        }
        return found
    }

    public static func == (a: RTPHeader, b: RTPHeader) -> Bool {
        a.payloadType == b.payloadType && a.sequenceNumber == b.sequenceNumber && a.timestamp == b.timestamp
            && a.ssrc == b.ssrc && a.marker == b.marker && a.csrcs == b.csrcs
            && a.extensionProfile == b.extensionProfile
            && a.extensions == b.extensions
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ssrc)
        hasher.combine(sequenceNumber)
        hasher.combine(timestamp)
    }

    /// Sets (or removes, with nil) extension `id`.
    public mutating func setExtension(id: UInt8, _ data: [UInt8]?) {
        var list = extensions
        list.removeAll { $0.id == id }
        if let data { list.append(RTPHeaderExtension(id: id, data: data)) }
        extensions = list
    }

    /// ssrc-audio-level (RFC 6464): voice activity flag and level in −dBov (0 loudest, 127 silence).
    public func audioLevel(id: UInt8) -> (voiceActivity: Bool, level: UInt8)? {
        guard let d = extensionBytes(id: id), let b = d.first else { return nil }
        return (b & 0x80 != 0, b & 0x7F)
    }

    /// Sets ssrc-audio-level (RFC 6464).
    public mutating func setAudioLevel(id: UInt8, voiceActivity: Bool, level: UInt8) {
        setExtension(id: id, [(voiceActivity ? 0x80 : 0) | (level & 0x7F)])
    }

    /// abs-send-time: 24-bit 6.18 fixed-point seconds.
    public func absSendTime(id: UInt8) -> UInt32? {
        guard let d = extensionBytes(id: id), d.count == 3 else { return nil }
        let i = d.startIndex
        return UInt32(d[i]) << 16 | UInt32(d[i + 1]) << 8 | UInt32(d[i + 2])
    }

    /// Sets abs-send-time from 6.18 fixed-point seconds (the low 24 bits are kept).
    public mutating func setAbsSendTime(id: UInt8, _ value: UInt32) {
        setExtension(id: id, [UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)])
    }

    /// transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions).
    public func transportSequenceNumber(id: UInt8) -> UInt16? {
        guard let d = extensionBytes(id: id), d.count == 2 else { return nil }
        return UInt16(d[d.startIndex]) << 8 | UInt16(d[d.startIndex + 1])
    }

    /// Sets the transport-wide sequence number.
    public mutating func setTransportSequenceNumber(id: UInt8, _ value: UInt16) {
        setExtension(id: id, [UInt8(value >> 8), UInt8(value & 0xFF)])
    }

    /// sdes:mid (RFC 9143 §15.2): the media section's mid.
    public func mid(id: UInt8) -> String? {
        extensionBytes(id: id).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Sets sdes:mid.
    public mutating func setMid(id: UInt8, _ mid: String) { setExtension(id: id, Array(mid.utf8.prefix(255))) }

    /// The extension block (profile, length, elements, padding), or nil without extensions.
    func encodedExtensions() -> [UInt8]? {
        let extensions = self.extensions
        guard !extensions.isEmpty else { return nil }
        let oneByte = extensions.allSatisfy { (1...14).contains($0.id) && (1...16).contains($0.data.count) }
        var body: [UInt8] = []
        for e in extensions {
            if oneByte {
                body.append(e.id << 4 | UInt8(e.data.count - 1))
            } else {
                body.append(e.id)
                body.append(UInt8(min(255, e.data.count)))
            }
            body += e.data.prefix(255)
        }
        while body.count % 4 != 0 { body.append(0) }
        let profile: UInt16 = oneByte ? 0xBEDE : 0x1000
        return [
            UInt8(profile >> 8), UInt8(profile & 0xFF), UInt8((body.count / 4) >> 8), UInt8((body.count / 4) & 0xFF),
        ]
            + body
    }
}
