import Testing

@testable import Transport

@Suite("JSEP offer/answer negotiation")
struct NegotiationTests {
    static let transport = LocalTransportParameters(
        credentials: ICECredentials(ufrag: "mkUfrag1", pwd: "meetkitPasswordOf24chr"),
        fingerprint: "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        candidates: [
            ICECandidate(foundation: "1", priority: 2_130_706_431, address: "127.0.0.1", port: 50_000, kind: .host)
        ],
        endOfCandidates: true)

    static func sections() -> [LocalMediaSection] {
        [
            LocalMediaSection(
                mid: "0", kind: .audio, direction: .sendrecv, track: .random(kind: .audio, cname: "c", streamID: "s")),
            LocalMediaSection(
                mid: "1", kind: .video, direction: .sendrecv, track: .random(kind: .video, cname: "c", streamID: "s")),
        ]
    }

    @Test func ourOfferNegotiatesAgainstItself() throws {
        let sections = Self.sections()
        let offer = SessionNegotiation.makeOffer(
            sessionID: 1, version: 1, transport: Self.transport, sections: sections)
        let text = offer.serialized()
        let parsed = try SessionDescription(parsing: text)
        #expect(parsed.bundleGroups == [["0", "1"]])
        let n = try SessionNegotiation.negotiate(remote: parsed, remoteIsOffer: true)
        #expect(n.dtlsRole == .client, "answering actpass, MeetKit takes the client role")
        #expect(n.remoteCredentials == Self.transport.credentials && n.remoteFingerprint == Self.transport.fingerprint)
        #expect(n.remoteCandidates.count == 1 && n.remoteEndOfCandidates)
        #expect(n.media.map(\.codec.codec) == [.opus, .vp8])
        #expect(n.media[1].codec.rtxPayloadType == 97 && n.media[1].codec.feedback.contains("nack pli"))
        #expect(n.media[0].remoteSSRCs == [sections[0].track!.ssrc])
        #expect(n.media[1].remoteRTX[sections[1].track!.ssrc] == sections[1].track!.rtxSSRC)
        #expect(n.media[0].extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"] == 2)
        #expect(n.media[1].extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"] == nil)
        #expect(n.media[0].remoteTrackID == sections[0].track!.trackID)
    }

    /// aiortc numbers Opus 96 and VP8 97 (RTX 98): the answer takes its numbers.
    @Test func answerToAiortcOfferUsesItsPayloadTypes() throws {
        let offer = try SessionDescription(parsing: try fixture("aiortc-offer.sdp"))
        let tracks = ["0": LocalTrackIdentity.random(kind: .audio, cname: "c", streamID: "s")]
        let answer = try SessionNegotiation.makeAnswer(
            to: offer, sessionID: 2, version: 1, transport: Self.transport, tracks: tracks)
        let reparsed = try SessionDescription(parsing: answer.serialized())
        #expect(reparsed.media.map(\.mid) == ["0", "1"])
        #expect(reparsed.media[0].codecs.first?.rtpMap.payloadType == 96)
        #expect(reparsed.media[1].codecs.first?.rtpMap.payloadType == 97)
        #expect(reparsed.media[1].codecs.dropFirst().first?.parameters["apt"] == "97")
        #expect(reparsed.media[0].direction == .sendrecv && reparsed.media[1].direction == .recvonly)
        #expect(reparsed.media.allSatisfy { $0.setup == "active" })
        #expect(reparsed.media[1].ssrcs.isEmpty, "nothing sent on video")
        // The offerer reading our answer: it is the DTLS server, we the client.
        let back = try SessionNegotiation.negotiate(remote: reparsed, remoteIsOffer: false)
        #expect(back.dtlsRole == .server)
    }

    @Test func browserAndLiveKitOffersNegotiate() throws {
        let browser = try SessionNegotiation.negotiate(
            remote: SessionDescription(parsing: try fixture("browser-offer.sdp")), remoteIsOffer: true)
        #expect(browser.media.count == 2, "the data channel section is not media")
        #expect(browser.media[0].codec.payloadType == 111 && browser.media[1].codec.payloadType == 96)
        #expect(browser.media[1].codec.rtxPayloadType == 97)
        #expect(browser.remoteCandidates.count == 3)
        #expect(browser.remoteCandidates.filter { $0.transportAddress != nil }.count == 2, "the mDNS one is a name")
        let livekit = try SessionNegotiation.negotiate(
            remote: SessionDescription(parsing: try fixture("livekit-subscriber-offer.sdp")), remoteIsOffer: true)
        #expect(livekit.remoteIsLite && livekit.media.map(\.direction) == [.recvonly, .recvonly])
        #expect(livekit.media[1].remoteRTX == [2_791_370_437: 3_145_620_211])
        let janus = try SessionNegotiation.negotiate(
            remote: SessionDescription(parsing: try fixture("janus-answer.sdp")), remoteIsOffer: false)
        #expect(janus.dtlsRole == .server, "Janus answers setup:active")
        #expect(janus.remoteFingerprint.hasPrefix("D2:FA"), "session-level fingerprint")
    }

    /// Hostile descriptions: typed errors naming the section.
    @Test func hostileDescriptionsAreTypedErrors() throws {
        let good = try fixture("aiortc-offer.sdp")
        func without(_ prefix: String) throws -> SessionDescription {
            try SessionDescription(
                parsing: good.split(separator: "\r\n", omittingEmptySubsequences: false)
                    .filter { !$0.hasPrefix(prefix) }.joined(separator: "\r\n"))
        }
        #expect(throws: NegotiationError.missingFingerprint(mid: "0")) {
            try SessionNegotiation.negotiate(remote: try without("a=fingerprint"), remoteIsOffer: true)
        }
        #expect(throws: NegotiationError.missingICECredentials(mid: "0")) {
            try SessionNegotiation.negotiate(remote: try without("a=ice-pwd"), remoteIsOffer: true)
        }
        #expect(throws: NegotiationError.missingMid(index: 0)) {
            try SessionNegotiation.negotiate(remote: try without("a=mid"), remoteIsOffer: true)
        }
        let onlyH264 = try SessionDescription(
            parsing: good.replacingOccurrences(of: "VP8/90000", with: "H265/90000").replacingOccurrences(
                of: "opus/48000/2", with: "G729/8000"))
        #expect(throws: NegotiationError.noCommonCodec(mid: "0", offered: ["G729", "PCMU", "PCMA"])) {
            try SessionNegotiation.negotiate(remote: onlyH264, remoteIsOffer: true)
        }
        let badSetup = try SessionDescription(
            parsing: good.replacingOccurrences(of: "a=setup:actpass", with: "a=setup:holdconn"))
        #expect(throws: NegotiationError.invalidSetup(mid: "0", value: "holdconn")) {
            try SessionNegotiation.negotiate(remote: badSetup, remoteIsOffer: true)
        }
        let sha1 = try SessionDescription(
            parsing: good.replacingOccurrences(of: "a=fingerprint:sha-256", with: "a=fingerprint:sha-1")
                .replacingOccurrences(of: "a=fingerprint:sha-384", with: "a=fingerprint:sha-1"))
        #expect(throws: NegotiationError.unsupportedFingerprint(mid: "0", algorithms: ["sha-1", "sha-1"])) {
            try SessionNegotiation.negotiate(remote: sha1, remoteIsOffer: true)
        }
        // Absurd ports: on the m-line the description does not parse; on a candidate the
        // candidate is left out.
        let absurdPort = good.replacingOccurrences(of: "m=audio 51234 ", with: "m=audio 70000 ")
        #expect(absurdPort != good)
        #expect(throws: SDPError.self) { try SessionDescription(parsing: absurdPort) }
        let goodCandidates = try SessionNegotiation.negotiate(
            remote: try SessionDescription(parsing: good), remoteIsOffer: true
        ).remoteCandidates
        let firstPort = try #require(goodCandidates.first?.port)
        let absurdCandidate = try SessionDescription(
            parsing: good.replacingOccurrences(of: " \(firstPort) typ ", with: " 99999 typ "))
        let kept = try SessionNegotiation.negotiate(remote: absurdCandidate, remoteIsOffer: true).remoteCandidates
        #expect(kept.count == goodCandidates.count - 1 && !kept.contains { $0.port == firstPort })
        // Through the PeerConnection, a hostile description is the same typed error.
        let pc = try PeerConnectionCore()
        #expect(throws: PeerConnectionError.negotiation(.missingFingerprint(mid: "0"))) {
            try pc.setRemoteDescription(try without("a=fingerprint"), now: .zero)
        }
        #expect(pc.signalingState == .stable, "a refused description changes nothing")
        let empty = try SessionDescription(parsing: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
        #expect(throws: NegotiationError.noMedia) {
            try SessionNegotiation.negotiate(remote: empty, remoteIsOffer: true)
        }
    }
}

extension NegotiationTests {
    /// An SFU's offer for a 150-person room (300 sections) is accepted; past the limit a
    /// description is refused with a typed error instead of being processed.
    @Test func largeRoomsAcceptedAbsurdOnesRefused() throws {
        func offer(sections: Int) -> SessionDescription {
            let transport = Self.transport
            let list = (0..<sections).map {
                LocalMediaSection(
                    mid: String($0), kind: $0 % 2 == 0 ? .audio : .video, direction: .sendonly, track: nil)
            }
            return SessionNegotiation.makeOffer(sessionID: 1, version: 1, transport: transport, sections: list)
        }
        let room = try SessionNegotiation.negotiate(remote: offer(sections: 300), remoteIsOffer: true)
        #expect(room.media.count == 300)
        let limit = SessionNegotiation.maxSections
        #expect(throws: NegotiationError.tooManySections(limit + 1)) {
            try SessionNegotiation.negotiate(remote: offer(sections: limit + 1), remoteIsOffer: true)
        }
    }
}

/// Answers that the stacks in use accept: bundle-only sections taken inside the BUNDLE
/// (RFC 8843 §6), sections MeetKit does not take rejected in the long form (issue 11).
extension NegotiationTests {
    static func answer(to name: String) throws -> (offer: SessionDescription, answer: SessionDescription) {
        let offer = try SessionDescription(parsing: try fixture(name))
        let answer = try SessionNegotiation.makeAnswer(
            to: offer, sessionID: 7, version: 1, transport: Self.transport, tracks: [:])
        let text = answer.serialized()
        let reparsed = try SessionDescription(parsing: text)
        #expect(reparsed.serialized() == text, "the answer survives a round trip through the parser")
        #expect(reparsed.media.count == offer.media.count, "one answer section per offered section")
        #expect(zip(reparsed.media, offer.media).allSatisfy { $0.mid == $1.mid && $0.kind == $1.kind })
        return (offer, reparsed)
    }

    /// What aiortc and webrtcbin check in every section of an answer, rejected or not.
    static func expectLongForm(_ m: MediaDescription, in answer: SessionDescription) {
        #expect(m.connection != nil, "\(m.kind) section has a c= line")
        #expect(answer.iceCredentials(of: m)?.ufrag == transport.credentials.ufrag, "\(m.kind) has ICE credentials")
        #expect(answer.fingerprints(of: m).first?.value == transport.fingerprint, "\(m.kind) has a fingerprint")
        #expect(m.setup == "active")
    }

    /// GStreamer webrtcbin 1.22 (captured from Debian's, max-bundle): video and data channel
    /// are `m=… 0` with `a=bundle-only` and no candidates of their own; both are accepted.
    @Test func webrtcbinBundleOnlySectionsAreAccepted() throws {
        let (offer, answer) = try Self.answer(to: "webrtcbin-offer.sdp")
        #expect(offer.media[1].port == 0 && offer.media[1].has("bundle-only"))
        let n = try SessionNegotiation.negotiate(remote: offer, remoteIsOffer: true)
        #expect(n.media.map(\.mid) == ["audio0", "video1"])
        #expect(n.media.map(\.codec.codec) == [.opus, .vp8])
        #expect(n.rejected.isEmpty)
        #expect(n.application?.mid == "application2")
        #expect(n.remoteCandidates.map(\.transport) == ["udp"], "the BUNDLE tag's UDP one (the agent uses no TCP)")
        #expect(answer.bundleGroups == [["audio0", "video1", "application2"]])
        #expect(answer.media[1].port == 9 && !answer.media[1].has("bundle-only"))
        #expect(answer.media[1].direction == .recvonly)
        #expect(answer.media[2].port == 9 && answer.media[2].values("sctp-port") == ["5000"])
        for m in answer.media { Self.expectLongForm(m, in: answer) }
    }

    /// Chrome and Firefox offer audio, video and a data channel (all accepted, RFC 8841);
    /// Firefox keeps its fingerprint at session level and numbers Opus 109, VP8 120 (RTX 124).
    @Test(arguments: ["browser-offer.sdp", "firefox-offer.sdp"])
    func browserOffersGetAnswersTheyAccept(fixtureName: String) throws {
        let (offer, answer) = try Self.answer(to: fixtureName)
        let n = try SessionNegotiation.negotiate(remote: offer, remoteIsOffer: true)
        #expect(n.media.map(\.kind) == [.audio, .video])
        #expect(n.rejected.isEmpty)
        let maxMessage = fixtureName == "firefox-offer.sdp" ? 1_073_741_823 : 262_144
        #expect(n.application == NegotiatedApplication(mid: "2", remotePort: 5000, remoteMaxMessageSize: maxMessage))
        #expect(answer.bundleGroups == [["0", "1", "2"]])
        #expect(answer.media.map(\.port) == [9, 9, 9])
        #expect(answer.media[2].proto == "UDP/DTLS/SCTP" && answer.media[2].formats == ["webrtc-datachannel"])
        #expect(
            answer.media[2].values("sctp-port") == ["5000"] && answer.media[2].values("max-message-size") == ["262144"])
        for m in answer.media { Self.expectLongForm(m, in: answer) }
        if fixtureName == "firefox-offer.sdp" {
            #expect(n.media[0].codec.payloadType == 109)
            #expect(n.media[1].codec.payloadType == 120 && n.media[1].codec.rtxPayloadType == 124)
            #expect(n.remoteFingerprint.hasPrefix("4C:59"), "session-level fingerprint")
        }
    }

    /// A video section without VP8 and a section the offerer stopped are rejected; the
    /// call goes on with the audio.
    @Test func sectionsWithoutACommonCodecAreRejectedNotFatal() throws {
        var text = try fixture("browser-offer.sdp")
            .replacingOccurrences(of: "VP8/90000", with: "H264/90000")
            .replacingOccurrences(of: "VP9/90000", with: "AV1/90000")
        text += "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:3\r\na=rtpmap:0 PCMU/8000\r\n"
        let offer = try SessionDescription(parsing: text)
        let n = try SessionNegotiation.negotiate(remote: offer, remoteIsOffer: true)
        #expect(n.media.map(\.mid) == ["0"])
        #expect(
            n.rejected.map(\.reason) == [
                .noCommonCodec(offered: ["H264", "rtx", "AV1", "rtx"]), .stopped,
            ])
        let answer = try SessionDescription(
            parsing: SessionNegotiation.makeAnswer(
                to: offer, sessionID: 1, version: 1, transport: Self.transport, tracks: [:]
            ).serialized())
        #expect(answer.bundleGroups == [["0", "2"]])
        #expect(answer.media.map(\.port) == [9, 0, 9, 0])
        #expect(answer.media[1].direction == .inactive && answer.media[1].formats == offer.media[1].formats)
        for m in answer.media { Self.expectLongForm(m, in: answer) }
        // An answer, unlike an offer, cannot pick a codec that was not offered.
        let asAnswer = try SessionDescription(parsing: text.replacingOccurrences(of: "actpass", with: "active"))
        #expect(throws: NegotiationError.noCommonCodec(mid: "1", offered: ["H264", "rtx", "AV1", "rtx"])) {
            try SessionNegotiation.negotiate(remote: asAnswer, remoteIsOffer: false)
        }
    }

    /// The peer's answer rejects our video: that transceiver becomes inactive and the
    /// connection says so, so that a caller can tell a call lost its video.
    @Test func aRejectedSectionInTheAnswerIsReported() throws {
        let offerer = try PeerConnectionCore()
        offerer.start(localAddresses: [TransportAddress(ip: IPAddress("127.0.0.1")!, port: 40_000)], now: .zero)
        offerer.addTransceiver(.audio)
        let video = offerer.addTransceiver(.video)
        let offer = offerer.createOffer()
        try offerer.setLocalDescription(offer)
        let audioOnly = LocalMediaSection(mid: "0", kind: .audio, direction: .sendrecv, track: nil)
        var answer = try SessionNegotiation.makeAnswer(
            to: offer, sessionID: 3, version: 1, transport: Self.transport,
            tracks: ["0": .random(kind: .audio, cname: "c", streamID: "s")])
        answer.media[1] = SessionNegotiation.rejectedSection(offer.media[1], transport: Self.transport)
        answer.set("group", "BUNDLE \(audioOnly.mid)")
        try offerer.setRemoteDescription(answer, now: .zero)
        #expect(offerer.rejectedSections == [RejectedSection(index: 1, mid: video, kind: "video", reason: .stopped)])
        #expect(offerer.transceiverList.map(\.direction) == [.sendrecv, .inactive])
    }
}

/// Descriptions built to stall a negotiation (issue 13): thousands of candidates. The
/// candidate list is de-duplicated in linear time and capped at what the ICE agent keeps.
extension NegotiationTests {
    static func offer(sections: Int, candidatesPerSection: Int) -> String {
        var text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        text +=
            "a=fingerprint:sha-256 \(transport.fingerprint)\r\na=ice-ufrag:hostile\r\na=ice-pwd:hostilepassword0123456789\r\n"
        text += "a=group:BUNDLE " + (0..<sections).map(String.init).joined(separator: " ") + "\r\n"
        var n = 0
        for s in 0..<sections {
            text += "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:\(s)\r\na=rtpmap:111 opus/48000/2\r\n"
            for _ in 0..<candidatesPerSection {
                text +=
                    "a=candidate:\(n) 1 udp \(2_000_000_000 - n) 10.\(n / 65536 % 256).\(n / 256 % 256).\(n % 256) \(10_000 + n % 50_000) typ host\r\n"
                n += 1
            }
        }
        return text
    }

    @Test(arguments: [(1, 9_000), (1_024, 5)])
    func thousandsOfCandidatesAreCapped(shape: (sections: Int, candidates: Int)) throws {
        let text = Self.offer(sections: shape.sections, candidatesPerSection: shape.candidates)
        let sdp = try SessionDescription(parsing: text)
        #expect(sdp.media.reduce(0) { $0 + $1.values("candidate").count } == shape.sections * shape.candidates)
        let clock = ContinuousClock()
        let started = clock.now
        let n = try SessionNegotiation.negotiate(remote: sdp, remoteIsOffer: true)
        let elapsed = clock.now - started
        #expect(n.media.count == shape.sections)
        #expect(n.remoteCandidates.count == SessionNegotiation.maxCandidates)
        #expect(Set(n.remoteCandidates).count == n.remoteCandidates.count)
        print("negotiating \(shape.sections) section(s) × \(shape.candidates) candidates took \(elapsed)")
        // The same through a PeerConnection, which negotiates twice (offer, then answer).
        let pc = try PeerConnectionCore()
        try pc.setRemoteDescription(sdp, now: .zero)
        _ = try pc.createAnswer()
    }
}
