import Codec
import MeetKitTestSupport
import Testing

@testable import Transport

/// PeerConnectionCores fed raw frames (PCM, I420) through the built-in encoders and
/// handing out decoded frames, over the simulated network: decoding both ways, NACK
/// recovery on a lossy link, trickle ICE, ICE restart with renegotiation, and hostile
/// datagrams counted and dropped.
@Suite("PeerConnection media over the simulated network")
struct PeerConnectionMediaTests {
    final class Side {
        let node: SimulatedMachine<PeerConnectionCore>
        var pc: PeerConnectionCore { node.machine }
        var states: [PeerConnectionState] = []
        var remoteTracks: [String] = []
        var pcm: [String: [Int16]] = [:]
        var pictures: [String: [VideoFrame]] = [:]
        var localCandidates: [ICECandidate] = []
        var tone: ToneGenerator
        var pattern = TestPatternGenerator(width: 320, height: 240, frameRate: 15)
        var tick = 0
        var sending: [(mid: String, kind: MediaKind)] = []
        /// Whether ``produce(until:)`` waits for the connection (otherwise it feeds frames
        /// from the start, as a camera would).
        var waitsForConnection = true

        init(_ address: String, frequency: Double, configuration: PeerConnectionConfiguration = .init()) throws {
            tone = ToneGenerator(frequency: frequency)
            node = SimulatedMachine(
                try PeerConnectionCore(configuration: configuration), address: TransportAddress(address)!)
            node.onEvent = { [unowned self] e, _ in
                switch e {
                case .connectionState(let s): states.append(s)
                case .remoteTrack(let mid, _, _, _): remoteTracks.append(mid)
                case .audio(let mid, let frame): pcm[mid, default: []] += frame.samples
                case .video(let mid, let picture): pictures[mid, default: []].append(picture)
                case .transport(.ice(.localCandidate(let c))): localCandidates.append(c)
                default: break
                }
            }
            pc.start(localAddresses: [node.address], now: .zero)
            node.poll()
        }

        var connected: Bool { pc.connectionState == .connected }

        /// Every 20 ms, while connected: 20 ms of tone in two uneven blocks (the encoder
        /// re-chunks them) on each audio mid, and every third tick a picture on each video mid.
        func produce(until end: Duration) {
            node.timer = (node.machine.nextDeadline ?? .zero, { [unowned self] now in step(now, end) })
        }

        private func step(_ now: Duration, _ end: Duration) {
            guard now < end else { return }
            if connected || !waitsForConnection {
                for (mid, kind) in sending {
                    switch kind {
                    case .audio:
                        try? pc.send(audio: tone.nextFrame(samplesPerChannel: 400), mid: mid, now: now)
                        try? pc.send(audio: tone.nextFrame(samplesPerChannel: 560), mid: mid, now: now)
                    case .video where tick % 3 == 0:
                        try? pc.send(video: pattern.nextFrame(), mid: mid, now: now)
                    case .video: break
                    }
                }
                tick += 1
            }
            node.timer = (now + .milliseconds(20), { [unowned self] in step($0, end) })
        }
    }

    /// Offer from `a`, answer from `b`, both applied; returns (offer, answer).
    @discardableResult
    static func negotiate(_ a: Side, _ b: Side, now: Duration = .zero) throws -> (
        SessionDescription, SessionDescription
    ) {
        let offer = try SessionDescription(parsing: a.pc.createOffer().serialized())
        try a.pc.setLocalDescription(offer)
        try b.pc.setRemoteDescription(offer, now: now)
        let answer = try SessionDescription(parsing: b.pc.createAnswer().serialized())
        try b.pc.setLocalDescription(answer)
        try a.pc.setRemoteDescription(answer, now: now)
        return (offer, answer)
    }

    /// The simulated network and two sides on it: a (440 Hz tone) and b (880 Hz).
    static func pair(seed: UInt64) throws -> (SimulatedNetwork, Side, Side) {
        let net = network(seed: seed)
        return (net, try Side("203.0.113.1:5000", frequency: 440), try Side("203.0.113.2:5000", frequency: 880))
    }

    static func network(seed: UInt64, link: SimulatedNetwork.LinkConditions = .init(latency: .milliseconds(20)))
        -> SimulatedNetwork
    {
        let net = SimulatedNetwork(seed: seed)
        net.addHost(IPAddress("203.0.113.1")!, link: link)
        net.addHost(IPAddress("203.0.113.2")!, link: link)
        return net
    }

    @Test func rawFramesInDecodedFramesOutBothWays() throws {
        let (net, a, b) = try Self.pair(seed: 31)
        let audio = a.pc.addTransceiver(.audio, receive: .decoded(audioSampleRate: 16_000))
        let video = a.pc.addTransceiver(.video, receive: .decoded())
        try Self.negotiate(a, b)
        // b's transceivers came from a's offer: ask for decoded output there too.
        try b.pc.setReceiveOutput(.both(audioSampleRate: 16_000), mid: audio)
        try b.pc.setReceiveOutput(.decoded(), mid: video)
        a.sending = [(audio, .audio), (video, .video)]
        b.sending = [(audio, .audio), (video, .video)]
        a.produce(until: .seconds(5))
        b.produce(until: .seconds(5))
        net.run([a.node, b.node], until: .seconds(6))

        #expect(a.states.prefix(2) == [.connecting, .connected] && b.states.prefix(2) == [.connecting, .connected])
        #expect(net.stalledAt == nil)
        #expect(b.remoteTracks == [audio, video], "b saw a's two tracks announced")
        #expect(a.remoteTracks == [audio, video])
        for (sender, receiver, frequency) in [(a, b, 440.0), (b, a, 880.0)] {
            let sentAudio = try #require(sender.pc.statistics(mid: audio))
            let gotAudio = try #require(receiver.pc.statistics(mid: audio))
            let sentVideo = try #require(sender.pc.statistics(mid: video))
            let gotVideo = try #require(receiver.pc.statistics(mid: video))
            #expect(sentAudio.framesEncoded > 200, "20 ms packets from 400 + 560-sample blocks")
            #expect(
                Double(gotAudio.framesDecoded) >= 0.9 * Double(sentAudio.framesEncoded),
                "decoded \(gotAudio.framesDecoded) of \(sentAudio.framesEncoded) audio frames")
            #expect(sentVideo.framesEncoded > 60)
            #expect(
                Double(gotVideo.framesDecoded) >= 0.9 * Double(sentVideo.framesEncoded),
                "decoded \(gotVideo.framesDecoded) of \(sentVideo.framesEncoded) video frames")
            // 16 kHz PCM whose tone is the sender's; its length matches the frames decoded.
            let samples = receiver.pcm[audio] ?? []
            #expect(samples.count == gotAudio.framesDecoded * 320)
            let heard = SignalAnalysis.dominantFrequency(
                in: samples.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
            #expect(abs(heard - frequency) <= 10, "heard \(heard) Hz")
            let last = try #require(receiver.pictures[video]?.last)
            #expect(last.width == 320 && last.height == 240)
            #expect(gotAudio.jitter < 0.005 && gotAudio.packetsLost == 0)
        }
    }

    /// A camera feeds pictures from the start, long before the connection is up: those
    /// are not encoded and not counted as sent, the first picture sent is a keyframe, and
    /// so every frame sent is decoded — no keyframe request, no refused frame. (Before, the
    /// only keyframe went nowhere and the receiver lost the first third of a second.)
    @Test func picturesBeforeTheConnectionAreDiscardedAndTheFirstSentIsAKeyframe() throws {
        let (net, a, b) = try Self.pair(seed: 37)
        let audio = a.pc.addTransceiver(.audio, direction: .sendonly)
        let video = a.pc.addTransceiver(.video, direction: .sendonly)
        try Self.negotiate(a, b)
        try b.pc.setReceiveOutput(.decoded(), mid: audio)
        try b.pc.setReceiveOutput(.decoded(), mid: video)
        a.sending = [(audio, .audio), (video, .video)]
        a.waitsForConnection = false
        a.produce(until: .seconds(3))
        net.run([a.node, b.node], until: .seconds(4))
        let sent = try #require(a.pc.statistics(mid: video))
        let got = try #require(b.pc.statistics(mid: video))
        #expect(sent.framesDiscarded > 0, "the connection took some frames' time to come up")
        #expect(sent.framesEncoded == sent.framesSent, "discarded pictures were not encoded")
        #expect(got.framesDecoded == sent.framesSent, "decoded \(got.framesDecoded) of \(sent.framesSent)")
        #expect(got.decodeErrors == 0 && got.keyframeRequestsSent == 0)
        let sentAudio = try #require(a.pc.statistics(mid: audio))
        let gotAudio = try #require(b.pc.statistics(mid: audio))
        #expect(
            sentAudio.framesDiscarded > 0 && sentAudio.framesEncoded == sentAudio.framesSent + sentAudio.framesDiscarded
        )
        #expect(gotAudio.framesDecoded == sentAudio.framesSent)
    }

    /// Encoded frames ("bring your own media") given before the connection is up are
    /// discarded; when the first frame sent afterwards is not a keyframe, the source is told
    /// to make one (a keyframe-request event no PLI caused), and a receiver that sees a
    /// stream start with a delta frame asks for a keyframe at once: the receiver loses one
    /// or two frames, not the reorder wait's worth.
    @Test func encodedVideoBeforeTheConnectionAsksItsSourceForAKeyframe() throws {
        let (net, a, b) = try Self.pair(seed: 38)
        let video = a.pc.addTransceiver(.video, direction: .sendonly)
        try Self.negotiate(a, b)
        try b.pc.setReceiveOutput(.decoded(), mid: video)
        // The source: an encoder that answers keyframe requests, a frame every 40 ms.
        let encoder = try VP8Encoder(configuration: .init(width: 160, height: 120))
        var pattern = TestPatternGenerator(width: 160, height: 120, frameRate: 25)
        var requests = 0
        a.node.onEvent = { e, _ in
            if case .keyframeRequested = e {
                requests += 1
                encoder.requestKeyframe()
            }
        }
        var fed = 0
        func feed(_ now: Duration) {
            guard fed < 100, let frame = try? encoder.encode(pattern.nextFrame()) else { return }
            try? a.pc.send(frame, mid: video, now: now)
            a.node.poll()
            fed += 1
            a.node.timer = (now + .milliseconds(40), feed)
        }
        a.node.timer = (.zero, feed)
        net.run([a.node, b.node], until: .seconds(5))
        let sent = try #require(a.pc.statistics(mid: video))
        let got = try #require(b.pc.statistics(mid: video))
        #expect(sent.framesDiscarded > 0 && sent.framesDiscarded + sent.framesSent == fed)
        #expect(requests == sent.keyframeRequestsReceived + 1, "one request came from the discarded keyframe")
        #expect(got.keyframeRequestsSent <= 1)
        #expect(got.framesDecoded >= sent.framesSent - 2, "decoded \(got.framesDecoded) of \(sent.framesSent)")
    }

    /// A keyframe request made too soon after the last one (within
    /// `keyframeRequestInterval`) is paced, not lost: it goes out once the interval is
    /// over (a relay switching simulcast layers depends on it).
    @Test func aKeyframeRequestTooSoonGoesOutLater() throws {
        let (net, a, b) = try Self.pair(seed: 39)
        let video = a.pc.addTransceiver(.video, direction: .sendonly)
        try Self.negotiate(a, b)
        try b.pc.setReceiveOutput(.encoded, mid: video)
        let encoder = try VP8Encoder(configuration: .init(width: 160, height: 120))
        var pattern = TestPatternGenerator(width: 160, height: 120, frameRate: 25)
        var requestedAt: [Duration] = []
        a.node.onEvent = { e, now in
            if case .keyframeRequested = e { requestedAt.append(now) }
        }
        func feed(_ now: Duration) {
            guard a.pc.connectionState == .connected, let frame = try? encoder.encode(pattern.nextFrame()) else {
                a.node.timer = (now + .milliseconds(40), feed)
                return
            }
            try? a.pc.send(frame, mid: video, now: now)
            a.node.poll()
            a.node.timer = (now + .milliseconds(40), feed)
        }
        a.node.timer = (.zero, feed)
        net.run([a.node, b.node], until: .seconds(2))
        let before = requestedAt.count
        // Two requests 50 ms apart.
        b.node.timer = (
            .seconds(2),
            { now in
                try? b.pc.requestKeyframe(mid: video, now: now)
                b.node.poll()
                b.node.timer = (
                    now + .milliseconds(50),
                    { later in
                        try? b.pc.requestKeyframe(mid: video, now: later)
                        b.node.poll()
                    }
                )
            }
        )
        net.run([a.node, b.node], until: .seconds(3))
        let got = try #require(b.pc.statistics(mid: video))
        let late = Array(requestedAt.dropFirst(before))
        #expect(late.count == 2, "requests seen by the sender: \(late)")
        if late.count == 2 { #expect(late[1] - late[0] >= .milliseconds(290), "\(late)") }
        #expect(got.keyframeRequestsSent >= 2)
    }

    /// Ten seconds of video from a to b with 5 % loss both ways (media, NACKs and
    /// retransmissions alike); returns what a sent and what b got.
    static func lossyVideo(nacks: Bool, seed: UInt64) throws -> (
        sent: PeerConnectionCore.TransceiverStatistics, got: PeerConnectionCore.TransceiverStatistics
    ) {
        let net = Self.network(seed: seed)
        var configuration = PeerConnectionConfiguration()
        if !nacks { configuration.retransmissionRequests = nil }
        let a = try Side("203.0.113.1:5000", frequency: 440)
        let b = try Side("203.0.113.2:5000", frequency: 880, configuration: configuration)
        let video = a.pc.addTransceiver(.video, direction: .sendonly)
        try Self.negotiate(a, b)
        try b.pc.setReceiveOutput(.decoded(), mid: video)
        a.sending = [(video, .video)]
        a.produce(until: .seconds(11))
        net.run([a.node, b.node], until: .seconds(1))
        #expect(a.connected && b.connected)
        for ip in ["203.0.113.1", "203.0.113.2"] {
            net.setLink(IPAddress(ip)!, .init(latency: .milliseconds(20), loss: 0.05))
        }
        net.run([a.node, b.node], until: .seconds(12))
        #expect(net.stalledAt == nil)
        return (try #require(a.pc.statistics(mid: video)), try #require(b.pc.statistics(mid: video)))
    }

    @Test func nacksRecoverVideoOnALossyLink() throws {
        let with = try Self.lossyVideo(nacks: true, seed: 32)
        let without = try Self.lossyVideo(nacks: false, seed: 32)
        #expect(with.got.nacksSent > 0 && with.sent.retransmissions > 0)
        #expect(without.got.nacksSent == 0 && without.sent.retransmissions == 0)
        // Each frame NACKs could not save costs the pictures until a keyframe arrives (a PLI
        // round trip plus a keyframe of ~10 packets that may itself need NACKs): measured
        // 1–2 such losses, 88–95 % of pictures decoded; without NACKs 25 %.
        #expect(
            Double(with.got.framesDecoded) >= 0.8 * Double(with.sent.framesEncoded),
            "decoded \(with.got.framesDecoded) of \(with.sent.framesEncoded); lost \(with.got.framesLost)")
        #expect(
            with.got.framesLost * 4 <= without.got.framesLost,
            "frames lost: \(with.got.framesLost) with NACKs, \(without.got.framesLost) without")
        #expect(with.got.framesDecoded > 2 * without.got.framesDecoded)
    }

    /// Two video m-lines share the RTX payload type in one BUNDLE: a retransmission is
    /// routed by its RTX SSRC to the m-line it repairs, not to the first video m-line.
    @Test func retransmissionsReachTheirOwnMLine() throws {
        let (net, a, b) = try Self.pair(seed: 36)
        let first = a.pc.addTransceiver(.video, direction: .sendonly)
        let second = a.pc.addTransceiver(.video, direction: .sendonly)
        let (offer, _) = try Self.negotiate(a, b)
        a.sending = [(first, .video), (second, .video)]
        a.produce(until: .seconds(2))
        net.run([a.node, b.node], until: .seconds(3))
        let secondSSRC = try #require(offer.media[1].ssrcs.first?.ssrc)
        let last = try #require(a.pc.statistics(mid: second)?.lastSequenceNumberSent)
        let before = (
            b.pc.statistics(mid: first)?.packetsReceived ?? 0, b.pc.statistics(mid: second)?.packetsReceived ?? 0
        )
        #expect(before.1 > 0)
        try b.pc.transport.sendRTCP([
            .nack(senderSSRC: 1, mediaSSRC: secondSSRC, lost: (1...5).map { last &- UInt16($0) })
        ])
        net.run([a.node, b.node], until: .seconds(4))
        #expect(a.pc.statistics(mid: second)?.retransmissions == 5)
        #expect(b.pc.statistics(mid: second)?.packetsReceived == before.1 + 5, "the repairs reached the second m-line")
        #expect(b.pc.statistics(mid: first)?.packetsReceived == before.0, "and nothing landed on the first")
    }

    /// A relay sends on a section as soon as it has answered the offer adding it; packets
    /// reaching the offerer before it applies that answer are dropped, not claimed by
    /// another section of their kind (its own send-only microphone), which kept the stream
    /// for good: MeetKit in a LiveKit `/rtc/v1` room then never heard a participant.
    @Test func mediaRacingTheAnswerIsNotClaimedByAnotherSection() throws {
        let (net, a, b) = try Self.pair(seed: 37)
        let microphone = a.pc.addTransceiver(.audio, direction: .sendonly)
        try Self.negotiate(a, b)
        a.sending = [(microphone, .audio)]
        a.produce(until: .seconds(6))
        net.run([a.node, b.node], until: .seconds(1))
        #expect(a.connected && b.connected)

        let incoming = a.pc.addTransceiver(.audio, direction: .recvonly, receive: .decoded(audioSampleRate: 16_000))
        let offer = try SessionDescription(parsing: a.pc.createOffer().serialized())
        try a.pc.setLocalDescription(offer)
        try b.pc.setRemoteDescription(offer, now: .seconds(1))
        let answer = try SessionDescription(parsing: b.pc.createAnswer().serialized())
        try b.pc.setLocalDescription(answer)
        b.sending = [(incoming, .audio)]
        b.produce(until: .seconds(6))
        net.run([a.node, b.node], until: .seconds(2))  // the answer is still on its way
        try a.pc.setRemoteDescription(answer, now: .seconds(2))
        net.run([a.node, b.node], until: .seconds(6))

        #expect(a.pc.statistics(mid: microphone)?.packetsReceived == 0, "nothing landed on the microphone")
        let got = try #require(a.pc.statistics(mid: incoming))
        #expect(got.framesDecoded >= 150, "decoded \(got.framesDecoded) frames after the answer")
        let heard = SignalAnalysis.dominantFrequency(
            in: (a.pcm[incoming] ?? []).suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
        #expect(abs(heard - 880) <= 10, "heard \(heard) Hz")
    }

    @Test func trickledCandidatesConnect() throws {
        let (net, a, b) = try Self.pair(seed: 33)
        a.pc.addTransceiver(.audio)
        // Descriptions without candidates: nobody knows where the other is.
        func strip(_ sdp: SessionDescription) throws -> SessionDescription {
            let text = sdp.serialized().split(separator: "\r\n", omittingEmptySubsequences: true)
                .filter { !$0.hasPrefix("a=candidate") && !$0.hasPrefix("a=end-of-candidates") }
            return try SessionDescription(parsing: text.joined(separator: "\r\n") + "\r\n")
        }
        let offer = try strip(a.pc.createOffer())
        try a.pc.setLocalDescription(offer)
        try b.pc.setRemoteDescription(offer, now: .zero)
        let answer = try strip(b.pc.createAnswer())
        try b.pc.setLocalDescription(answer)
        try a.pc.setRemoteDescription(answer, now: .zero)
        net.run([a.node, b.node], until: .seconds(2))
        #expect(!a.connected && !b.connected)

        #expect(!a.localCandidates.isEmpty && !b.localCandidates.isEmpty)
        for c in a.localCandidates { try b.pc.addICECandidate(c, now: .seconds(2)) }
        for c in b.localCandidates { try a.pc.addICECandidate(c, now: .seconds(2)) }
        try a.pc.addICECandidate(nil, now: .seconds(2))
        try b.pc.addICECandidate(nil, now: .seconds(2))
        net.run([a.node, b.node], until: .seconds(4))
        #expect(a.connected && b.connected)
        let fresh = try PeerConnectionCore()
        #expect(throws: PeerConnectionError.self) { try fresh.addICECandidate(nil, now: .zero) }
    }

    @Test func iceRestartAndRenegotiationKeepMediaFlowing() throws {
        let (net, a, b) = try Self.pair(seed: 34)
        let audio = a.pc.addTransceiver(.audio, receive: .decoded())
        let (offer, _) = try Self.negotiate(a, b)
        try b.pc.setReceiveOutput(.decoded(), mid: audio)
        a.sending = [(audio, .audio)]
        b.sending = [(audio, .audio)]
        a.produce(until: .seconds(8))
        b.produce(until: .seconds(8))
        net.run([a.node, b.node], until: .seconds(2))
        #expect(a.connected && b.connected)
        let before = try #require(b.pc.statistics(mid: audio)).framesDecoded

        // a restarts ICE and adds a video transceiver in the same new offer.
        a.pc.restartICE(now: .seconds(2))
        let video = a.pc.addTransceiver(.video)
        let (reoffer, reanswer) = try Self.negotiate(a, b, now: .seconds(2))
        #expect(reoffer.media[0].iceUfrag != offer.media[0].iceUfrag, "the restart changed a's credentials")
        #expect(reanswer.media.count == 2)
        try b.pc.setReceiveOutput(.decoded(), mid: video)
        a.sending.append((video, .video))
        net.run([a.node, b.node], until: .seconds(6))
        #expect(b.remoteTracks == [audio, video], "the new track is announced once, the old one not again")

        #expect(a.connected && b.connected)
        #expect(b.pc.transport.ice.remoteCredentials?.ufrag == a.pc.transport.ice.localCredentials.ufrag)
        let after = try #require(b.pc.statistics(mid: audio)).framesDecoded
        #expect(after - before >= 180, "audio kept flowing across the restart: \(after - before) frames in 4 s")
        #expect((b.pc.statistics(mid: video)?.framesDecoded ?? 0) > 40, "the added video track flows")
    }

    @Test func hostileDatagramsAreDroppedAndCounted() throws {
        let (net, a, b) = try Self.pair(seed: 35)
        let audio = a.pc.addTransceiver(.audio, direction: .sendonly)
        try Self.negotiate(a, b)
        net.run([a.node, b.node], until: .seconds(1))
        #expect(a.connected && b.connected)

        // One genuine SRTP packet from a, taken off the wire by hand.
        var tone = ToneGenerator(frequency: 440)
        try a.pc.send(audio: tone.nextFrame(samplesPerChannel: 960), mid: audio, now: .seconds(1))
        let wire = a.node.drainTransmits().map(\.data)
        let genuine = try #require(wire.first { DatagramKind($0) == .rtp })
        let (from, to) = (a.node.address, b.node.address)
        let now = Duration.seconds(1)
        b.pc.handleDatagram(genuine, from: from, to: to, now: now)
        #expect(b.pc.statistics(mid: audio)?.packetsReceived == 1)

        let statsBefore = b.pc.transport.statistics
        var tampered = genuine
        tampered[tampered.count - 3] ^= 0x40
        var rng = SplitMix64(seed: 9)
        let garbageRTP = [0x80, 111] + (0..<60).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let hostile: [[UInt8]] = [
            genuine,  // replayed
            tampered,  // authentication fails
            Array(genuine.prefix(15)),  // truncated
            garbageRTP,  // RTP-looking noise
            [0x80],  // one byte
            [0xFF, 0xFF, 0xFF],  // no RFC 7983 range
            [],
        ]
        for d in hostile { b.pc.handleDatagram(d, from: from, to: to, now: now) }
        let statsAfter = b.pc.transport.statistics
        #expect(statsAfter.srtpRejected - statsBefore.srtpRejected == 5)
        #expect(statsAfter.unknownDatagrams - statsBefore.unknownDatagrams == 2)
        #expect(b.pc.statistics(mid: audio)?.packetsReceived == 1, "nothing hostile reached the media path")
        // The connection is unharmed: media still flows.
        a.sending = [(audio, .audio)]
        a.produce(until: .seconds(3))
        net.run([a.node, b.node], until: .seconds(3))
        #expect((b.pc.statistics(mid: audio)?.framesReceived ?? 0) > 50)
        #expect(b.pc.connectionState == .connected)
    }
}
