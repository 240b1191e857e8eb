import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// MeetKit's secure media path and SDP negotiation against aiortc, an independent WebRTC
/// stack, over real UDP on loopback: aiortc offers audio and video, MeetKit answers;
/// both send for five seconds and count the frames they decode.
@Suite("Media interop with aiortc", .serialized)
struct AiortcInteropTests {
    @Test func meetKitAnswersAiortcOffer() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python,
            arguments: [InteropPeers.script("aiortc_peer.py"), "--offer"])
        defer { peer.terminate() }
        let offerMessage = try await peer.readJSON()
        let offer = try SessionDescription(parsing: try #require(offerMessage["sdp"] as? String))
        let negotiated = try SessionNegotiation.negotiate(remote: offer, remoteIsOffer: true)
        let audio = try #require(negotiated.media.first { $0.kind == .audio })
        let video = try #require(negotiated.media.first { $0.kind == .video })

        let side = try await SecureTransportPeer(role: .controlled)
        let local = try await side.localTransport()
        let audioTrack = LocalTrackIdentity.random(kind: .audio, cname: "meetkit", streamID: "meetkit")
        let videoTrack = LocalTrackIdentity.random(kind: .video, cname: "meetkit", streamID: "meetkit")
        let answer = try SessionNegotiation.makeAnswer(
            to: offer, sessionID: 1, version: 1,
            transport: local,
            tracks: [audio.mid: audioTrack, video.mid: videoTrack])
        try peer.writeJSON(["type": "answer", "sdp": answer.serialized()])
        try await Self.exchangeMedia(
            side: side, peer: peer, negotiated: negotiated, audioTrack: audioTrack, videoTrack: videoTrack)
        await side.close()
    }

    /// MeetKit offers audio and video; aiortc answers.
    @Test func aiortcAnswersMeetKitOffer() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python, arguments: [InteropPeers.script("aiortc_peer.py")])
        defer { peer.terminate() }
        let side = try await SecureTransportPeer(role: .controlling)
        let local = try await side.localTransport()
        let audioTrack = LocalTrackIdentity.random(kind: .audio, cname: "meetkit", streamID: "meetkit")
        let videoTrack = LocalTrackIdentity.random(kind: .video, cname: "meetkit", streamID: "meetkit")
        let offer = SessionNegotiation.makeOffer(
            sessionID: 7, version: 1,
            transport: local,
            sections: [
                LocalMediaSection(mid: "0", kind: .audio, direction: .sendrecv, track: audioTrack),
                LocalMediaSection(mid: "1", kind: .video, direction: .sendrecv, track: videoTrack),
            ])
        try peer.writeJSON(["type": "offer", "sdp": offer.serialized()])
        let answerMessage = try await peer.readJSON()
        let answer = try SessionDescription(parsing: try #require(answerMessage["sdp"] as? String))
        let negotiated = try SessionNegotiation.negotiate(remote: answer, remoteIsOffer: false)
        let audio = try #require(negotiated.media.first { $0.kind == .audio })
        let video = try #require(negotiated.media.first { $0.kind == .video })
        #expect(audio.codec.payloadType == 111 && video.codec.payloadType == 96, "the answer keeps our numbering")
        try await Self.exchangeMedia(
            side: side, peer: peer, negotiated: negotiated, audioTrack: audioTrack, videoTrack: videoTrack)
        await side.close()
    }
}

extension AiortcInteropTests {
    /// aiortc's offer with its fingerprint altered before MeetKit reads it: MeetKit's DTLS
    /// handshake fails with a fingerprint mismatch, its alert fails aiortc's too, and no
    /// media flows either way.
    @Test func tamperedFingerprintFailsBothSides() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python,
            arguments: [InteropPeers.script("aiortc_peer.py"), "--offer"])
        defer { peer.terminate() }
        let offerText = try #require(try await peer.readJSON()["sdp"] as? String)
        let offer = try SessionDescription(parsing: offerText)
        var tampered = try SessionNegotiation.negotiate(remote: offer, remoteIsOffer: true)
        tampered.remoteFingerprint = String(tampered.remoteFingerprint.reversed())
        let negotiated = tampered
        let side = try await SecureTransportPeer(role: .controlled)
        let local = try await side.localTransport()
        let answer = try SessionNegotiation.makeAnswer(
            to: offer, sessionID: 3, version: 1,
            transport: local, tracks: [:])
        try peer.writeJSON(["type": "answer", "sdp": answer.serialized()])
        try await side.apply(negotiated)
        #expect(await !side.secured())
        let error = try await side.driver.perform { core, _ in core.dtls?.error }
        guard case .fingerprintMismatch? = error else {
            Issue.record("expected a fingerprint mismatch, got \(String(describing: error))")
            return
        }
        try await Task.sleep(for: .seconds(1))
        try peer.writeJSON(["type": "stop"])
        let done = try await peer.readJSON(timeout: .seconds(20))
        #expect(done["state"] as? String != "connected", "aiortc did not connect (\(done["state"] ?? "-"))")
        #expect(done["audio_frames"] as? Int == 0 && done["video_frames"] as? Int == 0)
        await side.close()
    }

    /// Applies the negotiated transport, waits for DTLS-SRTP, sends a tone and a pattern for
    /// 4 s while receiving aiortc's for 5 s, and checks both sides decoded ≥ 90 %.
    static func exchangeMedia(
        side: SecureTransportPeer, peer: LineProcess, negotiated: NegotiatedSession,
        audioTrack: LocalTrackIdentity, videoTrack: LocalTrackIdentity
    ) async throws {
        let audio = try #require(negotiated.media.first { $0.kind == .audio })
        let video = try #require(negotiated.media.first { $0.kind == .video })
        try await side.apply(negotiated)
        #expect(await side.secured(), "DTLS-SRTP with aiortc")
        let deadline = ContinuousClock.now + .seconds(5)
        async let received = SecureTransportUDPTests.receive(
            on: side, until: deadline, audioPT: audio.codec.payloadType, videoPT: video.codec.payloadType)
        let sent = try await SecureTransportUDPTests.send(
            from: side, seconds: 4, frequency: 880, ssrc: audioTrack.ssrc, videoSSRC: videoTrack.ssrc,
            audioPT: audio.codec.payloadType, videoPT: video.codec.payloadType)
        let got = await received
        // Let the last packets land, then ask aiortc for its counts.
        try await Task.sleep(for: .milliseconds(500))
        try peer.writeJSON(["type": "stop"])
        let done = try await peer.readJSON(timeout: .seconds(20))
        let aiortcAudio = done["audio_frames"] as? Int ?? 0
        let aiortcVideo = done["video_frames"] as? Int ?? 0
        print(
            "aiortc interop: MeetKit sent \(sent.audio) audio / \(sent.video) video frames, aiortc decoded "
                + "\(aiortcAudio) / \(aiortcVideo); MeetKit decoded \(got.audio) / \(got.video) of aiortc's")
        #expect(Double(aiortcAudio) >= 0.9 * Double(sent.audio), "aiortc decoded \(aiortcAudio) of \(sent.audio) audio")
        #expect(Double(aiortcVideo) >= 0.9 * Double(sent.video), "aiortc decoded \(aiortcVideo) of \(sent.video) video")
        // aiortc sends 50 audio and 30 video frames a second; MeetKit listened for 5 s of it.
        #expect(got.audio >= 200 && got.video >= 100, "MeetKit decoded \(got.audio) audio / \(got.video) video frames")
        let heard = SignalAnalysis.dominantFrequency(
            in: Array(got.pcm.suffix(48_000)), sampleRate: 48_000, range: 200...1200)
        #expect(abs(heard - 440) <= 10, "MeetKit hears aiortc's 440 Hz tone (\(heard))")
    }
}
