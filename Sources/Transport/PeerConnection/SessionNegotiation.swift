import Codec

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

    /// Header extensions MeetKit reads but does not offer: the RTP stream ids that tell a
    /// simulcast sender's layers apart (RFC 8852).
    public static let ridExtensions = [
        "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    ]

    /// This side's SCTP port for data channels (RFC 8841 §5).
    public static let sctpPort: UInt16 = 5000
    /// The largest data channel message this side takes by default (`a=max-message-size`,
    /// as ``SCTPConfiguration/maxReceivedMessageSize``).
    public static let maxMessageSize = 262_144

    /// MeetKit's codecs with their default payload types.
    public static let defaultCodecs: [MediaKind: NegotiatedCodec] = [
        .audio: NegotiatedCodec(
            codec: .opus, payloadType: 111, channels: 2, formatParameters: "minptime=10;useinbandfec=1",
            feedback: ["transport-cc"], rtxPayloadType: nil),
        .video: NegotiatedCodec(
            codec: .vp8, payloadType: 96, channels: nil, formatParameters: nil,
            feedback: ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"], rtxPayloadType: 97),
    ]

    /// An offer: one bundled section per entry of `sections` (and the data channel section
    /// at its place), setup actpass, every candidate.
    public static func makeOffer(
        sessionID: UInt64, version: UInt64, transport: LocalTransportParameters, sections: [LocalMediaSection],
        application: LocalApplicationSection? = nil
    ) -> SessionDescription {
        var mids = sections.map(\.mid)
        if let application { mids.insert(application.mid, at: min(application.index, mids.count)) }
        var sdp = sessionHeader(sessionID: sessionID, version: version, bundle: mids)
        for section in sections {
            let extensions = Dictionary(
                uniqueKeysWithValues: offeredExtensions.filter { $0.kinds.contains(section.kind) }.map {
                    ($0.uri, $0.id)
                })
            sdp.media.append(
                mediaSection(
                    section, codec: defaultCodecs[section.kind]!, extensions: extensions, transport: transport,
                    setup: "actpass"))
        }
        if let application {
            sdp.media.insert(
                applicationSection(
                    mid: application.mid, transport: transport, setup: "actpass",
                    maxMessageSize: application.maxMessageSize),
                at: min(application.index, sdp.media.count))
        }
        return sdp
    }

    /// An answer to `offer`: for each audio/video section, MeetKit's codec with the offer's
    /// payload type, the offer's extension IDs it understands, a direction compatible with
    /// the offer's, setup active (MeetKit is the DTLS client). A `bundle-only` section (port 0
    /// in the offer, RFC 8843 §6) is accepted inside the BUNDLE group like any other. The
    /// sections MeetKit does not take are rejected (port 0, left out of the BUNDLE group).
    public static func makeAnswer(
        to offer: SessionDescription, sessionID: UInt64, version: UInt64, transport: LocalTransportParameters,
        tracks: [String: LocalTrackIdentity], maxMessageSize: Int = maxMessageSize, transportCC: Bool = true
    ) throws(NegotiationError) -> SessionDescription {
        let negotiated = try negotiate(remote: offer, remoteIsOffer: true, transportCC: transportCC)
        var accepted: [String: NegotiatedMedia] = [:]
        for m in negotiated.media where accepted[m.mid] == nil { accepted[m.mid] = m }
        var bundle = negotiated.media.map(\.mid)
        if let app = negotiated.application { bundle.append(app.mid) }
        let inOrder = offer.media.compactMap(\.mid).filter(Set(bundle).contains)
        var answer = sessionHeader(sessionID: sessionID, version: version, bundle: inOrder)
        for offered in offer.media {
            if let app = negotiated.application, offered.mid == app.mid, offered.kind == "application" {
                answer.media.append(
                    applicationSection(
                        mid: app.mid, transport: transport, setup: "active", maxMessageSize: maxMessageSize))
                continue
            }
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
                    extensions: m.extensions, transport: transport, setup: "active",
                    receiveRIDs: direction == .recvonly || direction == .sendrecv ? m.remoteRIDs : []))
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

    /// The data channel section (RFC 8841): SCTP over DTLS, this side's port and largest
    /// message, the shared transport's attributes.
    private static func applicationSection(
        mid: String, transport: LocalTransportParameters, setup: String, maxMessageSize: Int
    ) -> MediaDescription {
        var m = MediaDescription(kind: "application", port: 9, proto: "UDP/DTLS/SCTP", formats: ["webrtc-datachannel"])
        m.connection = SDPConnection(address: "0.0.0.0")
        m.attributes = [
            SDPAttribute("mid", mid), SDPAttribute("ice-ufrag", transport.credentials.ufrag),
            SDPAttribute("ice-pwd", transport.credentials.pwd), SDPAttribute("ice-options", "trickle"),
            SDPAttribute("fingerprint", "sha-256 " + transport.fingerprint), SDPAttribute("setup", setup),
            SDPAttribute("sctp-port", String(sctpPort)), SDPAttribute("max-message-size", String(maxMessageSize)),
        ]
        for c in transport.candidates { m.attributes.append(SDPAttribute("candidate", c.attributeValue)) }
        if transport.endOfCandidates { m.attributes.append(SDPAttribute("end-of-candidates")) }
        return m
    }

    /// One bundled audio or video section: transport attributes, codec, extensions, what it sends.
    private static func mediaSection(
        _ section: LocalMediaSection, codec: NegotiatedCodec, extensions: [String: UInt8],
        transport: LocalTransportParameters, setup: String, receiveRIDs: [String] = []
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
        if let track = section.track, section.direction.sends {
            a.append(SDPAttribute("msid", "\(track.streamID) \(track.trackID)"))
            if let rtx = track.rtxSSRC { a.append(SDPAttribute("ssrc-group", "FID \(track.ssrc) \(rtx)")) }
            for ssrc in [track.ssrc] + (track.rtxSSRC.map { [$0] } ?? []) {
                a.append(SDPAttribute("ssrc", "\(ssrc) cname:\(track.cname)"))
                a.append(SDPAttribute("ssrc", "\(ssrc) msid:\(track.streamID) \(track.trackID)"))
            }
        }
        if !receiveRIDs.isEmpty {
            // Every layer the peer offered is taken (RFC 8853 §5.3).
            for rid in receiveRIDs { a.append(SDPAttribute("rid", "\(rid) recv")) }
            a.append(SDPAttribute("simulcast", "recv " + receiveRIDs.joined(separator: ";")))
        }
        for c in transport.candidates { a.append(SDPAttribute("candidate", c.attributeValue)) }
        if transport.endOfCandidates { a.append(SDPAttribute("end-of-candidates")) }
        m.attributes = a
        return m
    }

    /// Reads the peer's description. `remoteIsOffer` decides the DTLS role: answering an
    /// actpass offer, MeetKit is the client; receiving an answer, the opposite of its setup.
    /// - Throws: ``NegotiationError`` naming the section at fault.
    /// - Parameter transportCC: whether transport-wide congestion control (its sequence
    ///   number extension and `transport-cc` feedback) is taken; a peer that will not send
    ///   that feedback declines it, so the sender estimates from receiver reports instead.
    public static func negotiate(
        remote: SessionDescription, remoteIsOffer: Bool, transportCC: Bool = true
    ) throws(NegotiationError)
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
        var application: NegotiatedApplication?
        let bundled = Set(remote.bundleGroups.first ?? [])
        /// The transport parameters of the first section, and of any section outside the
        /// BUNDLE (one bundled with an earlier one shares that one's transport, RFC 8843 §7).
        func takeTransport(of m: MediaDescription, mid: String) throws(NegotiationError) {
            guard credentials == nil || !bundled.contains(mid) else { return }
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
        func takeCandidates(of m: MediaDescription) {
            for line in m.values("candidate") where candidates.count < maxCandidates {
                // Only what the agent can use (UDP, component 1; rtcp-mux is required).
                guard let c = try? ICECandidate(parsing: line), c.transport == "udp", c.component == 1,
                    seen.insert(c).inserted
                else { continue }
                candidates.append(c)
            }
            ended = ended || m.endOfCandidates
        }
        for (index, m) in remote.media.enumerated() {
            // A bundle-only section has port 0 but is in use, inside the BUNDLE (RFC 8843 §6).
            let bundleOnly = m.has("bundle-only") && m.mid.map(bundled.contains) == true
            guard m.port != 0 || bundleOnly else {
                rejected.append(RejectedSection(index: index, mid: m.mid, kind: m.kind, reason: .stopped))
                continue
            }
            // The first data channel section (RFC 8841): SCTP over DTLS.
            if m.kind == "application", m.proto.uppercased().hasSuffix("DTLS/SCTP"),
                m.formats.contains("webrtc-datachannel"), application == nil, let mid = m.mid
            {
                try takeTransport(of: m, mid: mid)
                let port = m.values("sctp-port").first.flatMap { UInt16($0) } ?? 5000
                let maxMessage = m.values("max-message-size").first.flatMap { Int($0) }.map { max(0, $0) } ?? 65_536
                application = NegotiatedApplication(mid: mid, remotePort: port, remoteMaxMessageSize: maxMessage)
                takeCandidates(of: m)
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
                codec = try pickCodec(m, kind: kind, mid: mid, transportCC: transportCC)
            } catch {
                // An offer's section without a common codec is rejected in the answer; an
                // answer cannot choose a codec that was not offered.
                guard remoteIsOffer, case .noCommonCodec(_, let offered) = error else { throw error }
                rejected.append(
                    RejectedSection(index: index, mid: mid, kind: m.kind, reason: .noCommonCodec(offered: offered)))
                firstCodecError = firstCodecError ?? error
                continue
            }
            try takeTransport(of: m, mid: mid)
            var wanted = Set(offeredExtensions.filter { $0.kinds.contains(kind) }.map(\.uri))
            // Simulcast (RFC 8853): the layers a sending peer offers, told apart by RID. The
            // RID extensions are accepted on every video section of an offer: a peer adds a
            // simulcast section later only if the BUNDLE already negotiated them.
            if remoteIsOffer, kind == .video { wanted.formUnion(ridExtensions) }
            if !transportCC {
                wanted.remove("http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01")
            }
            var rids: [String] = []
            if remoteIsOffer, kind == .video, let simulcast = m.simulcast, simulcast.hasPrefix("send ") {
                let offered = Set(m.rids.filter { $0.direction == "send" }.map(\.id))
                rids = simulcast.dropFirst(5).split(whereSeparator: { $0 == ";" || $0 == "," || $0 == " " })
                    .map { String($0.hasPrefix("~") ? $0.dropFirst() : $0) }.filter(offered.contains)
                if rids.count < 2 { rids = [] }
            }
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
                    remoteRTX: rtx, remoteStreamID: msid?.stream, remoteTrackID: msid?.track, remoteRIDs: rids))
            takeCandidates(of: m)
        }
        guard let credentials, let fingerprint, let role, !media.isEmpty || application != nil else {
            throw firstCodecError ?? .noMedia
        }
        return NegotiatedSession(
            remoteCredentials: credentials, remoteIsLite: remote.isICELite, remoteCandidates: candidates,
            remoteEndOfCandidates: ended, remoteFingerprint: fingerprint, dtlsRole: role, media: media,
            rejected: rejected, application: application)
    }

    /// The first codec of the section (in the sender's preference order) that MeetKit has,
    /// with its RTX payload type if the section pairs one.
    private static func pickCodec(_ m: MediaDescription, kind: MediaKind, mid: String, transportCC: Bool = true)
        throws(NegotiationError)
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
        var supported: Set<String> = ["nack", "nack pli", "ccm fir", "transport-cc", "goog-remb"]
        if !transportCC { supported.remove("transport-cc") }
        return NegotiatedCodec(
            codec: kind == .audio ? .opus : .vp8, payloadType: UInt8(found.rtpMap.payloadType),
            channels: found.rtpMap.channels, formatParameters: found.formatParameters,
            feedback: found.feedback.filter { supported.contains($0) },
            rtxPayloadType: rtx.map { UInt8($0.rtpMap.payloadType) })
    }
}
