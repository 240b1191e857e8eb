/// Serial number arithmetic (RFC 1982) for TSNs and stream sequence numbers, which wrap.
extension UInt32 {
    /// Whether this TSN comes before `other`.
    @inlinable func precedes(_ other: UInt32) -> Bool { self != other && Int32(bitPattern: self &- other) < 0 }
    /// Whether this TSN comes before `other` or is it.
    @inlinable func precedesOrEquals(_ other: UInt32) -> Bool { Int32(bitPattern: self &- other) <= 0 }
}

extension UInt16 {
    /// Whether this sequence number comes before `other`.
    @inlinable func precedes(_ other: UInt16) -> Bool { self != other && Int16(bitPattern: self &- other) < 0 }
}
