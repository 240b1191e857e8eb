import MeetKitNet

/// An SDP attribute line, `a=name` or `a=name:value` (RFC 8866 §5.13).
public struct SDPAttribute: Sendable, Hashable {
    /// The name, before the colon.
    public var name: String
    /// The value after the colon, or nil for a flag attribute.
    public var value: String?

    /// An attribute from its parts.
    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }

    var line: String { value.map { "a=\(name):\($0)" } ?? "a=\(name)" }
}

/// A line MeetKit keeps without interpreting (i=, u=, e=, p=, b=, z=, k=, r=…), for
/// round-tripping.
public struct SDPLine: Sendable, Hashable {
    /// The one-letter type.
    public var type: Character
    /// Everything after "=".
    public var value: String

    /// A line from its parts.
    public init(type: Character, value: String) {
        self.type = type
        self.value = value
    }
}

/// The origin line, `o=` (RFC 8866 §5.2).
public struct SDPOrigin: Sendable, Hashable {
    /// User name, "-" when none.
    public var username = "-"
    /// Session ID.
    public var sessionID: String
    /// Session version, incremented on each new offer or answer.
    public var sessionVersion: UInt64
    /// "IN".
    public var networkType = "IN"
    /// "IP4" or "IP6".
    public var addressType = "IP4"
    /// Unicast address (WebRTC puts 127.0.0.1 or 0.0.0.0).
    public var address = "127.0.0.1"

    /// An origin with the given ID and version.
    public init(sessionID: String, sessionVersion: UInt64) {
        self.sessionID = sessionID
        self.sessionVersion = sessionVersion
    }
}

/// The connection line, `c=` (RFC 8866 §5.7).
public struct SDPConnection: Sendable, Hashable {
    /// "IN".
    public var networkType = "IN"
    /// "IP4" or "IP6".
    public var addressType = "IP4"
    /// The address ("0.0.0.0" in WebRTC offers before candidates).
    public var address = "0.0.0.0"

    /// A connection line for `address`.
    public init(address: String = "0.0.0.0", addressType: String = "IP4") {
        self.address = address
        self.addressType = addressType
    }
}

/// A whole SDP session description (RFC 8866) as WebRTC uses it: session-level lines and
/// media sections. Every attribute is kept in order, known or not, so a description
/// parses and serialises back to the same lines.
///
/// ```swift
/// let sdp = try SessionDescription(parsing: offerText)
/// for m in sdp.media { print(m.kind, m.mid ?? "-", m.codecs.map(\.name)) }
/// let text = sdp.serialized()
/// ```
public struct SessionDescription: Sendable, Hashable {
    /// `v=`, always 0.
    public var version = 0
    /// `o=`.
    public var origin: SDPOrigin
    /// `s=`, "-" in WebRTC.
    public var sessionName = "-"
    /// Session-level `c=`.
    public var connection: SDPConnection?
    /// `t=` lines, "0 0" in WebRTC.
    public var timing = ["0 0"]
    /// Session-level attributes in order.
    public var attributes: [SDPAttribute] = []
    /// Other session-level lines (i=, u=, e=, p=, b=, z=, k=, r=) in order.
    public var otherLines: [SDPLine] = []
    /// Media sections in order.
    public var media: [MediaDescription] = []

    /// An empty session with the given origin.
    public init(origin: SDPOrigin) { self.origin = origin }

    /// Parses SDP text (CRLF or LF line ends).
    /// - Throws: ``SDPError`` naming the offending line.
    public init(parsing text: String) throws(SDPError) {
        origin = SDPOrigin(sessionID: "0", sessionVersion: 0)
        var sawVersion = false
        var sawOrigin = false
        var sawName = false
        var sawTiming = false
        timing = []
        var current: MediaDescription?
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard lines.count <= 10_000, text.utf8.count <= 1 << 20 else {
            throw .syntax(line: 1, text: "", reason: "description larger than 1 MiB or 10000 lines")
        }
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.isEmpty { continue }
            func fail(_ reason: String) -> SDPError { .syntax(line: number, text: String(line), reason: reason) }
            guard line.count >= 2, let type = line.first, type.isASCII, type.isLetter,
                line[line.index(after: line.startIndex)] == "="
            else { throw fail("expected <letter>=<value>") }
            let value = String(line.dropFirst(2))
            if !sawVersion {
                guard type == "v" else { throw fail("the first line must be v=") }
                guard value == "0" else { throw fail("version \(value), only 0 exists") }
                sawVersion = true
                continue
            }
            switch type {
            case "m":
                if let m = current { media.append(m) }
                current = try MediaDescription(mLine: value, line: number, text: String(line))
            case "a":
                let attribute: SDPAttribute
                if let colon = value.firstIndex(of: ":") {
                    attribute = SDPAttribute(
                        String(value[..<colon]), String(value[value.index(after: colon)...]))
                } else {
                    attribute = SDPAttribute(value)
                }
                guard !attribute.name.isEmpty else { throw fail("attribute without a name") }
                if current != nil { current!.attributes.append(attribute) } else { attributes.append(attribute) }
            case "c":
                let parts = value.split(separator: " ")
                guard parts.count == 3 else { throw fail("c= needs network type, address type and address") }
                var c = SDPConnection(address: String(parts[2]), addressType: String(parts[1]))
                c.networkType = String(parts[0])
                if current != nil { current!.connection = c } else { connection = c }
            case "o" where current == nil:
                let p = value.split(separator: " ")
                guard p.count == 6, let version = UInt64(p[2]) else {
                    throw fail("o= needs 6 fields with a numeric version")
                }
                origin = SDPOrigin(sessionID: String(p[1]), sessionVersion: version)
                origin.username = String(p[0])
                origin.networkType = String(p[3])
                origin.addressType = String(p[4])
                origin.address = String(p[5])
                sawOrigin = true
            case "s" where current == nil:
                sessionName = value
                sawName = true
            case "t" where current == nil:
                timing.append(value)
                sawTiming = true
            case "v", "o", "s", "t":
                throw fail("\(type)= inside a media section")
            default:
                let other = SDPLine(type: type, value: value)
                if current != nil { current!.otherLines.append(other) } else { otherLines.append(other) }
            }
        }
        if let m = current { media.append(m) }
        guard sawVersion else { throw .missingLine("v=") }
        guard sawOrigin else { throw .missingLine("o=") }
        guard sawName else { throw .missingLine("s=") }
        guard sawTiming else { throw .missingLine("t=") }
    }

    /// The description as SDP text with CRLF line ends, lines in RFC 8866 order.
    public func serialized() -> String {
        var out = "v=\(version)\r\n"
        out += "o=\(origin.username) \(origin.sessionID) \(origin.sessionVersion) "
        out += "\(origin.networkType) \(origin.addressType) \(origin.address)\r\n"
        out += "s=\(sessionName)\r\n"
        for l in otherLines where "iuep".contains(l.type) { out += "\(l.type)=\(l.value)\r\n" }
        if let c = connection { out += "c=\(c.networkType) \(c.addressType) \(c.address)\r\n" }
        for l in otherLines where l.type == "b" { out += "b=\(l.value)\r\n" }
        for t in timing { out += "t=\(t)\r\n" }
        for l in otherLines where !"iuepb".contains(l.type) { out += "\(l.type)=\(l.value)\r\n" }
        for a in attributes { out += a.line + "\r\n" }
        for m in media { out += m.serialized() }
        return out
    }
}

/// One media section, `m=` and what follows it (RFC 8866 §5.14).
public struct MediaDescription: Sendable, Hashable {
    /// "audio", "video" or "application".
    public var kind: String
    /// The port (9 in WebRTC, 0 for a rejected section).
    public var port: Int
    /// Number of ports when given as port/count.
    public var portCount: Int?
    /// "UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP", …
    public var proto: String
    /// Payload types, or "webrtc-datachannel".
    public var formats: [String]
    /// Media-level `c=`.
    public var connection: SDPConnection?
    /// Attributes in order.
    public var attributes: [SDPAttribute] = []
    /// Other lines (i=, b=, k=) in order.
    public var otherLines: [SDPLine] = []

    /// A media section with the given m= line fields.
    public init(kind: String, port: Int = 9, proto: String = "UDP/TLS/RTP/SAVPF", formats: [String]) {
        self.kind = kind
        self.port = port
        self.proto = proto
        self.formats = formats
    }

    init(mLine value: String, line: Int, text: String) throws(SDPError) {
        let p = value.split(separator: " ", omittingEmptySubsequences: true)
        guard p.count >= 3 else { throw .syntax(line: line, text: text, reason: "m= needs media, port and proto") }
        let portParts = p[1].split(separator: "/", omittingEmptySubsequences: false)
        guard let port = Int(portParts[0]), (0...65535).contains(port) else {
            throw .syntax(line: line, text: text, reason: "port \(p[1]) is not 0…65535")
        }
        if portParts.count == 2 {
            guard let n = Int(portParts[1]), (1...65535).contains(n) else {
                throw .syntax(line: line, text: text, reason: "port count \(portParts[1])")
            }
            portCount = n
        } else if portParts.count > 2 {
            throw .syntax(line: line, text: text, reason: "port \(p[1])")
        }
        self.kind = String(p[0])
        self.port = port
        self.proto = String(p[2])
        self.formats = p.dropFirst(3).map(String.init)
    }

    func serialized() -> String {
        var out = "m=\(kind) \(port)\(portCount.map { "/\($0)" } ?? "") \(proto)"
        for f in formats { out += " \(f)" }
        out += "\r\n"
        for l in otherLines where l.type == "i" { out += "i=\(l.value)\r\n" }
        if let c = connection { out += "c=\(c.networkType) \(c.addressType) \(c.address)\r\n" }
        for l in otherLines where l.type != "i" { out += "\(l.type)=\(l.value)\r\n" }
        for a in attributes { out += a.line + "\r\n" }
        return out
    }
}
