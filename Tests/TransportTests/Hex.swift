import Foundation

/// Bytes from hex with spaces and line breaks, as RFCs print them.
func hex(_ s: String) -> [UInt8] {
    let digits = Array(s.filter(\.isHexDigit))
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Lower-case hex of `bytes`, as the interop scripts exchange them.
func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
