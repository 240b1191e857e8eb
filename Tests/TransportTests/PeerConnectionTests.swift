import Codec
import MeetKitTestSupport
import Synchronization
import Testing

@testable import Transport

/// Two PeerConnectionCores on the simulated network: offer/answer, Opus and VP8 both ways,
/// a lossy video path (PLI → keyframe), reports (RTT, loss), and a NACK answered over RTX.
@Suite("PeerConnection core over the simulated network")
struct PeerConnectionTests {
    final class Side {
        let node: SimulatedMachine<PeerConnectionCore>
        var pc: PeerConnectionCore { node.machine }
        var secured = false
        var frames: [String: [EncodedFrame]] = [:]
        var keyframeRequests = 0
        let opus = try! OpusEncoder()
        let vp8 = try! VP8Encoder(configuration: .init(width: 320, height: 240))
        var tone = ToneGenerator(frequency: 500)
        var pattern = TestPatternGenerator(width: 320, height: 240)
        var forceKeyframe = false
        var tick = 0

        init(address: TransportAddress, role: ICERole) throws {
            var config = ICEConfiguration()
            config.role = role
            var pcConfig = PeerConnectionConfiguration()
            pcConfig.ice = config
            // This test exercises PLI recovery and answers a hand-made NACK: no automatic NACKs.
            pcConfig.retransmissionRequests = nil
            node = SimulatedMachine(try PeerConnectionCore(configuration: pcConfig), address: address)
            node.onEvent = { [unowned self] e, _ in
                switch e {
                case .transport(.secured): secured = true
                case .frame(let mid, let f): frames[mid, default: []].append(f)
                case .keyframeRequested: keyframeRequests += 1; forceKeyframe = true
                default: break
                }
            }
        }

        /// Sends 20 ms of audio on mid 0 and, every other tick, a video frame on mid 1.
        func produce(until end: Duration) {
            node.timer = (.zero, { [unowned self] now in produceStep(now, end) })
        }

        private func produceStep(_ now: Duration, _ end: Duration) {
            guard now < end else { return }
            if secured {
                if let packet = try? opus.encode(tone.nextFrame(samplesPerChannel: 960)) {
                    try? pc.send(packet, mid: "0", now: now)
                }
                if tick % 2 == 0, let frame = try? vp8.encode(pattern.nextFrame(), forceKeyframe: forceKeyframe) {
                    forceKeyframe = false
                    try? pc.send(frame, mid: "1", now: now)
                }
                tick += 1
            }
            node.timer = (now + .milliseconds(20), { self.produceStep($0, end) })
        }
    }

    @Test func offerAnswerMediaAndControl() throws {
        let net = SimulatedNetwork(seed: 23)
        net.addHost(IPAddress("203.0.113.1")!, link: .init(latency: .milliseconds(20)))
        net.addHost(IPAddress("203.0.113.2")!, link: .init(latency: .milliseconds(20)))
        let a = try Side(address: TransportAddress("203.0.113.1:5000")!, role: .controlling)
        let b = try Side(address: TransportAddress("203.0.113.2:5000")!, role: .controlled)
        a.pc.start(localAddresses: [a.node.address], now: .zero)
        b.pc.start(localAddresses: [b.node.address], now: .zero)
        a.pc.addTransceiver(.audio)
        a.pc.addTransceiver(.video)
        let offer = try SessionDescription(parsing: a.pc.createOffer().serialized())
        try a.pc.setLocalDescription(offer)
        try b.pc.setRemoteDescription(offer, now: .zero)
        let answer = try SessionDescription(parsing: try b.pc.createAnswer().serialized())
        try b.pc.setLocalDescription(answer)
        try a.pc.setRemoteDescription(answer, now: .zero)
        #expect(a.pc.signalingState == .stable && b.pc.signalingState == .stable)
        #expect(throws: PeerConnectionError.self) { try b.pc.setRemoteDescription(answer, isOffer: false, now: .zero) }

        a.produce(until: .seconds(6))
        b.produce(until: .seconds(6))
        net.run([a.node, b.node], until: .seconds(3))
        #expect(a.secured && b.secured)
        // From now on, 5 % loss on a's link: video frames get lost, PLIs bring keyframes.
        net.setLink(IPAddress("203.0.113.1")!, .init(latency: .milliseconds(20), loss: 0.05))
        net.run([a.node, b.node], until: .seconds(8))

        #expect(net.stalledAt == nil, "no endpoint deadline spun")
        let sentAudio = try #require(a.pc.statistics(mid: "0"))
        let gotAudio = b.frames["0"]?.count ?? 0
        #expect(
            Double(gotAudio) >= 0.85 * Double(sentAudio.framesSent),
            "b got \(gotAudio) of \(sentAudio.framesSent) audio frames")
        #expect((a.frames["0"]?.count ?? 0) > 200, "a got b's audio")
        // Video decodes: every delivered VP8 frame chain starts from a keyframe.
        let decoder = try VP8Decoder()
        var decoded = 0
        for f in b.frames["1"] ?? [] { if (try? decoder.decode(f)) != nil { decoded += 1 } }
        #expect(decoded > 60, "b decoded \(decoded) video frames")
        #expect(a.keyframeRequests > 0, "lost video frames made b ask for keyframes")
        #expect((b.pc.statistics(mid: "1")?.keyframeRequestsSent ?? 0) > 0)
        // Reports: a learnt its RTT (≈ 80 ms: 20 ms on each of four link crossings) and b's loss count.
        let rtt = try #require(a.pc.statistics(mid: "0")?.roundTrip)
        #expect(rtt >= .milliseconds(75) && rtt <= .milliseconds(120), "rtt \(rtt)")
        #expect((a.pc.statistics(mid: "1")?.remoteReportedLost ?? 0) > 0)

        // A NACK from b for a's last five video packets (over a lossless link again): a
        // resends them over RTX, b unwraps and counts them.
        net.setLink(IPAddress("203.0.113.1")!, .init(latency: .milliseconds(20)))
        let videoSSRC = try #require(offer.media[1].ssrcs.first?.ssrc)
        let last = try #require(a.pc.statistics(mid: "1")?.lastSequenceNumberSent)
        let before = b.pc.statistics(mid: "1")?.packetsReceived ?? 0
        try b.pc.transport.sendRTCP([
            .nack(senderSSRC: 1, mediaSSRC: videoSSRC, lost: (1...5).map { last &- UInt16($0) })
        ])
        net.run([a.node, b.node], until: .seconds(9))
        #expect(a.pc.statistics(mid: "1")?.retransmissions == 5)
        #expect((b.pc.statistics(mid: "1")?.packetsReceived ?? 0) == before + 5, "RTX packets arrive as video packets")
    }
}

/// Two PeerConnections over real UDP on loopback, through the public async API: raw audio
/// and video in through the built-in encoders, decoded frames out, both ways.
@Suite("PeerConnection over real UDP")
struct PeerConnectionUDPTests {
    @Test func rawMediaBothWaysDecoded() async throws {
        let loopback = IPAddress("127.0.0.1")!
        let alice = try await PeerConnection.start(localAddresses: [loopback])
        let bob = try await PeerConnection.start(localAddresses: [loopback])
        let audio = try await alice.addTransceiver(.audio, receive: .decoded())
        let video = try await alice.addTransceiver(.video, receive: .decoded())
        let offer = try await alice.createOffer()
        try await alice.setLocalDescription(offer)
        try await bob.setRemoteDescription(offer)
        try await bob.setReceiveOutput(.decoded(), mid: audio)
        try await bob.setReceiveOutput(.decoded(), mid: video)
        let answer = try await bob.createAnswer()
        try await bob.setLocalDescription(answer)
        try await alice.setRemoteDescription(answer)
        func connected(_ pc: PeerConnection) async -> Bool {
            await firstElement(of: pc.events, timeout: .seconds(10)) { $0 == .connectionState(.connected) } != nil
        }
        let (connectedA, connectedB) = await (connected(alice), connected(bob))
        #expect(connectedA && connectedB)
        // Consume both event streams (decoded frames) while sending.
        let pictures = { (pc: PeerConnection) in
            Task {
                var n = 0
                for await e in pc.events { if case .video = e { n += 1 } }
                return n
            }
        }
        let (picturesA, picturesB) = (pictures(alice), pictures(bob))
        var toneA = ToneGenerator(frequency: 440)
        var toneB = ToneGenerator(frequency: 880)
        var pattern = TestPatternGenerator(width: 160, height: 120)
        for i in 0..<50 {
            try await alice.send(audio: toneA.nextFrame(samplesPerChannel: 960), mid: audio)
            try await bob.send(audio: toneB.nextFrame(samplesPerChannel: 960), mid: audio)
            if i % 2 == 0 {
                let picture = pattern.nextFrame()
                try await alice.send(video: picture, mid: video)
                try await bob.send(video: picture, mid: video)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(300))
        for (sender, receiver) in [(alice, bob), (bob, alice)] {
            let sentAudio = try #require(try await sender.statistics(mid: audio))
            let gotAudio = try #require(try await receiver.statistics(mid: audio))
            let sentVideo = try #require(try await sender.statistics(mid: video))
            let gotVideo = try #require(try await receiver.statistics(mid: video))
            #expect(sentAudio.framesEncoded == 50 && sentVideo.framesEncoded == 25)
            #expect(gotAudio.framesDecoded >= 45, "\(gotAudio.framesDecoded) of 50 audio frames decoded")
            #expect(gotVideo.framesDecoded >= 22, "\(gotVideo.framesDecoded) of 25 pictures decoded")
        }
        let security = try #require(try await alice.securityParameters())
        #expect(security.profile == .aeadAES128GCM && security.dtlsRole == .server, "the answerer is the DTLS client")
        await #expect(throws: PeerConnectionError.unknownMid("9")) {
            try await alice.send(audio: toneA.nextFrame(samplesPerChannel: 960), mid: "9")
        }
        await alice.close()
        await bob.close()
        // close() ends the event streams.
        let (shownA, shownB) = (await picturesA.value, await picturesB.value)
        #expect(shownA >= 22 && shownB >= 22)
    }

    /// The handler variant: every event reaches the handler (candidates from the start,
    /// states, decoded audio in order) and the events stream is over at once.
    @Test func eventsToAHandler() async throws {
        let loopback = IPAddress("127.0.0.1")!
        struct Seen {
            var candidates = 0
            var connected = false
            var audioTimestamps: [Int64] = []
        }
        let seen = Mutex(Seen())
        let bob = try await PeerConnection.start(localAddresses: [loopback]) { event in
            seen.withLock { s in
                switch event {
                case .transport(.ice(.localCandidate)): s.candidates += 1
                case .connectionState(.connected): s.connected = true
                case .audio(_, let frame): s.audioTimestamps.append(frame.timestamp.value)
                default: break
                }
            }
        }
        var ended = true
        for await _ in bob.events { ended = false }
        #expect(ended, "a handler takes the events: the stream has none")
        let alice = try await PeerConnection.start(localAddresses: [loopback])
        let audio = try await alice.addTransceiver(.audio, direction: .sendonly)
        let offer = try await alice.createOffer()
        try await alice.setLocalDescription(offer)
        try await bob.setRemoteDescription(offer)
        try await bob.setReceiveOutput(.decoded(audioSampleRate: 48_000), mid: audio)
        let answer = try await bob.createAnswer()
        try await bob.setLocalDescription(answer)
        try await alice.setRemoteDescription(answer)
        #expect(await eventually(.seconds(10)) { seen.withLock { $0.connected } })
        var tone = ToneGenerator(frequency: 440)
        for _ in 0..<30 {
            try await alice.send(audio: tone.nextFrame(samplesPerChannel: 960), mid: audio)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await eventually(.seconds(10)) { seen.withLock { $0.audioTimestamps.count >= 27 } })
        let result = seen.withLock { $0 }
        #expect(result.candidates >= 1)
        #expect(result.audioTimestamps == result.audioTimestamps.sorted(), "in order")
        #expect(Set(result.audioTimestamps).count == result.audioTimestamps.count, "each frame once")
        await alice.close()
        await bob.close()
    }

    /// Back-pressure both ways over real UDP: a reader that does not read closes SCTP's
    /// window, the sender's `send` waits instead of queueing 8 MiB; once the reader reads,
    /// everything arrives byte-equal and the sender finishes.
    @Test func dataChannelBackPressure() async throws {
        let loopback = IPAddress("127.0.0.1")!
        let alice = try await PeerConnection.start(localAddresses: [loopback])
        let bob = try await PeerConnection.start(localAddresses: [loopback])
        let channel = try await alice.createDataChannel(label: "bulk")
        let offer = try await alice.createOffer()
        try await alice.setLocalDescription(offer)
        try await bob.setRemoteDescription(offer)
        let answer = try await bob.createAnswer()
        try await bob.setLocalDescription(answer)
        try await alice.setRemoteDescription(answer)
        var remotes = bob.dataChannels.makeAsyncIterator()
        let incoming = try #require(await remotes.next())
        let messages = (0..<128).map { i in (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &+ i &* 7) } }
        let sender = Task {
            for m in messages { try await channel.send(m) }
        }
        // Nobody reads for a while: the sender cannot be done (8 MiB against a 1 MiB window
        // and 1 MiB of local queue).
        try await Task.sleep(for: .seconds(1))
        let stats = try #require(try await bob.dataChannelStatistics())
        #expect(stats.messagesReceived <= 17, "\(stats.messagesReceived) messages taken while nobody read")
        let queued = try await channel.bufferedAmount()
        #expect(queued <= channel.highWaterMark + 65_536, "\(queued) bytes queued at the sender")
        var got: [[UInt8]] = []
        for await m in incoming.messages {
            guard case .binary(let b) = m else { continue }
            got.append(b)
            if got.count == messages.count { break }
        }
        try await sender.value
        #expect(got == messages)
        await alice.close()
        await bob.close()
    }
}
