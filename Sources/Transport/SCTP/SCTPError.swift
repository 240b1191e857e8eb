import MeetKitNet

/// Why an SCTP packet or chunk was refused (RFC 9260 §3). Parsers throw it for any
/// inconsistent length or field instead of trapping; the association counts and drops.
public enum SCTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer bytes than the structure needs.
    case truncated(needed: Int, available: Int)
    /// The CRC32c does not match the packet (RFC 9260 §6.8).
    case badChecksum(expected: UInt32, found: UInt32)
    /// A length field that contradicts the bytes around it, or a field out of range.
    case malformed(String)

    public var description: String {
        switch self {
        case .truncated(let needed, let available): "SCTP: \(available) bytes where \(needed) are needed"
        case .badChecksum(let expected, let found):
            "SCTP: checksum 0x\(String(found, radix: 16)), expected 0x\(String(expected, radix: 16))"
        case .malformed(let what): "SCTP: \(what)"
        }
    }
}

/// Big-endian reads at offsets from a slice's start, bounds checked by the callers.
extension ArraySlice where Element == UInt8 {
    @inlinable func be16(at offset: Int) -> UInt16 {
        UInt16(self[startIndex + offset]) << 8 | UInt16(self[startIndex + offset + 1])
    }

    @inlinable func be32(at offset: Int) -> UInt32 {
        UInt32(be16(at: offset)) << 16 | UInt32(be16(at: offset + 2))
    }

    /// The bytes from `offset` to the end, as a slice of the same storage.
    @inlinable func after(_ offset: Int) -> ArraySlice<UInt8> { self[(startIndex + offset)...] }
}

/// Zero bytes up to the next multiple of four (chunks and parameters are padded so).
@inlinable func padToFour(_ out: inout [UInt8]) {
    while out.count % 4 != 0 { out.append(0) }
}
