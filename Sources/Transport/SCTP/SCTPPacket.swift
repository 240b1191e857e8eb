import MeetKitNet

/// An SCTP packet (RFC 9260 §3.1): the common header and its chunks. Over DTLS (RFC 8261)
/// both ports are the `a=sctp-port` values, 5000 by default.
///
/// ```swift
/// let packet = try SCTPPacket(parsing: datagram)        // checks the CRC32c
/// for chunk in packet.chunks { … }
/// let bytes = SCTPPacket(sourcePort: 5000, destinationPort: 5000, verificationTag: tag,
///                        chunks: [.cookieAck]).serialized()
/// ```
public struct SCTPPacket: Sendable, Equatable {
    /// The sender's port.
    public var sourcePort: UInt16
    /// The receiver's port.
    public var destinationPort: UInt16
    /// The receiver's initiate tag (0 on an INIT).
    public var verificationTag: UInt32
    /// The chunks in order.
    public var chunks: [SCTPChunk]

    public init(sourcePort: UInt16, destinationPort: UInt16, verificationTag: UInt32, chunks: [SCTPChunk]) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.verificationTag = verificationTag
        self.chunks = chunks
    }

    /// Bytes of the common header.
    public static let headerLength = 12

    /// Parses and checks a packet. DATA chunks' user data are slices of `data`.
    /// - Throws: ``SCTPError`` for a wrong checksum, a chunk length that does not fit, or
    ///   a chunk whose value contradicts its type.
    public init(parsing data: [UInt8]) throws(SCTPError) {
        guard data.count >= Self.headerLength else {
            throw .truncated(needed: Self.headerLength, available: data.count)
        }
        let bytes = data[...]
        let found = UInt32(data[8]) | UInt32(data[9]) << 8 | UInt32(data[10]) << 16 | UInt32(data[11]) << 24
        let expected = Self.checksum(data)
        guard found == expected else { throw .badChecksum(expected: expected, found: found) }
        sourcePort = bytes.be16(at: 0)
        destinationPort = bytes.be16(at: 2)
        verificationTag = bytes.be32(at: 4)
        var chunks: [SCTPChunk] = []
        var offset = Self.headerLength
        while data.count - offset >= 4 {
            let type = data[offset]
            let flags = data[offset + 1]
            let length = Int(bytes.be16(at: offset + 2))
            guard length >= 4 else { throw .malformed("chunk \(type) of length \(length)") }
            guard offset + length <= data.count else {
                throw .truncated(needed: offset + length, available: data.count)
            }
            chunks.append(try SCTPChunk(type: type, flags: flags, value: data[(offset + 4)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
        guard offset >= data.count else { throw .malformed("\(data.count - offset) stray bytes after the chunks") }
        guard !chunks.isEmpty else { throw .malformed("a packet without chunks") }
        self.chunks = chunks
    }

    /// The packet's bytes, checksum included.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(
            Self.headerLength
                + chunks.reduce(0) { n, c in
                    if case .data(let d) = c { return n + 16 + d.userData.count + 3 }
                    return n + 64
                })
        putBE16(&out, sourcePort)
        putBE16(&out, destinationPort)
        putBE32(&out, verificationTag)
        putBE32(&out, 0)
        for c in chunks { c.serialize(into: &out) }
        Self.stampChecksum(&out)
        return out
    }

    /// Writes a packet's CRC32c into its checksum field, least significant byte first
    /// (RFC 9260 Appendix A).
    static func stampChecksum(_ packet: inout [UInt8]) {
        let sum = checksum(packet)
        packet[8] = UInt8(truncatingIfNeeded: sum)
        packet[9] = UInt8(truncatingIfNeeded: sum >> 8)
        packet[10] = UInt8(truncatingIfNeeded: sum >> 16)
        packet[11] = UInt8(truncatingIfNeeded: sum >> 24)
    }

    /// The CRC32c of a packet with its checksum field taken as zero.
    static func checksum(_ packet: [UInt8]) -> UInt32 {
        packet.withUnsafeBytes { p in
            var crc = CRC32C.update(CRC32C.initial, UnsafeRawBufferPointer(rebasing: p[0..<8]))
            crc = withUnsafeBytes(of: UInt32(0)) { CRC32C.update(crc, $0) }
            crc = CRC32C.update(crc, UnsafeRawBufferPointer(rebasing: p[12...]))
            return CRC32C.finish(crc)
        }
    }
}
