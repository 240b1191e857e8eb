import MeetKitNet

/// An ICE candidate (RFC 8445 §5.1, grammar of RFC 8839 §5.1): a transport address an
/// agent can receive on, with its type, priority and foundation.
///
/// ```swift
/// let c = try ICECandidate(parsing: "candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host")
/// c.attributeValue   // "1 1 udp 2130706431 192.0.2.10 50000 typ host"
/// ```
public struct ICECandidate: Sendable, Hashable, CustomStringConvertible {
    /// Candidate types (RFC 8445 §5.1.1), with their RECOMMENDED type preferences (§5.1.2.2).
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// An address of a local interface.
        case host
        /// The address a STUN server saw.
        case serverReflexive = "srflx"
        /// The address a peer saw, learnt from a connectivity check.
        case peerReflexive = "prflx"
        /// An address on a TURN relay.
        case relayed = "relay"

        /// Type preference: host 126, prflx 110, srflx 100, relay 0.
        public var typePreference: UInt32 {
            switch self {
            case .host: 126
            case .peerReflexive: 110
            case .serverReflexive: 100
            case .relayed: 0
            }
        }
    }

    /// Groups candidates that are alike (same type, base IP, server, transport).
    public var foundation: String
    /// Component: 1 for RTP (and everything, with rtcp-mux), 2 for RTCP.
    public var component: Int
    /// "udp" (case-insensitive in SDP; kept lower-case here) or "tcp".
    public var transport: String
    /// Priority (RFC 8445 §5.1.2.1).
    public var priority: UInt32
    /// The connection address: an IP literal, or an mDNS name ending in ".local".
    public var address: String
    /// The port.
    public var port: UInt16
    /// The type.
    public var kind: Kind
    /// The related address (base or server-reflexive address), for non-host candidates.
    public var relatedAddress: String?
    /// The related port.
    public var relatedPort: UInt16?
    /// Extension attributes, in order (generation, ufrag, network-id, tcptype…).
    public var extensions: [(name: String, value: String)]

    /// A candidate from its fields.
    public init(
        foundation: String, component: Int = 1, transport: String = "udp", priority: UInt32, address: String,
        port: UInt16, kind: Kind, relatedAddress: String? = nil, relatedPort: UInt16? = nil,
        extensions: [(name: String, value: String)] = []
    ) {
        self.foundation = foundation
        self.component = component
        self.transport = transport
        self.priority = priority
        self.address = address
        self.port = port
        self.kind = kind
        self.relatedAddress = relatedAddress
        self.relatedPort = relatedPort
        self.extensions = extensions
    }

    /// The transport address, when `address` is an IP literal (not an mDNS name).
    public var transportAddress: TransportAddress? {
        IPAddress(address).map { TransportAddress(ip: $0, port: port) }
    }

    /// Priority by the formula of RFC 8445 §5.1.2.1:
    /// 2²⁴ × type preference + 2⁸ × local preference + (256 − component).
    public static func priority(kind: Kind, localPreference: UInt32 = 65535, component: Int = 1) -> UInt32 {
        (kind.typePreference << 24) + ((localPreference & 0xFFFF) << 8) + UInt32(256 - max(1, min(256, component)))
    }

    /// Parses an a=candidate value, with or without the leading "candidate:".
    /// - Throws: ``SDPError/invalidCandidate(_:reason:)``.
    public init(parsing text: String) throws(SDPError) {
        var body = Substring(text)
        if body.hasPrefix("a=") { body = body.dropFirst(2) }
        if body.hasPrefix("candidate:") { body = body.dropFirst("candidate:".count) }
        let f = body.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        func fail(_ reason: String) -> SDPError { .invalidCandidate(text, reason: reason) }
        guard f.count >= 8 else { throw fail("\(f.count) fields, needs at least 8") }
        guard !f[0].isEmpty, f[0].count <= 32 else { throw fail("foundation") }
        guard let component = Int(f[1]), (1...256).contains(component) else { throw fail("component \(f[1])") }
        guard let priority = UInt32(f[3]) else { throw fail("priority \(f[3])") }
        guard let port = UInt16(f[5]) else { throw fail("port \(f[5])") }
        guard f[6] == "typ", let kind = Kind(rawValue: f[7]) else { throw fail("type \(f[6]) \(f[7])") }
        self.init(
            foundation: f[0], component: component, transport: f[2].lowercased(), priority: priority, address: f[4],
            port: port, kind: kind)
        var i = 8
        while i < f.count {
            guard i + 1 < f.count else { throw fail("extension \(f[i]) without a value") }
            switch f[i] {
            case "raddr": relatedAddress = f[i + 1]
            case "rport":
                guard let p = UInt16(f[i + 1]) else { throw fail("rport \(f[i + 1])") }
                relatedPort = p
            default: extensions.append((f[i], f[i + 1]))
            }
            i += 2
        }
    }

    /// The value of an a=candidate line (without "candidate:").
    public var attributeValue: String {
        var s = "\(foundation) \(component) \(transport) \(priority) \(address) \(port) typ \(kind.rawValue)"
        if let relatedAddress { s += " raddr \(relatedAddress)" }
        if let relatedPort { s += " rport \(relatedPort)" }
        for e in extensions { s += " \(e.name) \(e.value)" }
        return s
    }

    /// "candidate:…", as JSEP's trickle messages carry it.
    public var description: String { "candidate:" + attributeValue }

    public static func == (a: ICECandidate, b: ICECandidate) -> Bool { a.description == b.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }
}
