/// One Ogg page (RFC 3533 §6): a header with capture pattern, flags, granule position,
/// stream serial, page sequence and CRC, then a segment table and the packet data.
struct OggPage: Sendable, Equatable {
    static let continued: UInt8 = 0x01
    static let beginOfStream: UInt8 = 0x02
    static let endOfStream: UInt8 = 0x04

    var flags: UInt8
    var granulePosition: Int64
    var serial: UInt32
    var sequence: UInt32
    /// Lacing values (each 0…255); a value below 255 ends a packet.
    var segments: [UInt8]
    var body: [UInt8]

    /// The serialised page with its CRC.
    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(27 + segments.count + body.count)
        out.appendASCII("OggS")
        out.append(0)  // version
        out.append(flags)
        out.appendLE(UInt64(bitPattern: granulePosition))
        out.appendLE(serial)
        out.appendLE(sequence)
        out.appendLE(UInt32(0))  // CRC placeholder
        out.append(UInt8(segments.count))
        out += segments
        out += body
        let crc = OggCRC.checksum(out)
        out[22] = UInt8(crc & 0xFF)
        out[23] = UInt8((crc >> 8) & 0xFF)
        out[24] = UInt8((crc >> 16) & 0xFF)
        out[25] = UInt8(crc >> 24)
        return out
    }

    /// Reads the next page from `source`, checking capture pattern, version and CRC.
    static func read(from source: ByteSource) throws(MediaFileError) -> OggPage {
        let start = source.position
        let header = try source.read(27, "Ogg page header")
        guard header.prefix(4).elementsEqual("OggS".utf8) else {
            throw .invalidFormat("no Ogg capture pattern at offset \(start)")
        }
        guard header[header.startIndex + 4] == 0 else {
            throw .unsupported("Ogg version \(header[header.startIndex + 4])")
        }
        let count = Int(header[header.startIndex + 26])
        let segments = Array(try source.read(count, "Ogg segment table"))
        let bodySize = segments.reduce(0) { $0 + Int($1) }
        let body = Array(try source.read(bodySize, "Ogg page body"))
        let page = OggPage(
            flags: header[header.startIndex + 5], granulePosition: Int64(bitPattern: header.le(6, 8)),
            serial: UInt32(header.le(14, 4)), sequence: UInt32(header.le(18, 4)), segments: segments, body: body)
        let stored = UInt32(header.le(22, 4))
        var check = Array(header)
        check[22] = 0
        check[23] = 0
        check[24] = 0
        check[25] = 0
        var crc = OggCRC.update(0, check)
        crc = OggCRC.update(crc, segments)
        crc = OggCRC.update(crc, body)
        guard crc == stored else { throw .checksumMismatch(context: "Ogg page \(page.sequence) at offset \(start)") }
        return page
    }
}

/// The CRC-32 of Ogg pages: polynomial 0x04C11DB7, initial value 0, not reflected, no
/// final XOR (RFC 3533 §6, "CRC checksum").
enum OggCRC {
    static let table: [UInt32] = (0..<256).map { i in
        var r = UInt32(i) << 24
        for _ in 0..<8 { r = r & 0x8000_0000 != 0 ? (r << 1) ^ 0x04C1_1DB7 : r << 1 }
        return r
    }

    static func update(_ crc: UInt32, _ bytes: [UInt8]) -> UInt32 {
        var c = crc
        for b in bytes { c = (c << 8) ^ table[Int(((c >> 24) ^ UInt32(b)) & 0xFF)] }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 { update(0, bytes) }
}
