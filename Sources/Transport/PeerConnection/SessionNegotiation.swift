import Codec

/// A codec as negotiated in SDP: payload type, clock, parameters, feedback, and RTX.
public struct NegotiatedCodec: Sendable, Hashable {
    /// Opus or VP8.
    public var codec: MediaCodec
    /// The payload type both sides use for it (the offerer's numbering).
    public var payloadType: UInt8
    /// Channels (2 for Opus in SDP, whatever is sent).
    public var channels: Int?
    /// fmtp parameters.
    public var formatParameters: String?
    /// rtcp-fb values ("nack", "nack pli", "ccm fir", "transport-cc", "goog-remb").
    public var feedback: [String]
    /// The RTX payload type associated with it (a=fmtp:<rtx> apt=<pt>), if any.
    public var rtxPayloadType: UInt8?

    /// The RTP clock rate.
    public var clockRate: Int { Int(codec.rtpClockRate) }
}

/// What one local media section sends: its SSRCs and stream identity.
public struct LocalTrackIdentity: Sendable, Hashable {
    /// Media SSRC.
    public var ssrc: UInt32
    /// RTX SSRC (video), paired by a=ssrc-group:FID.
    public var rtxSSRC: UInt32?
    /// RTCP CNAME.
    public var cname: String
    /// msid stream ID.
    public var streamID: String
    /// msid track ID.
    public var trackID: String

    /// An identity with random SSRCs.
    public static func random(kind: MediaKind, cname: String, streamID: String) -> LocalTrackIdentity {
        LocalTrackIdentity(
            ssrc: .random(in: 1...UInt32.max), rtxSSRC: kind == .video ? .random(in: 1...UInt32.max) : nil,
            cname: cname, streamID: streamID, trackID: "\(kind.rawValue)-\(UInt32.random(in: 0...UInt32.max))")
    }
}

/// Audio or video.
public enum MediaKind: String, Sendable, Hashable {
    case audio, video
}

/// One media section this side offers or answers.
public struct LocalMediaSection: Sendable, Hashable {
    /// The mid.
    public var mid: String
    /// Audio or video.
    public var kind: MediaKind
    /// This side's direction.
    public var direction: MediaDirection
    /// What this side sends on it (nil when it only receives).
    public var track: LocalTrackIdentity?

    /// A section from its parts.
    public init(mid: String, kind: MediaKind, direction: MediaDirection, track: LocalTrackIdentity?) {
        self.mid = mid
        self.kind = kind
        self.direction = direction
        self.track = track
    }
}

/// This side's transport parameters for its description.
public struct LocalTransportParameters: Sendable {
    /// ICE credentials.
    public var credentials: ICECredentials
    /// SHA-256 fingerprint of the DTLS certificate.
    public var fingerprint: String
    /// Candidates gathered (all of them: MeetKit does not need the peer to support trickle).
    public var candidates: [ICECandidate]
    /// Whether gathering is complete (a=end-of-candidates).
    public var endOfCandidates: Bool

    /// Parameters from their parts.
    public init(credentials: ICECredentials, fingerprint: String, candidates: [ICECandidate], endOfCandidates: Bool) {
        self.credentials = credentials
        self.fingerprint = fingerprint
        self.candidates = candidates
        self.endOfCandidates = endOfCandidates
    }
}

/// Why a remote description cannot be used. Each case names the media section.
public enum NegotiationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No a=fingerprint at media or session level (RFC 8842 §5).
    case missingFingerprint(mid: String)
    /// Only fingerprints with hash functions MeetKit does not check.
    case unsupportedFingerprint(mid: String, algorithms: [String])
    /// No a=ice-ufrag / a=ice-pwd.
    case missingICECredentials(mid: String)
    /// None of the section's codecs is Opus (audio) or VP8 (video).
    case noCommonCodec(mid: String, offered: [String])
    /// A media section without a=mid (BUNDLE needs them).
    case missingMid(index: Int)
    /// a=setup with a value that does not fit the offer/answer role.
    case invalidSetup(mid: String, value: String)
    /// More media sections than MeetKit accepts in one description.
    case tooManySections(Int)
    /// Nothing usable in the description.
    case noMedia

    public var description: String {
        switch self {
        case .missingFingerprint(let mid): "media section \(mid) has no DTLS fingerprint"
        case .unsupportedFingerprint(let mid, let algs): "media section \(mid) has only \(algs) fingerprints"
        case .missingICECredentials(let mid): "media section \(mid) has no ICE credentials"
        case .noCommonCodec(let mid, let offered): "media section \(mid) offers no supported codec (\(offered))"
        case .missingMid(let index): "media section #\(index) has no mid"
        case .invalidSetup(let mid, let value): "media section \(mid) has a=setup:\(value)"
        case .tooManySections(let n): "\(n) media sections (at most \(SessionNegotiation.maxSections))"
        case .noMedia: "no audio or video section"
        }
    }
}

/// One media section as negotiated.
public struct NegotiatedMedia: Sendable, Hashable {
    /// The mid.
    public var mid: String
    /// Audio or video.
    public var kind: MediaKind
    /// This side's direction after negotiation.
    public var direction: MediaDirection
    /// The codec to send and expect (first common one in the offerer's order).
    public var codec: NegotiatedCodec
    /// Header extension IDs by URI, as the remote description numbers them.
    public var extensions: [String: UInt8]
    /// SSRCs the remote side announced for this section (media first, then RTX).
    public var remoteSSRCs: [UInt32]
    /// RTX SSRC by media SSRC (a=ssrc-group:FID).
    public var remoteRTX: [UInt32: UInt32]
    /// The remote msid (stream, track).
    public var remoteStreamID: String?
    /// The remote msid track.
    public var remoteTrackID: String?
}

/// Everything a remote description says that the transport and media need.
public struct NegotiatedSession: Sendable {
    /// Remote ICE credentials (of the first bundled section).
    public var remoteCredentials: ICECredentials
    /// Whether the remote agent is ICE-lite.
    public var remoteIsLite: Bool
    /// Remote UDP candidates of the bundled sections (component 1, deduplicated, at most
    /// ``SessionNegotiation/maxCandidates``).
    public var remoteCandidates: [ICECandidate]
    /// Whether the remote side signalled end-of-candidates.
    public var remoteEndOfCandidates: Bool
    /// The remote certificate fingerprint (sha-256).
    public var remoteFingerprint: String
    /// This side's DTLS role.
    public var dtlsRole: DTLSConnection.Role
    /// Audio and video sections, in order.
    public var media: [NegotiatedMedia]
    /// Sections that carry nothing in this session, in order, with the reason.
    public var rejected: [RejectedSection] = []
}

/// A media section of a description that carries nothing in this session, and why.
public struct RejectedSection: Sendable, Hashable, CustomStringConvertible {
    /// Why a section carries nothing.
    public enum Reason: Sendable, Hashable {
        /// Its sender set port 0 without `a=bundle-only`: the section is stopped (RFC 8829 §5.2.2, §5.3.1).
        case stopped
        /// Audio or video without Opus (48 kHz) or VP8 (90 kHz); the offered codec names.
        case noCommonCodec(offered: [String])
        /// A kind or protocol MeetKit does not take: data channels (`m=application`) until
        /// SCTP exists, or other media types.
        case unsupported(kind: String, proto: String)
    }

    /// The section's position in the description.
    public var index: Int
    /// Its mid, if it has one.
    public var mid: String?
    /// The m= line's media type ("audio", "video", "application", …).
    public var kind: String
    /// Why.
    public var reason: Reason

    /// A rejected section from its parts.
    public init(index: Int, mid: String?, kind: String, reason: Reason) {
        self.index = index
        self.mid = mid
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        let name = "\(kind) section \(mid ?? "#\(index)")"
        switch reason {
        case .stopped: return "\(name) is stopped by its sender (port 0)"
        case .noCommonCodec(let offered):
            return "\(name) offers no supported codec (\(offered.joined(separator: ", ")))"
        case .unsupported(_, let proto): return "\(name) (\(proto)) is not supported"
        }
    }
}

/// JSEP's SDP rules (RFC 8829) for MeetKit's media: building offers and answers, and
/// reading the peer's description into a ``NegotiatedSession``. Pure functions over
/// ``SessionDescription``: no state, no I/O.
public enum SessionNegotiation {
    /// Most media sections a remote description may have: an SFU's subscriber offer for a
    /// 150-person room carries an audio and a video section per participant, and more for
    /// screens; past this, a description is refused rather than processed.
    public static let maxSections = 1024

    /// Most remote candidates a description contributes: the ICE agent keeps no more
    /// (``ICEAgent/maxRemoteCandidates``), so the rest are not even compared.
    public static let maxCandidates = ICEAgent.maxRemoteCandidates

    /// Header extensions MeetKit offers, with their IDs.
    public static let offeredExtensions: [(id: UInt8, uri: String, kinds: Set<MediaKind>)] = [
        (1, "urn:ietf:params:rtp-hdrext:sdes:mid", [.audio, .video]),
        (2, "urn:ietf:params:rtp-hdrext:ssrc-audio-level", [.audio]),
        (3, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", [.audio, .video]),
        (4, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", [.audio, .video]),
    ]

    /// MeetKit's codecs with their default payload types.
    public static let defaultCodecs: [MediaKind: NegotiatedCodec] = [
        .audio: NegotiatedCodec(
            codec: .opus, payloadType: 111, channels: 2, formatParameters: "minptime=10;useinbandfec=1",
            feedback: ["transport-cc"], rtxPayloadType: nil),
        .video: NegotiatedCodec(
            codec: .vp8, payloadType: 96, channels: nil, formatParameters: nil,
            feedback: ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"], rtxPayloadType: 97),
    ]

    /// An offer: one bundled section per entry of `sections`, setup actpass, every candidate.
    public static func makeOffer(
        sessionID: UInt64, version: UInt64, transport: LocalTransportParameters, sections: [LocalMediaSection]
    ) -> SessionDescription {
        let codecs = sections.map { defaultCodecs[$0.kind]! }
        let extensions = sections.map { s in
            Dictionary(
                uniqueKeysWithValues: offeredExtensions.filter { $0.kinds.contains(s.kind) }.map { ($0.uri, $0.id) })
        }
        return build(
            sessionID: sessionID, version: version, transport: transport, sections: sections, codecs: codecs,
            extensions: extensions, setup: "actpass")
    }

    /// An answer to `offer`: for each audio/video section, MeetKit's codec with the offer's
    /// payload type, the offer's extension IDs it understands, a direction compatible with
    /// the offer's, setup active (MeetKit is the DTLS client). A `bundle-only` section (port 0
    /// in the offer, RFC 8843 §6) is accepted inside the BUNDLE group like any other. The
    /// sections MeetKit does not take are rejected (port 0, left out of the BUNDLE group).
    public static func makeAnswer(
        to offer: SessionDescription, sessionID: UInt64, version: UInt64, transport: LocalTransportParameters,
        tracks: [String: LocalTrackIdentity]
    ) throws(NegotiationError) -> SessionDescription {
        let negotiated = try negotiate(remote: offer, remoteIsOffer: true)
        var accepted: [String: NegotiatedMedia] = [:]
        for m in negotiated.media where accepted[m.mid] == nil { accepted[m.mid] = m }
        var answer = sessionHeader(sessionID: sessionID, version: version, bundle: negotiated.media.map(\.mid))
        for offered in offer.media {
            guard let mid = offered.mid, let m = accepted.removeValue(forKey: mid) else {
                answer.media.append(rejectedSection(offered, transport: transport))
                continue
            }
            let track = tracks[m.mid]
            var direction = m.direction
            if track == nil {
                direction = direction == .sendrecv ? .recvonly : (direction == .sendonly ? .inactive : direction)
            }
            answer.media.append(
                mediaSection(
                    LocalMediaSection(mid: m.mid, kind: m.kind, direction: direction, track: track), codec: m.codec,
                    extensions: m.extensions, transport: transport, setup: "active"))
        }
        return answer
    }

    /// A rejected section of an answer (port 0), in the long form. JSEP (RFC 8829 §5.3.1)
    /// allows a rejected section to carry only its m= line and mid, but stacks in wide use
    /// refuse such an answer: aiortc ("ICE username fragment or password is missing") and
    /// GStreamer's webrtcbin ("No fingerprint lines in sdp for media N"). So it carries a
    /// `c=` line and the BUNDLE transport's ICE credentials, fingerprint and setup, as
    /// browsers write it; it stays out of the BUNDLE group.
    static func rejectedSection(_ offered: MediaDescription, transport: LocalTransportParameters)
        -> MediaDescription
    {
        var m = MediaDescription(kind: offered.kind, port: 0, proto: offered.proto, formats: offered.formats)
        m.connection = SDPConnection(address: "0.0.0.0")
        if let mid = offered.mid { m.attributes.append(SDPAttribute("mid", mid)) }
        m.attributes += [
            SDPAttribute("ice-ufrag", transport.credentials.ufrag), SDPAttribute("ice-pwd", transport.credentials.pwd),
            SDPAttribute("fingerprint", "sha-256 " + transport.fingerprint), SDPAttribute("setup", "active"),
        ]
        if offered.proto.contains("RTP") { m.attributes.append(SDPAttribute("inactive")) }
        return m
    }

    private static func sessionHeader(sessionID: UInt64, version: UInt64, bundle: [String]) -> SessionDescription {
        var sdp = SessionDescription(origin: SDPOrigin(sessionID: String(sessionID), sessionVersion: version))
        if !bundle.isEmpty {
            sdp.attributes.append(SDPAttribute("group", (["BUNDLE"] + bundle).joined(separator: " ")))
        }
        sdp.attributes.append(SDPAttribute("msid-semantic", " WMS *"))
        return sdp
    }

    private static func build(
        sessionID: UInt64, version: UInt64, transport: LocalTransportParameters, sections: [LocalMediaSection],
        codecs: [NegotiatedCodec], extensions: [[String: UInt8]], setup: String
    ) -> SessionDescription {
        var sdp = sessionHeader(sessionID: sessionID, version: version, bundle: sections.map(\.mid))
        for (i, section) in sections.enumerated() {
            sdp.media.append(
                mediaSection(
                    section, codec: codecs[i], extensions: extensions[i], transport: transport, setup: setup))
        }
        return sdp
    }

    /// One bundled audio or video section: transport attributes, codec, extensions, what it sends.
    private static func mediaSection(
        _ section: LocalMediaSection, codec: NegotiatedCodec, extensions: [String: UInt8],
        transport: LocalTransportParameters, setup: String
    ) -> MediaDescription {
        var formats = [String(codec.payloadType)]
        if let rtx = codec.rtxPayloadType { formats.append(String(rtx)) }
        var m = MediaDescription(kind: section.kind.rawValue, port: 9, proto: "UDP/TLS/RTP/SAVPF", formats: formats)
        m.connection = SDPConnection(address: "0.0.0.0")
        var a: [SDPAttribute] = [
            SDPAttribute("mid", section.mid), SDPAttribute("ice-ufrag", transport.credentials.ufrag),
            SDPAttribute("ice-pwd", transport.credentials.pwd), SDPAttribute("ice-options", "trickle"),
            SDPAttribute("fingerprint", "sha-256 " + transport.fingerprint), SDPAttribute("setup", setup),
            SDPAttribute(section.direction.rawValue), SDPAttribute("rtcp-mux"), SDPAttribute("rtcp-rsize"),
        ]
        for (uri, id) in extensions.sorted(by: { $0.value < $1.value }) {
            a.append(SDPAttribute("extmap", "\(id) \(uri)"))
        }
        let name = codec.codec == .opus ? "opus/48000/2" : "VP8/90000"
        a.append(SDPAttribute("rtpmap", "\(codec.payloadType) \(name)"))
        for fb in codec.feedback { a.append(SDPAttribute("rtcp-fb", "\(codec.payloadType) \(fb)")) }
        if let fmtp = codec.formatParameters { a.append(SDPAttribute("fmtp", "\(codec.payloadType) \(fmtp)")) }
        if let rtx = codec.rtxPayloadType {
            a.append(SDPAttribute("rtpmap", "\(rtx) rtx/90000"))
            a.append(SDPAttribute("fmtp", "\(rtx) apt=\(codec.payloadType)"))
        }
        if let track = section.track, section.direction == .sendrecv || section.direction == .sendonly {
            a.append(SDPAttribute("msid", "\(track.streamID) \(track.trackID)"))
            if let rtx = track.rtxSSRC { a.append(SDPAttribute("ssrc-group", "FID \(track.ssrc) \(rtx)")) }
            for ssrc in [track.ssrc] + (track.rtxSSRC.map { [$0] } ?? []) {
                a.append(SDPAttribute("ssrc", "\(ssrc) cname:\(track.cname)"))
                a.append(SDPAttribute("ssrc", "\(ssrc) msid:\(track.streamID) \(track.trackID)"))
            }
        }
        for c in transport.candidates { a.append(SDPAttribute("candidate", c.attributeValue)) }
        if transport.endOfCandidates { a.append(SDPAttribute("end-of-candidates")) }
        m.attributes = a
        return m
    }

    /// Reads the peer's description. `remoteIsOffer` decides the DTLS role: answering an
    /// actpass offer, MeetKit is the client; receiving an answer, the opposite of its setup.
    /// - Throws: ``NegotiationError`` naming the section at fault.
    public static func negotiate(remote: SessionDescription, remoteIsOffer: Bool) throws(NegotiationError)
        -> NegotiatedSession
    {
        guard remote.media.count <= maxSections else { throw .tooManySections(remote.media.count) }
        var media: [NegotiatedMedia] = []
        var credentials: ICECredentials?
        var fingerprint: String?
        var role: DTLSConnection.Role?
        var candidates: [ICECandidate] = []
        var seen = Set<ICECandidate>()  // de-duplication in linear time (a hostile SDP has thousands)
        var ended = false
        var rejected: [RejectedSection] = []
        var firstCodecError: NegotiationError?
        let bundled = Set(remote.bundleGroups.first ?? [])
        for (index, m) in remote.media.enumerated() {
            // A bundle-only section has port 0 but is in use, inside the BUNDLE (RFC 8843 §6).
            let bundleOnly = m.has("bundle-only") && m.mid.map(bundled.contains) == true
            guard m.port != 0 || bundleOnly else {
                rejected.append(RejectedSection(index: index, mid: m.mid, kind: m.kind, reason: .stopped))
                continue
            }
            guard let kind = MediaKind(rawValue: m.kind), m.proto.uppercased().contains("RTP") else {
                rejected.append(
                    RejectedSection(
                        index: index, mid: m.mid, kind: m.kind, reason: .unsupported(kind: m.kind, proto: m.proto)))
                continue
            }
            guard let mid = m.mid else { throw .missingMid(index: index) }
            let codec: NegotiatedCodec
            do {
                codec = try pickCodec(m, kind: kind, mid: mid)
            } catch {
                // An offer's section without a common codec is rejected in the answer; an
                // answer cannot choose a codec that was not offered.
                guard remoteIsOffer, case .noCommonCodec(_, let offered) = error else { throw error }
                rejected.append(
                    RejectedSection(index: index, mid: mid, kind: m.kind, reason: .noCommonCodec(offered: offered)))
                firstCodecError = firstCodecError ?? error
                continue
            }
            // A section bundled with an earlier one shares that one's transport (RFC 8843
            // §7): its own transport attributes, if any, are not needed.
            if credentials == nil || !bundled.contains(mid) {
                let fingerprints = remote.fingerprints(of: m)
                guard !fingerprints.isEmpty else { throw .missingFingerprint(mid: mid) }
                guard let sha256 = fingerprints.first(where: { $0.algorithm == "sha-256" }) else {
                    throw .unsupportedFingerprint(mid: mid, algorithms: fingerprints.map(\.algorithm))
                }
                guard let ice = remote.iceCredentials(of: m) else { throw .missingICECredentials(mid: mid) }
                let setup = m.setup ?? remote.setup ?? "actpass"
                let sectionRole: DTLSConnection.Role
                switch (remoteIsOffer, setup) {
                case (true, "actpass"), (true, "passive"): sectionRole = .client
                case (true, "active"): sectionRole = .server
                case (false, "active"): sectionRole = .server
                case (false, "passive"): sectionRole = .client
                default: throw .invalidSetup(mid: mid, value: setup)
                }
                // BUNDLE: the first section's transport parameters carry the whole session.
                if credentials == nil {
                    credentials = ICECredentials(ufrag: ice.ufrag, pwd: ice.pwd)
                    fingerprint = sha256.value
                    role = sectionRole
                }
            }
            let wanted = Set(offeredExtensions.filter { $0.kinds.contains(kind) }.map(\.uri))
            var extensions: [String: UInt8] = [:]
            for e in m.extMaps where wanted.contains(e.uri) && e.id <= 255 { extensions[e.uri] = UInt8(e.id) }
            var seenSSRCs = Set<UInt32>()
            let ssrcs = m.ssrcs.map(\.ssrc).filter { seenSSRCs.insert($0).inserted }
            var rtx: [UInt32: UInt32] = [:]
            for g in m.ssrcGroups where g.semantics == "FID" && g.ssrcs.count == 2 { rtx[g.ssrcs[0]] = g.ssrcs[1] }
            let msid = m.msid
            let theirs = m.direction ?? .sendrecv
            let ours: MediaDirection =
                switch theirs {
                case .sendrecv: .sendrecv
                case .sendonly: .recvonly
                case .recvonly: .sendonly
                case .inactive: .inactive
                }
            media.append(
                NegotiatedMedia(
                    mid: mid, kind: kind, direction: ours, codec: codec, extensions: extensions, remoteSSRCs: ssrcs,
                    remoteRTX: rtx, remoteStreamID: msid?.stream, remoteTrackID: msid?.track))
            for line in m.values("candidate") where candidates.count < maxCandidates {
                // Only what the agent can use (UDP, component 1; rtcp-mux is required).
                guard let c = try? ICECandidate(parsing: line), c.transport == "udp", c.component == 1,
                    seen.insert(c).inserted
                else { continue }
                candidates.append(c)
            }
            ended = ended || m.endOfCandidates
        }
        guard let credentials, let fingerprint, let role, !media.isEmpty else { throw firstCodecError ?? .noMedia }
        return NegotiatedSession(
            remoteCredentials: credentials, remoteIsLite: remote.isICELite, remoteCandidates: candidates,
            remoteEndOfCandidates: ended, remoteFingerprint: fingerprint, dtlsRole: role, media: media,
            rejected: rejected)
    }

    /// The first codec of the section (in the sender's preference order) that MeetKit has,
    /// with its RTX payload type if the section pairs one.
    private static func pickCodec(_ m: MediaDescription, kind: MediaKind, mid: String) throws(NegotiationError)
        -> NegotiatedCodec
    {
        let codecs = m.codecs
        let wanted = kind == .audio ? "opus" : "vp8"
        guard let found = codecs.first(where: { $0.rtpMap.name.lowercased() == wanted }),
            found.rtpMap.clockRate == (kind == .audio ? 48_000 : 90_000), (0...127).contains(found.rtpMap.payloadType)
        else {
            throw .noCommonCodec(mid: mid, offered: codecs.map(\.rtpMap.name))
        }
        let rtx = codecs.first {
            $0.rtpMap.name.lowercased() == "rtx" && $0.parameters["apt"] == String(found.rtpMap.payloadType)
        }
        let supported: Set<String> = ["nack", "nack pli", "ccm fir", "transport-cc", "goog-remb"]
        return NegotiatedCodec(
            codec: kind == .audio ? .opus : .vp8, payloadType: UInt8(found.rtpMap.payloadType),
            channels: found.rtpMap.channels, formatParameters: found.formatParameters,
            feedback: found.feedback.filter { supported.contains($0) },
            rtxPayloadType: rtx.map { UInt8($0.rtpMap.payloadType) })
    }
}
