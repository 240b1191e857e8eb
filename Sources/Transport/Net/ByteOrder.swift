/// Network byte order (big-endian) reads and writes shared by STUN, RTP and RTCP.

@inlinable package func be16(_ d: [UInt8], _ i: Int) -> UInt16 { UInt16(d[i]) << 8 | UInt16(d[i + 1]) }

@inlinable package func be32(_ d: [UInt8], _ i: Int) -> UInt32 {
    UInt32(d[i]) << 24 | UInt32(d[i + 1]) << 16 | UInt32(d[i + 2]) << 8 | UInt32(d[i + 3])
}

@inlinable package func putBE16(_ out: inout [UInt8], _ v: UInt16) {
    out.append(UInt8(v >> 8))
    out.append(UInt8(v & 0xFF))
}

@inlinable package func putBE32(_ out: inout [UInt8], _ v: UInt32) {
    putBE16(&out, UInt16(v >> 16))
    putBE16(&out, UInt16(v & 0xFFFF))
}

extension Array where Element == UInt8 {
    /// Makes this array a copy of `bytes`, reusing its storage: a `memcpy` once the array
    /// has grown. One replacement of the whole contents by typed bytes (a raw buffer goes
    /// byte by byte; emptying, then appending, cost a fifth more per datagram).
    @inlinable package mutating func overwrite(with bytes: UnsafeRawBufferPointer) {
        replaceSubrange(0..<count, with: bytes.assumingMemoryBound(to: UInt8.self))
    }
}
