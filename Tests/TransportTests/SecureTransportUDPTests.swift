import Codec
import MeetKitTestSupport
import Testing

@testable import Transport

/// ICE + DTLS + SRTP over real UDP on loopback: two `SecureTransportCore`s run by
/// `UDPDriver`s send Opus and VP8 both ways; each side decodes what it receives.
@Suite("Secure media over real UDP")
struct SecureTransportUDPTests {
    typealias Side = SecureTransportPeer

    /// Sends `frames` Opus packets and VP8 frames from `side`, paced in real time.
    static func send(
        from side: Side, seconds: Int, frequency: Double, ssrc: UInt32, videoSSRC: UInt32? = nil, audioPT: UInt8 = 111,
        videoPT: UInt8 = 96
    ) async throws -> (audio: Int, video: Int) {
        let opus = try OpusEncoder()
        let vp8 = try VP8Encoder(configuration: .init(width: 320, height: 240))
        var packetizer = try VP8RTPPacketizer(maxPayloadSize: 1100)
        var tone = ToneGenerator(frequency: frequency)
        var pattern = TestPatternGenerator(width: 320, height: 240)
        var audioSeq: UInt16 = 0
        var videoSeq: UInt16 = 0
        var sent = (audio: 0, video: 0)
        for tick in 0..<(seconds * 50) {
            let packet = try opus.encode(tone.nextFrame(samplesPerChannel: 960))
            let audio = RTPPacket(
                header: RTPHeader(
                    payloadType: audioPT, sequenceNumber: audioSeq,
                    timestamp: UInt32(truncatingIfNeeded: packet.timestamp.value), ssrc: ssrc),
                payload: packet.data[...])
            audioSeq &+= 1
            var batch = [audio]
            // A keyframe each second, so a receiver that starts late or loses one recovers.
            if tick % 2 == 0, let frame = try vp8.encode(pattern.nextFrame(), forceKeyframe: tick % 50 == 0) {
                for f in try packetizer.packetize(frame) {
                    batch.append(
                        RTPPacket(
                            header: RTPHeader(
                                payloadType: videoPT, sequenceNumber: videoSeq, timestamp: f.timestamp,
                                ssrc: videoSSRC ?? ssrc + 1,
                                marker: f.marker),
                            payload: f.payload[...]))
                    videoSeq &+= 1
                }
                sent.video += 1
            }
            let toSend = batch
            try await side.driver.perform { core, _ in for p in toSend { try core.sendRTP(p) } }
            sent.audio += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        return sent
    }

    /// Decodes what arrives on `side` until `deadline`.
    static func receive(
        on side: Side, until deadline: ContinuousClock.Instant, audioPT: UInt8 = 111, videoPT: UInt8 = 96
    ) async -> (audio: Int, video: Int, pcm: [Float]) {
        await withTaskGroup(of: (audio: Int, video: Int, pcm: [Float])?.self) { group in
            group.addTask {
                let opus = try! OpusDecoder()
                let vp8 = try! VP8Decoder()
                var assembler = VP8FrameAssembler()
                var result = (audio: 0, video: 0, pcm: [Float]())
                let clock = ContinuousClock()
                let origin = clock.now
                for await event in side.events {
                    guard case .rtp(let p) = event else { continue }
                    if p.header.payloadType == audioPT, let frame = try? opus.decode(Array(p.payload)) {
                        result.audio += 1
                        result.pcm += frame.samples.map(\.normalized)
                    } else if p.header.payloadType == videoPT {
                        for output in (try? assembler.insert(p.payloadPacket, now: clock.now - origin)) ?? [] {
                            if case .frame(let f) = output, (try? vp8.decode(f.encoded)) != nil { result.video += 1 }
                        }
                    }
                }
                return result  // the stream ends when this task is cancelled
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return nil
            }
            _ = await group.next()  // the deadline (the consumer never ends by itself)
            group.cancelAll()
            var result = (audio: 0, video: 0, pcm: [Float]())
            for await r in group { if let r { result = r } }
            return result
        }
    }

    @Test func opusAndVP8BothWays() async throws {
        let a = try await Side(role: .controlling)
        let b = try await Side(role: .controlled)
        struct Info: Sendable {
            let credentials: ICECredentials
            let candidates: [ICECandidate]
            let fingerprint: String
        }
        let infoA = try await a.driver.perform { core, _ in
            Info(
                credentials: core.ice.localCredentials, candidates: core.ice.localCandidates,
                fingerprint: core.certificate.fingerprint)
        }
        let infoB = try await b.driver.perform { core, _ in
            Info(
                credentials: core.ice.localCredentials, candidates: core.ice.localCandidates,
                fingerprint: core.certificate.fingerprint)
        }
        try await a.driver.perform { core, now in
            try core.setRemote(
                credentials: infoB.credentials, candidates: infoB.candidates, endOfCandidates: true,
                fingerprint: ("sha-256", infoB.fingerprint), dtlsRole: .client, now: now)
        }
        try await b.driver.perform { core, now in
            try core.setRemote(
                credentials: infoA.credentials, candidates: infoA.candidates, endOfCandidates: true,
                fingerprint: ("sha-256", infoA.fingerprint), dtlsRole: .server, now: now)
        }
        let (securedA, securedB) = await (a.secured(), b.secured())
        #expect(securedA && securedB)
        let deadline = ContinuousClock.now + .seconds(3)
        async let gotA = Self.receive(on: a, until: deadline)
        async let gotB = Self.receive(on: b, until: deadline)
        async let sentA = Self.send(from: a, seconds: 2, frequency: 440, ssrc: 100)
        async let sentB = Self.send(from: b, seconds: 2, frequency: 880, ssrc: 200)
        let (sa, sb) = try await (sentA, sentB)
        let (ra, rb) = await (gotA, gotB)
        #expect(Double(rb.audio) >= 0.9 * Double(sa.audio), "b decoded \(rb.audio) of \(sa.audio) audio frames")
        #expect(Double(ra.audio) >= 0.9 * Double(sb.audio), "a decoded \(ra.audio) of \(sb.audio) audio frames")
        #expect(Double(rb.video) >= 0.9 * Double(sa.video), "b decoded \(rb.video) of \(sa.video) video frames")
        #expect(Double(ra.video) >= 0.9 * Double(sb.video), "a decoded \(ra.video) of \(sb.video) video frames")
        let heard = SignalAnalysis.dominantFrequency(
            in: Array(rb.pcm.suffix(24_000)), sampleRate: 48_000, range: 200...1200)
        #expect(abs(heard - 440) <= 10)
        await a.driver.close { core, now in core.close(now: now) }
        await b.driver.close { core, now in core.close(now: now) }
    }
}
