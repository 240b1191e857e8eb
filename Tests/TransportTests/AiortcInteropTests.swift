import Codec
import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// MeetKit's public PeerConnection against aiortc, an independent WebRTC stack, over real
/// UDP on loopback, in both offer directions: MeetKit sends raw PCM and pictures through
/// its encoders, decodes what aiortc sends, and both sides count the frames they decoded
/// over five seconds.
@Suite("Media interop with aiortc", .serialized)
struct AiortcInteropTests {
    static let loopback = IPAddress("127.0.0.1")!

    @Test func meetKitAnswersAiortcOffer() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python, arguments: [InteropPeers.script("aiortc_peer.py"), "--offer"])
        defer { peer.terminate() }
        let offer = try SessionDescription(parsing: try #require(try await peer.readJSON()["sdp"] as? String))
        let pc = try await PeerConnection.start(localAddresses: [Self.loopback])
        try await pc.setRemoteDescription(offer)
        let transceivers = try await pc.transceivers()
        let audio = try #require(transceivers.first { $0.kind == .audio }?.mid)
        let video = try #require(transceivers.first { $0.kind == .video }?.mid)
        try await pc.setReceiveOutput(.decoded(), mid: audio)
        try await pc.setReceiveOutput(.decoded(), mid: video)
        let answer = try await pc.createAnswer()
        try await pc.setLocalDescription(answer)
        try peer.writeJSON(["type": "answer", "sdp": answer.serialized()])
        try await Self.exchangeMedia(pc: pc, peer: peer, audio: audio, video: video)
        await pc.close()
    }

    /// MeetKit offers audio and video; aiortc answers.
    @Test func aiortcAnswersMeetKitOffer() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(executable: InteropPeers.python, arguments: [InteropPeers.script("aiortc_peer.py")])
        defer { peer.terminate() }
        let pc = try await PeerConnection.start(localAddresses: [Self.loopback])
        let audio = try await pc.addTransceiver(.audio, receive: .decoded())
        let video = try await pc.addTransceiver(.video, receive: .decoded())
        let offer = try await pc.createOffer()
        try await pc.setLocalDescription(offer)
        try peer.writeJSON(["type": "offer", "sdp": offer.serialized()])
        let answer = try SessionDescription(parsing: try #require(try await peer.readJSON()["sdp"] as? String))
        let negotiated = try SessionNegotiation.negotiate(remote: answer, remoteIsOffer: false)
        #expect(
            negotiated.media.map(\.codec.payloadType) == [111, 96], "aiortc's answer keeps MeetKit's payload types")
        try await pc.setRemoteDescription(answer)
        try await Self.exchangeMedia(pc: pc, peer: peer, audio: audio, video: video)
        await pc.close()
    }

    /// aiortc's offer with its fingerprint altered before MeetKit applies it: MeetKit's
    /// DTLS handshake fails with the typed fingerprint mismatch, its alert fails aiortc's
    /// handshake too, and no media flows either way.
    @Test func tamperedFingerprintFailsBothSides() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python, arguments: [InteropPeers.script("aiortc_peer.py"), "--offer"])
        defer { peer.terminate() }
        var offer = try SessionDescription(parsing: try #require(try await peer.readJSON()["sdp"] as? String))
        for i in offer.media.indices {
            for j in offer.media[i].attributes.indices where offer.media[i].attributes[j].name == "fingerprint" {
                let parts = offer.media[i].attributes[j].value?.split(separator: " ") ?? []
                offer.media[i].attributes[j].value = "\(parts[0]) \(String(parts[1].reversed()))"
            }
        }
        let pc = try await PeerConnection.start(localAddresses: [Self.loopback])
        try await pc.setRemoteDescription(offer)
        let answer = try await pc.createAnswer()
        try await pc.setLocalDescription(answer)
        try peer.writeJSON(["type": "answer", "sdp": answer.serialized()])
        // Watch the events until the connection fails (closing it after 15 s ends the wait).
        let watchdog = Task {
            try await Task.sleep(for: .seconds(15))
            await pc.close()
        }
        let watcher = Task { () -> (DTLSError?, [PeerConnectionState]) in
            var (failure, states): (DTLSError?, [PeerConnectionState]) = (nil, [])
            for await event in pc.events {
                if case .transport(.failed(let error)) = event { failure = error }
                if case .connectionState(let s) = event { states.append(s) }
                if event == .connectionState(.failed) { break }
            }
            return (failure, states)
        }
        let (failure, states) = await watcher.value
        watchdog.cancel()
        guard case .fingerprintMismatch? = failure else {
            Issue.record("expected a fingerprint mismatch, got \(String(describing: failure))")
            return
        }
        #expect(states.last == .failed && !states.contains(.connected))
        try await Task.sleep(for: .seconds(1))
        try peer.writeJSON(["type": "stop"])
        let done = try await peer.readJSON(timeout: .seconds(20))
        #expect(done["state"] as? String != "connected", "aiortc did not connect (\(done["state"] ?? "-"))")
        #expect(done["audio_frames"] as? Int == 0 && done["video_frames"] as? Int == 0)
        await pc.close()
    }

    /// Waits for the connection, sends a 880 Hz tone (20 ms PCM blocks) and a 320x240
    /// pattern at 25 fps for 4 s while decoding aiortc's media for 5 s, then checks that
    /// each side decoded ≥ 90 % of what the other sent.
    static func exchangeMedia(pc: PeerConnection, peer: LineProcess, audio: String, video: String) async throws {
        let connected = await firstElement(of: pc.events, timeout: .seconds(10)) { $0 == .connectionState(.connected) }
        try #require(connected != nil, "connected to aiortc")
        let received = Task {
            var (pcm, pictures) = ([Int16](), 0)
            for await event in pc.events {
                switch event {
                case .audio(let mid, let frame) where mid == audio: pcm += frame.samples
                case .video(let mid, _) where mid == video: pictures += 1
                default: break
                }
            }
            return (pcm, pictures)
        }
        let start = ContinuousClock.now
        var tone = ToneGenerator(frequency: 880)
        var pattern = TestPatternGenerator(width: 320, height: 240, frameRate: 25)
        for tick in 0..<200 {
            try await pc.send(audio: tone.nextFrame(samplesPerChannel: 960), mid: audio)
            if tick % 2 == 0 { try await pc.send(video: pattern.nextFrame(), mid: video) }
            try await Task.sleep(until: start + .milliseconds(20 * (tick + 1)))
        }
        try await Task.sleep(until: start + .seconds(5))
        let sentAudio = try #require(try await pc.statistics(mid: audio))
        let sentVideo = try #require(try await pc.statistics(mid: video))
        try peer.writeJSON(["type": "stop"])
        let done = try await peer.readJSON(timeout: .seconds(20))
        // What MeetKit received is read once aiortc has stopped and its last packets are in:
        // read earlier, a picture decoded in between is handed out but not counted.
        try await Task.sleep(for: .milliseconds(300))
        let gotAudio = try #require(try await pc.statistics(mid: audio))
        let gotVideo = try #require(try await pc.statistics(mid: video))
        await pc.close()  // ends the event stream
        let (pcm, pictures) = await received.value
        let aiortcAudio = done["audio_frames"] as? Int ?? 0
        let aiortcVideo = done["video_frames"] as? Int ?? 0
        print(
            "aiortc interop: MeetKit sent \(sentAudio.framesEncoded) audio / \(sentVideo.framesEncoded) video frames, "
                + "aiortc decoded \(aiortcAudio) / \(aiortcVideo); MeetKit decoded \(gotAudio.framesDecoded) / "
                + "\(gotVideo.framesDecoded) of aiortc's")
        #expect(sentAudio.framesEncoded == 200 && sentVideo.framesEncoded == 100)
        #expect(
            Double(aiortcAudio) >= 0.9 * Double(sentAudio.framesEncoded),
            "aiortc decoded \(aiortcAudio) of \(sentAudio.framesEncoded) audio frames")
        #expect(
            Double(aiortcVideo) >= 0.9 * Double(sentVideo.framesEncoded),
            "aiortc decoded \(aiortcVideo) of \(sentVideo.framesEncoded) video frames")
        // aiortc sends 50 audio and 30 video frames a second; MeetKit listened for 5 s of it.
        #expect(
            gotAudio.framesDecoded >= 225 && gotVideo.framesDecoded >= 135,
            "MeetKit decoded \(gotAudio.framesDecoded) audio / \(gotVideo.framesDecoded) video frames")
        #expect(pictures == gotVideo.framesDecoded, "every decoded picture was handed out")
        let heard = SignalAnalysis.dominantFrequency(
            in: pcm.suffix(48_000).map(\.normalized), sampleRate: 48_000, range: 200...1200)
        #expect(abs(heard - 440) <= 10, "MeetKit hears aiortc's 440 Hz tone (\(heard))")
    }
}
