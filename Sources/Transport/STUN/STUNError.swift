import MeetKitNet

/// Why bytes are not an acceptable STUN message.
public enum STUNError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer than the 20 bytes of a STUN header.
    case tooShort(Int)
    /// The first two bits are not zero or the magic cookie is missing (RFC 8489 §5): not STUN.
    case notStun
    /// The header's length is not a multiple of 4 or disagrees with the datagram.
    case badLength(declared: Int, available: Int)
    /// An attribute runs past the end of the message.
    case truncatedAttribute(type: UInt16, offset: Int)
    /// An attribute's value is malformed.
    case malformedAttribute(type: UInt16, reason: String)
    /// MESSAGE-INTEGRITY does not match the key.
    case integrityMismatch
    /// FINGERPRINT does not match the message.
    case fingerprintMismatch
    /// A required attribute is absent.
    case missingAttribute(String)

    public var description: String {
        switch self {
        case .tooShort(let n): "STUN message of \(n) bytes (header needs 20)"
        case .notStun: "not a STUN message (leading bits or magic cookie)"
        case .badLength(let declared, let available):
            "STUN length \(declared) does not fit \(available) bytes of attributes"
        case .truncatedAttribute(let type, let offset):
            "STUN attribute 0x\(String(type, radix: 16)) at offset \(offset) runs past the message"
        case .malformedAttribute(let type, let reason): "STUN attribute 0x\(String(type, radix: 16)): \(reason)"
        case .integrityMismatch: "STUN MESSAGE-INTEGRITY mismatch"
        case .fingerprintMismatch: "STUN FINGERPRINT mismatch"
        case .missingAttribute(let name): "STUN message lacks \(name)"
        }
    }
}
