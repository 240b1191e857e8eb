import COpenSSL
import MeetKitNet

/// The class of a STUN message (RFC 8489 §5).
public enum STUNClass: UInt16, Sendable, Hashable {
    /// A request, answered by a response.
    case request = 0
    /// An indication: no response.
    case indication = 1
    /// A success response.
    case successResponse = 2
    /// An error response, with ERROR-CODE.
    case errorResponse = 3
}

/// STUN methods MeetKit uses.
public enum STUNMethod {
    /// Binding (RFC 8489 §3): connectivity checks, server-reflexive discovery, keep-alives.
    public static let binding: UInt16 = 0x001
}

/// A 96-bit STUN transaction ID.
public struct STUNTransactionID: Hashable, Sendable, CustomStringConvertible {
    /// The 12 bytes.
    public let bytes: [UInt8]

    /// A transaction ID from 12 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 12 else { return nil }
        self.bytes = bytes
    }

    /// A random transaction ID drawn from `generator`.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> STUNTransactionID {
        STUNTransactionID(bytes: (0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })!
    }

    /// A random transaction ID from the system's generator.
    public static func random() -> STUNTransactionID {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    public var description: String { bytes.map { String($0, radix: 16) }.joined() }
}

/// One STUN attribute: a type and its raw value (RFC 8489 §14).
public struct STUNAttribute: Sendable, Hashable {
    /// The attribute type.
    public var type: UInt16
    /// The value, without padding.
    public var value: [UInt8]

    /// An attribute from its parts.
    public init(type: UInt16, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// Attribute types MeetKit knows (RFC 8489 §18.3, RFC 8445 §16.1).
    public enum Kind {
        public static let mappedAddress: UInt16 = 0x0001
        public static let username: UInt16 = 0x0006
        public static let messageIntegrity: UInt16 = 0x0008
        public static let errorCode: UInt16 = 0x0009
        public static let unknownAttributes: UInt16 = 0x000A
        public static let realm: UInt16 = 0x0014
        public static let nonce: UInt16 = 0x0015
        public static let messageIntegritySHA256: UInt16 = 0x001C
        public static let xorMappedAddress: UInt16 = 0x0020
        public static let priority: UInt16 = 0x0024
        public static let useCandidate: UInt16 = 0x0025
        public static let software: UInt16 = 0x8022
        public static let alternateServer: UInt16 = 0x8023
        public static let fingerprint: UInt16 = 0x8028
        public static let iceControlled: UInt16 = 0x8029
        public static let iceControlling: UInt16 = 0x802A
    }

    /// Whether an agent that does not know this type must reject the message (0x0000–0x7FFF).
    public var isComprehensionRequired: Bool { type < 0x8000 }
}

/// A STUN message (RFC 8489 §5–6): class, method, transaction ID and attributes.
///
/// ```swift
/// var request = STUNMessage(class: .request, method: STUNMethod.binding)
/// request.username = "remote:local"
/// request.priority = 1_853_824_767
/// let bytes = request.encoded(integrityKey: Array(remotePassword.utf8), fingerprint: true)
///
/// let reply = try STUNMessage(parsing: datagram)
/// guard STUNMessage.checkIntegrity(datagram, key: key) else { ... }
/// ```
public struct STUNMessage: Sendable, Equatable {
    /// The magic cookie every RFC 5389/8489 message carries.
    public static let magicCookie: UInt32 = 0x2112_A442

    /// The class.
    public var messageClass: STUNClass
    /// The 12-bit method.
    public var method: UInt16
    /// The transaction ID.
    public var transactionID: STUNTransactionID
    /// The attributes, in order. MESSAGE-INTEGRITY and FINGERPRINT are not kept here: they
    /// are computed by ``encoded(integrityKey:fingerprint:)`` and checked with
    /// ``checkIntegrity(_:key:)`` and ``checkFingerprint(_:)``.
    public var attributes: [STUNAttribute]
    /// Whether the parsed message carried MESSAGE-INTEGRITY.
    public private(set) var hasIntegrity = false
    /// Whether the parsed message carried FINGERPRINT.
    public private(set) var hasFingerprint = false

    /// A message with no attributes and a random transaction ID unless given.
    public init(class messageClass: STUNClass, method: UInt16, transactionID: STUNTransactionID = .random()) {
        self.messageClass = messageClass
        self.method = method & 0x0FFF
        self.transactionID = transactionID
        self.attributes = []
    }

    /// Whether a datagram's first byte could start a STUN message (RFC 7983 §7: 0–3).
    public static func mightBeStun(firstByte: UInt8) -> Bool { firstByte < 4 }

    /// The message type field: method and class interleaved (RFC 8489 §5).
    var typeField: UInt16 {
        let m = method
        let c = messageClass.rawValue
        return (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }

    // MARK: parsing

    /// Parses a datagram. Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are
    /// ignored (RFC 8489 §14.5). Integrity and fingerprint are not checked here.
    /// - Throws: ``STUNError`` for anything malformed; nothing traps.
    public init(parsing data: [UInt8]) throws(STUNError) {
        guard data.count >= 20 else { throw .tooShort(data.count) }
        guard data[0] & 0xC0 == 0, be32(data, 4) == Self.magicCookie else { throw .notStun }
        let length = Int(be16(data, 2))
        guard length % 4 == 0, length == data.count - 20 else {
            throw .badLength(declared: length, available: data.count - 20)
        }
        let type = be16(data, 0)
        method = (type & 0x000F) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0F80)
        messageClass = STUNClass(rawValue: ((type >> 4) & 1) | ((type >> 7) & 2))!
        transactionID = STUNTransactionID(bytes: Array(data[8..<20]))!
        attributes = []
        var offset = 20
        var afterIntegrity = false
        while offset < data.count {
            guard offset + 4 <= data.count else { throw .truncatedAttribute(type: 0, offset: offset) }
            let attrType = be16(data, offset)
            let attrLength = Int(be16(data, offset + 2))
            let padded = (attrLength + 3) & ~3
            guard offset + 4 + padded <= data.count else { throw .truncatedAttribute(type: attrType, offset: offset) }
            let value = Array(data[(offset + 4)..<(offset + 4 + attrLength)])
            switch attrType {
            case STUNAttribute.Kind.messageIntegrity:
                guard attrLength == 20 else {
                    throw .malformedAttribute(type: attrType, reason: "\(attrLength) bytes, needs 20")
                }
                hasIntegrity = true
                afterIntegrity = true
            case STUNAttribute.Kind.fingerprint:
                guard attrLength == 4 else {
                    throw .malformedAttribute(type: attrType, reason: "\(attrLength) bytes, needs 4")
                }
                guard offset + 8 == data.count else {
                    throw .malformedAttribute(type: attrType, reason: "FINGERPRINT is not the last attribute")
                }
                hasFingerprint = true
            default:
                if !afterIntegrity { attributes.append(STUNAttribute(type: attrType, value: value)) }
            }
            offset += 4 + padded
        }
    }

    // MARK: encoding

    /// The message's bytes. With a key, a MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) is
    /// appended; with `fingerprint`, a FINGERPRINT (CRC-32 XOR 0x5354554E, §14.7) last.
    public func encoded(integrityKey: [UInt8]? = nil, fingerprint: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + attributes.reduce(0) { $0 + 4 + ($1.value.count + 3) & ~3 } + 32)
        putBE16(&out, typeField)
        putBE16(&out, 0)
        putBE32(&out, Self.magicCookie)
        out += transactionID.bytes
        for a in attributes { Self.append(a, to: &out) }
        if let key = integrityKey {
            Self.setLength(&out, out.count - 20 + 24)
            let mac = Self.hmacSHA1(key: key, data: out)
            Self.append(STUNAttribute(type: STUNAttribute.Kind.messageIntegrity, value: mac), to: &out)
        }
        if fingerprint {
            Self.setLength(&out, out.count - 20 + 8)
            let crc = STUNCRC32.checksum(out) ^ 0x5354_554E
            var value: [UInt8] = []
            putBE32(&value, crc)
            Self.append(STUNAttribute(type: STUNAttribute.Kind.fingerprint, value: value), to: &out)
        }
        Self.setLength(&out, out.count - 20)
        return out
    }

    static func append(_ a: STUNAttribute, to out: inout [UInt8]) {
        putBE16(&out, a.type)
        putBE16(&out, UInt16(a.value.count))
        out += a.value
        let pad = (4 - a.value.count % 4) % 4
        out += [UInt8](repeating: 0, count: pad)
    }

    static func setLength(_ out: inout [UInt8], _ length: Int) {
        out[2] = UInt8((length >> 8) & 0xFF)
        out[3] = UInt8(length & 0xFF)
    }

    static func hmacSHA1(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 20
        _ = key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                HMAC(EVP_sha1(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &mac, &length)
            }
        }
        return mac
    }

    // MARK: checks on received bytes

    /// Whether `data` carries a MESSAGE-INTEGRITY that matches `key` (for ICE, the password
    /// of whoever the message is addressed to). False when absent or malformed.
    public static func checkIntegrity(_ data: [UInt8], key: [UInt8]) -> Bool {
        guard let offset = attributeOffset(data, type: STUNAttribute.Kind.messageIntegrity),
            offset + 24 <= data.count
        else { return false }
        var prefix = Array(data[0..<offset])
        setLength(&prefix, offset - 20 + 24)
        return constantTimeEqual(hmacSHA1(key: key, data: prefix), Array(data[(offset + 4)..<(offset + 24)]))
    }

    /// Whether `data` ends with a FINGERPRINT that matches it. False when absent.
    public static func checkFingerprint(_ data: [UInt8]) -> Bool {
        guard data.count >= 28, let offset = attributeOffset(data, type: STUNAttribute.Kind.fingerprint),
            offset == data.count - 8
        else { return false }
        let expected = STUNCRC32.checksum(Array(data[0..<offset])) ^ 0x5354_554E
        return be32(data, offset + 4) == expected
    }

    /// Offset of the first attribute of `type` in a well-formed message.
    static func attributeOffset(_ data: [UInt8], type: UInt16) -> Int? {
        var offset = 20
        while offset + 4 <= data.count {
            if be16(data, offset) == type { return offset }
            offset += 4 + ((Int(be16(data, offset + 2)) + 3) & ~3)
        }
        return nil
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320) for STUN FINGERPRINT.
enum STUNCRC32 {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
