/// Extends a wrapping RTP counter (16-bit sequence numbers, 32-bit timestamps) to 64 bits
/// by choosing, for each value, the extension closest to the highest value seen so far
/// (RFC 3550 §A.1). Old values that arrive late unwrap below the highest, not above it.
///
/// ```swift
/// var seq = SequenceUnwrapper(bits: 16)
/// seq.unwrap(65535)   // 65535
/// seq.unwrap(0)       // 65536
/// seq.unwrap(65534)   // 65534 (late)
/// ```
public struct SequenceUnwrapper: Sendable {
    private let modulus: Int64
    /// The highest extended value seen, nil before the first.
    public private(set) var highest: Int64?

    /// An unwrapper for a counter of `bits` bits (1…32).
    public init(bits: Int) {
        precondition((1...32).contains(bits), "RTP counters have 1 to 32 bits")
        modulus = 1 << Int64(bits)
    }

    /// The extended value of `value` (taken modulo the counter size); updates the highest.
    public mutating func unwrap(_ value: UInt64) -> Int64 {
        let extended = peek(value)
        if highest == nil || extended > highest! { highest = extended }
        return extended
    }

    /// The extended value of `value` without recording it.
    public func peek(_ value: UInt64) -> Int64 {
        let v = Int64(value % UInt64(modulus))
        guard let reference = highest else { return v }
        var candidate = (reference - reference.mod(modulus)) + v
        if candidate - reference > modulus / 2 {
            candidate -= modulus
        } else if reference - candidate > modulus / 2 {
            candidate += modulus
        }
        return candidate
    }
}

extension Int64 {
    /// Euclidean remainder: always in 0..<m for positive m.
    fileprivate func mod(_ m: Int64) -> Int64 {
        let r = self % m
        return r < 0 ? r + m : r
    }
}
