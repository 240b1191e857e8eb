import MeetKitNet

/// Typed access to the attributes ICE uses. Setters replace any attribute of the same type.
extension STUNMessage {
    /// The first attribute of `type`.
    public func attribute(_ type: UInt16) -> STUNAttribute? { attributes.first { $0.type == type } }

    /// Replaces (or removes, with nil) the attribute of `type`.
    public mutating func setAttribute(_ type: UInt16, _ value: [UInt8]?) {
        if let i = attributes.firstIndex(where: { $0.type == type }) {
            if let value { attributes[i].value = value } else { attributes.remove(at: i) }
        } else if let value {
            attributes.append(STUNAttribute(type: type, value: value))
        }
    }

    /// USERNAME (RFC 8489 §14.3): for ICE checks, "remote-ufrag:local-ufrag".
    public var username: String? {
        get { attribute(STUNAttribute.Kind.username).map { String(decoding: $0.value, as: UTF8.self) } }
        set { setAttribute(STUNAttribute.Kind.username, newValue.map { Array($0.utf8) }) }
    }

    /// SOFTWARE (RFC 8489 §14.14).
    public var software: String? {
        get { attribute(STUNAttribute.Kind.software).map { String(decoding: $0.value, as: UTF8.self) } }
        set { setAttribute(STUNAttribute.Kind.software, newValue.map { Array($0.utf8) }) }
    }

    /// PRIORITY (RFC 8445 §7.1.1).
    public var priority: UInt32? {
        get {
            guard let v = attribute(STUNAttribute.Kind.priority)?.value, v.count == 4 else { return nil }
            return be32(v, 0)
        }
        set { setAttribute(STUNAttribute.Kind.priority, newValue.map { Self.bytes32($0) }) }
    }

    /// USE-CANDIDATE (RFC 8445 §7.1.2): the controlling agent nominates this pair.
    public var useCandidate: Bool {
        get { attribute(STUNAttribute.Kind.useCandidate) != nil }
        set { setAttribute(STUNAttribute.Kind.useCandidate, newValue ? [] : nil) }
    }

    /// ICE-CONTROLLING tie-breaker (RFC 8445 §7.1.3).
    public var iceControlling: UInt64? {
        get { tieBreaker(STUNAttribute.Kind.iceControlling) }
        set { setAttribute(STUNAttribute.Kind.iceControlling, newValue.map { Self.bytes64($0) }) }
    }

    /// ICE-CONTROLLED tie-breaker (RFC 8445 §7.1.3).
    public var iceControlled: UInt64? {
        get { tieBreaker(STUNAttribute.Kind.iceControlled) }
        set { setAttribute(STUNAttribute.Kind.iceControlled, newValue.map { Self.bytes64($0) }) }
    }

    private func tieBreaker(_ type: UInt16) -> UInt64? {
        guard let v = attribute(type)?.value, v.count == 8 else { return nil }
        return v.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2): the source address the server saw.
    public var xorMappedAddress: TransportAddress? {
        get {
            guard let v = attribute(STUNAttribute.Kind.xorMappedAddress)?.value else { return nil }
            return try? Self.decodeAddress(v, xorWith: xorMask)
        }
        set {
            setAttribute(STUNAttribute.Kind.xorMappedAddress, newValue.map { Self.encodeAddress($0, xorWith: xorMask) })
        }
    }

    /// MAPPED-ADDRESS (RFC 8489 §14.1), sent by old servers instead of XOR-MAPPED-ADDRESS.
    public var mappedAddress: TransportAddress? {
        get {
            guard let v = attribute(STUNAttribute.Kind.mappedAddress)?.value else { return nil }
            return try? Self.decodeAddress(v, xorWith: nil)
        }
        set { setAttribute(STUNAttribute.Kind.mappedAddress, newValue.map { Self.encodeAddress($0, xorWith: nil) }) }
    }

    /// ERROR-CODE (RFC 8489 §14.8): code 300–699 and reason phrase.
    public var errorCode: (code: Int, reason: String)? {
        get {
            guard let v = attribute(STUNAttribute.Kind.errorCode)?.value, v.count >= 4 else { return nil }
            let code = Int(v[2] & 0x07) * 100 + Int(v[3])
            return (code, String(decoding: v[4...], as: UTF8.self))
        }
        set {
            setAttribute(
                STUNAttribute.Kind.errorCode,
                newValue.map { [0, 0, UInt8($0.code / 100), UInt8($0.code % 100)] + Array($0.reason.utf8) })
        }
    }

    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9), in a 420 error response.
    public var unknownAttributes: [UInt16]? {
        get {
            guard let v = attribute(STUNAttribute.Kind.unknownAttributes)?.value else { return nil }
            return stride(from: 0, to: v.count - 1, by: 2).map { UInt16(v[$0]) << 8 | UInt16(v[$0 + 1]) }
        }
        set {
            setAttribute(
                STUNAttribute.Kind.unknownAttributes,
                newValue.map { $0.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } })
        }
    }

    /// Comprehension-required attribute types in this message that are not in `known`.
    public func unknownComprehensionRequired(known: Set<UInt16>) -> [UInt16] {
        attributes.filter { $0.isComprehensionRequired && !known.contains($0.type) }.map(\.type)
    }

    /// The magic cookie followed by the transaction ID: what XOR-MAPPED-ADDRESS is masked with.
    private var xorMask: [UInt8] { Self.bytes32(Self.magicCookie) + transactionID.bytes }

    static func bytes32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
    static func bytes64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }

    static func encodeAddress(_ a: TransportAddress, xorWith mask: [UInt8]?) -> [UInt8] {
        var ip = a.ip.bytes
        var port = a.port
        if let mask {
            port ^= UInt16(mask[0]) << 8 | UInt16(mask[1])
            for i in 0..<ip.count { ip[i] ^= mask[i] }
        }
        return [0, a.ip.isIPv6 ? 2 : 1, UInt8(port >> 8), UInt8(port & 0xFF)] + ip
    }

    static func decodeAddress(_ v: [UInt8], xorWith mask: [UInt8]?) throws(STUNError) -> TransportAddress {
        guard v.count >= 4 else { throw .malformedAttribute(type: 0x20, reason: "address of \(v.count) bytes") }
        let size: Int
        switch v[1] {
        case 1: size = 4
        case 2: size = 16
        default: throw .malformedAttribute(type: 0x20, reason: "address family \(v[1])")
        }
        guard v.count == 4 + size else { throw .malformedAttribute(type: 0x20, reason: "address of \(v.count) bytes") }
        var port = UInt16(v[2]) << 8 | UInt16(v[3])
        var ip = Array(v[4...])
        if let mask {
            port ^= UInt16(mask[0]) << 8 | UInt16(mask[1])
            for i in 0..<ip.count { ip[i] ^= mask[i] }
        }
        return TransportAddress(ip: IPAddress(bytes: ip)!, port: port)
    }
}
