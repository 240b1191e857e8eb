#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address, network byte order packed into a host integer (192.0.2.1 = 0xC0000201).
    case v4(UInt32)
    /// An IPv6 address as its 16 bytes, high half then low half.
    case v6(high: UInt64, low: UInt64)

    /// Parses dotted-quad IPv4 or RFC 5952 IPv6 text; nil when it is neither. A zone
    /// suffix ("%eth0") is not accepted.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            self.init(bytes: bytes)
            return
        }
        return nil
    }

    /// An address from 4 or 16 bytes in network order; nil for other lengths.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        let b = Array(bytes)
        switch b.count {
        case 4:
            self = .v4(b.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            self = .v6(
                high: b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: b[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
        default:
            return nil
        }
    }

    /// The address in network byte order (4 or 16 bytes).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): return (0..<4).map { UInt8(truncatingIfNeeded: a >> (24 - 8 * $0)) }
        case .v6(let high, let low):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    /// Whether this is an IPv6 address.
    public var isIPv6: Bool { if case .v6 = self { true } else { false } }

    /// Whether the address is loopback (127.0.0.0/8 or ::1).
    public var isLoopback: Bool {
        switch self {
        case .v4(let a): a >> 24 == 127
        case .v6(let high, let low): high == 0 && low == 1
        }
    }

    /// Whether the address is IPv6 link-local (fe80::/10).
    public var isLinkLocal: Bool {
        switch self {
        case .v4(let a): a >> 16 == 0xA9FE
        case .v6(let high, _): high >> 54 == 0x3FA
        }
    }

    public var description: String {
        var out = [CChar](repeating: 0, count: 64)
        switch self {
        case .v4(let a):
            var addr = in_addr(s_addr: a.bigEndian)
            inet_ntop(AF_INET, &addr, &out, 64)
        case .v6:
            var addr = in6_addr()
            let b = bytes
            withUnsafeMutableBytes(of: &addr) { raw in for i in 0..<16 { raw[i] = b[i] } }
            inet_ntop(AF_INET6, &addr, &out, 64)
        }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An IP address and UDP port: where a datagram comes from or goes to.
public struct TransportAddress: Hashable, Sendable, CustomStringConvertible {
    /// The IP address.
    public var ip: IPAddress
    /// The UDP port.
    public var port: UInt16

    /// An address from its parts.
    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses "192.0.2.1:3478" or "[2001:db8::1]:3478"; nil when malformed.
    public init?(_ text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let ip = IPAddress(String(host)), let port = UInt16(portText) else { return nil }
        self.init(ip: ip, port: port)
    }

    public var description: String { ip.isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
}
