import MeetKitNet

/// Typed views of the attributes WebRTC peers put in SDP. Values that do not parse are
/// skipped by these views (and stay in `attributes`, so they still round-trip).

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]` (RFC 8866 §6.6).
public struct RTPMap: Sendable, Hashable {
    /// Payload type 0…127.
    public var payloadType: Int
    /// Encoding name as written ("opus", "VP8", "rtx", …).
    public var name: String
    /// Clock rate.
    public var clockRate: Int
    /// Channels (audio), when given.
    public var channels: Int?

    /// An rtpmap from its parts.
    public init(payloadType: Int, name: String, clockRate: Int, channels: Int? = nil) {
        self.payloadType = payloadType
        self.name = name
        self.clockRate = clockRate
        self.channels = channels
    }

    var value: String { "\(payloadType) \(name)/\(clockRate)" + (channels.map { "/\($0)" } ?? "") }
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285 §8).
public struct ExtMap: Sendable, Hashable {
    /// Extension ID 1…255.
    public var id: Int
    /// Direction, when given.
    public var direction: String?
    /// Extension URI.
    public var uri: String
    /// Extension attributes, when given.
    public var extensionAttributes: String?

    /// An extmap from its parts.
    public init(id: Int, direction: String? = nil, uri: String, extensionAttributes: String? = nil) {
        self.id = id
        self.direction = direction
        self.uri = uri
        self.extensionAttributes = extensionAttributes
    }
}

/// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576 §4.1).
public struct SSRCAttribute: Sendable, Hashable {
    /// The SSRC.
    public var ssrc: UInt32
    /// Source attribute name ("cname", "msid", …).
    public var attribute: String
    /// Its value.
    public var value: String?
}

/// `a=rid:<id> <send|recv> [restrictions]` (RFC 8851 §4).
public struct RID: Sendable, Hashable {
    /// RTP stream ID.
    public var id: String
    /// "send" or "recv".
    public var direction: String
    /// Restrictions such as "max-width=1280;max-height=720", when given.
    public var restrictions: String?
}

/// A codec of a media section: rtpmap, fmtp and rtcp-fb of one payload type together.
public struct SDPCodec: Sendable, Hashable {
    /// rtpmap fields.
    public var rtpMap: RTPMap
    /// The fmtp parameters string, when given.
    public var formatParameters: String?
    /// rtcp-fb values for this payload type (and "*").
    public var feedback: [String]

    /// The fmtp parameters as key/value pairs ("minptime=10;useinbandfec=1").
    public var parameters: [String: String] {
        var out: [String: String] = [:]
        for part in (formatParameters ?? "").split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = kv[0].trimmingSpaces
            guard !key.isEmpty else { continue }
            out[key] = kv.count == 2 ? kv[1].trimmingSpaces : ""
        }
        return out
    }
}

/// Audio or video: the media of a section MeetKit sends or receives.
public enum MediaKind: String, Sendable, Hashable {
    case audio, video
}

/// Media direction (RFC 8866 §6.7).
public enum MediaDirection: String, Sendable, Hashable, CaseIterable {
    case sendrecv, sendonly, recvonly, inactive

    /// Whether this side sends media (sendrecv, sendonly).
    public var sends: Bool { self == .sendrecv || self == .sendonly }
    /// Whether this side receives media (sendrecv, recvonly).
    public var receives: Bool { self == .sendrecv || self == .recvonly }
}

extension Substring {
    var trimmingSpaces: String { String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}

/// Lookups shared by session and media levels.
public protocol SDPAttributeContainer {
    /// The attributes in order.
    var attributes: [SDPAttribute] { get set }
}

extension SDPAttributeContainer {
    /// Values of every attribute named `name`.
    public func values(_ name: String) -> [String] { attributes.filter { $0.name == name }.compactMap(\.value) }
    /// The value of the first attribute named `name`.
    public func value(_ name: String) -> String? { attributes.first { $0.name == name }?.value }
    /// Whether a flag or valued attribute named `name` is present.
    public func has(_ name: String) -> Bool { attributes.contains { $0.name == name } }

    /// Replaces every `name` attribute by one with `value` (or removes them, with nil).
    public mutating func set(_ name: String, _ value: String?) {
        if let i = attributes.firstIndex(where: { $0.name == name }) {
            attributes.removeAll { $0.name == name }
            if let value { attributes.insert(SDPAttribute(name, value), at: min(i, attributes.count)) }
        } else if let value {
            attributes.append(SDPAttribute(name, value))
        }
    }

    /// Sets or clears a flag attribute.
    public mutating func setFlag(_ name: String, _ on: Bool) {
        if on, !has(name) { attributes.append(SDPAttribute(name)) }
        if !on { attributes.removeAll { $0.name == name } }
    }

    /// a=ice-ufrag.
    public var iceUfrag: String? { value("ice-ufrag") }
    /// a=ice-pwd.
    public var icePwd: String? { value("ice-pwd") }
    /// a=ice-options tokens ("trickle", "ice2", …).
    public var iceOptions: [String] { values("ice-options").flatMap { $0.split(separator: " ").map(String.init) } }
    /// a=fingerprint values as (hash function, colon-separated hex).
    public var fingerprints: [(algorithm: String, value: String)] {
        values("fingerprint").compactMap {
            let p = $0.split(separator: " ", maxSplits: 1)
            return p.count == 2 ? (p[0].lowercased(), String(p[1])) : nil
        }
    }
    /// a=setup: "actpass", "active", "passive" or "holdconn".
    public var setup: String? { value("setup") }
    /// Direction attribute, when present.
    public var direction: MediaDirection? {
        attributes.lazy.compactMap { MediaDirection(rawValue: $0.name) }.first
    }
}

extension SessionDescription: SDPAttributeContainer {
    /// a=group:BUNDLE mid lists (RFC 9143).
    public var bundleGroups: [[String]] {
        values("group").compactMap {
            let p = $0.split(separator: " ").map(String.init)
            return p.first == "BUNDLE" ? Array(p.dropFirst()) : nil
        }
    }

    /// a=ice-lite at session level: the peer is an ICE-lite agent (RFC 8445 §2.5).
    public var isICELite: Bool { has("ice-lite") }

    /// ICE credentials of a media section, falling back to session-level ones.
    public func iceCredentials(of media: MediaDescription) -> (ufrag: String, pwd: String)? {
        guard let ufrag = media.iceUfrag ?? iceUfrag, let pwd = media.icePwd ?? icePwd else { return nil }
        return (ufrag, pwd)
    }

    /// Fingerprints of a media section, falling back to session-level ones.
    public func fingerprints(of media: MediaDescription) -> [(algorithm: String, value: String)] {
        let own = media.fingerprints
        return own.isEmpty ? fingerprints : own
    }
}

extension MediaDescription: SDPAttributeContainer {
    /// a=mid (RFC 9143).
    public var mid: String? { value("mid") }
    /// a=rtcp-mux (RFC 5761).
    public var rtcpMux: Bool { has("rtcp-mux") }
    /// a=rtcp-rsize (RFC 5506).
    public var rtcpReducedSize: Bool { has("rtcp-rsize") }
    /// a=end-of-candidates (RFC 8840).
    public var endOfCandidates: Bool { has("end-of-candidates") }
    /// a=candidate lines that parse.
    public var candidates: [ICECandidate] { values("candidate").compactMap { try? ICECandidate(parsing: $0) } }
    /// a=sctp-port (RFC 8841).
    public var sctpPort: Int? { value("sctp-port").flatMap { Int($0) } }
    /// a=max-message-size (RFC 8841).
    public var maxMessageSize: Int? { value("max-message-size").flatMap { Int($0) } }
    /// a=simulcast value (RFC 8853), unparsed.
    public var simulcast: String? { value("simulcast") }

    /// a=rtpmap entries.
    public var rtpMaps: [RTPMap] {
        values("rtpmap").compactMap { v in
            let p = v.split(separator: " ", maxSplits: 1)
            guard p.count == 2, let pt = Int(p[0]), (0...127).contains(pt) else { return nil }
            let enc = p[1].split(separator: "/")
            guard enc.count >= 2, let clock = Int(enc[1]), clock > 0 else { return nil }
            return RTPMap(
                payloadType: pt, name: String(enc[0]), clockRate: clock, channels: enc.count > 2 ? Int(enc[2]) : nil)
        }
    }

    /// a=fmtp parameters by payload type.
    public var formatParameters: [Int: String] {
        var out: [Int: String] = [:]
        for v in values("fmtp") {
            let p = v.split(separator: " ", maxSplits: 1)
            if p.count == 2, let pt = Int(p[0]) { out[pt] = String(p[1]) }
        }
        return out
    }

    /// a=rtcp-fb entries as (payload type or "*", value).
    public var rtcpFeedback: [(payloadType: String, value: String)] {
        values("rtcp-fb").compactMap { v in
            let p = v.split(separator: " ", maxSplits: 1)
            return p.count == 2 ? (String(p[0]), String(p[1])) : nil
        }
    }

    /// The codecs of the section in m= line order.
    public var codecs: [SDPCodec] {
        let maps = Dictionary(rtpMaps.map { ($0.payloadType, $0) }, uniquingKeysWith: { a, _ in a })
        let fmtp = formatParameters
        let fb = rtcpFeedback
        return formats.compactMap { f in
            guard let pt = Int(f), let map = maps[pt] else { return nil }
            return SDPCodec(
                rtpMap: map, formatParameters: fmtp[pt],
                feedback: fb.filter { $0.payloadType == f || $0.payloadType == "*" }.map(\.value))
        }
    }

    /// a=extmap entries.
    public var extMaps: [ExtMap] {
        values("extmap").compactMap { v in
            let p = v.split(separator: " ", maxSplits: 2).map(String.init)
            guard p.count >= 2 else { return nil }
            let idParts = p[0].split(separator: "/", omittingEmptySubsequences: false)
            guard let id = Int(idParts[0]), (1...255).contains(id) else { return nil }
            return ExtMap(
                id: id, direction: idParts.count > 1 ? String(idParts[1]) : nil, uri: p[1],
                extensionAttributes: p.count > 2 ? p[2] : nil)
        }
    }

    /// a=ssrc entries.
    public var ssrcs: [SSRCAttribute] {
        values("ssrc").compactMap { v in
            let p = v.split(separator: " ", maxSplits: 1)
            guard p.count == 2, let ssrc = UInt32(p[0]) else { return nil }
            let kv = p[1].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            return SSRCAttribute(ssrc: ssrc, attribute: String(kv[0]), value: kv.count > 1 ? String(kv[1]) : nil)
        }
    }

    /// a=ssrc-group entries as (semantics, SSRCs): "FID" pairs media and RTX.
    public var ssrcGroups: [(semantics: String, ssrcs: [UInt32])] {
        values("ssrc-group").compactMap { v in
            let p = v.split(separator: " ")
            guard let first = p.first else { return nil }
            let list = p.dropFirst().compactMap { UInt32($0) }
            return list.count == p.count - 1 ? (String(first), list) : nil
        }
    }

    /// a=msid (RFC 8830) as (stream ID, track ID).
    public var msid: (stream: String, track: String?)? {
        guard let v = value("msid") else { return nil }
        let p = v.split(separator: " ", maxSplits: 1)
        guard let first = p.first else { return nil }
        return (String(first), p.count > 1 ? String(p[1]) : nil)
    }

    /// a=rid entries.
    public var rids: [RID] {
        values("rid").compactMap { v in
            let p = v.split(separator: " ", maxSplits: 2).map(String.init)
            guard p.count >= 2 else { return nil }
            return RID(id: p[0], direction: p[1], restrictions: p.count > 2 ? p[2] : nil)
        }
    }
}
