import Codec
import Foundation
import MeetKitTestSupport
import Testing
import Transport

// The README's Transport example, compiled here and run below; the test checks the README
// still shows exactly this code.

// README-EXAMPLE-BEGIN
/// Two PeerConnections on loopback: Alice sends a tone as raw PCM, Bob gets it decoded at
/// 16 kHz. The SDP goes straight across here; in a meeting, the server carries it.
func transportTour() async throws -> [Int16] {
    let loopback = IPAddress("127.0.0.1")!  // no STUN or TURN server unless you configure one
    let alice = try await PeerConnection.start(localAddresses: [loopback])
    let bob = try await PeerConnection.start(localAddresses: [loopback])
    let mid = try await alice.addTransceiver(.audio, direction: .sendonly)

    let offer = try await alice.createOffer()
    try await alice.setLocalDescription(offer)
    try await bob.setRemoteDescription(offer)
    try await bob.setReceiveOutput(.decoded(audioSampleRate: 16_000), mid: mid)
    let answer = try await bob.createAnswer()
    try await bob.setLocalDescription(answer)
    try await alice.setRemoteDescription(answer)

    for await event in alice.events where event == .connectionState(.connected) { break }
    let listening = Task {
        var pcm: [Int16] = []
        for await event in bob.events { if case .audio(_, let frame) = event { pcm += frame.samples } }
        return pcm
    }
    // One second of 440 Hz in 10 ms blocks; MeetKit encodes them as 20 ms Opus packets.
    for block in 0..<100 {
        let samples = (0..<480).map { i in
            Int16(8000 * sin(2 * Double.pi * 440 * Double(block * 480 + i) / 48_000))
        }
        try await alice.send(audio: AudioFrame(samples: samples, sampleRate: 48_000, channels: 1), mid: mid)
        try await Task.sleep(for: .milliseconds(10))
    }
    try await Task.sleep(for: .milliseconds(300))
    await alice.close()
    await bob.close()  // ends bob.events
    return await listening.value
}
// README-EXAMPLE-END

@Suite("Transport documentation examples")
struct TransportDocumentationTests {
    @Test func readmeExampleRuns() async throws {
        let pcm = try await transportTour()
        #expect(pcm.count >= 14_000, "\(pcm.count) samples of the 16 000 sent (1 s at 16 kHz)")
        let heard = SignalAnalysis.dominantFrequency(
            in: pcm.map(\.normalized), sampleRate: 16_000, range: 200...1200)
        #expect(abs(heard - 440) <= 10, "heard \(heard) Hz")
    }

    @Test func readmeShowsThisCode() throws {
        #expect(
            try ReadmeExample.isShown(testFile: #filePath, module: "Transport"),
            "README's Transport example differs from this file's")
    }
}
