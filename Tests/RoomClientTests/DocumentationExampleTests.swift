import Codec
import MeetKitTestSupport
import NIOCore
import RoomClient
import Testing
import Transport

// The README's RoomClient example, compiled here and run below against a real Janus; the
// test checks the README still shows exactly this code.

// README-EXAMPLE-BEGIN
/// Joins a room as a transcriber would: says hello, then collects each speaker's audio as
/// 16 kHz mono PCM for `seconds`, and leaves. Returns the samples per speaker.
func roomTour(
    url: String, options base: RoomOptions, group: any EventLoopGroup, seconds: Double
) async throws -> [String: [Int16]] {
    let signaling = try await JanusRoomSignaling.connect(url: url, group: group)
    var options = base
    options.audioOutput = .decoded(audioSampleRate: 16_000)  // what speech engines want
    let room = try await Room.join(
        signaling: signaling, room: "1234", displayName: "scribe", options: options, group: group)
    let mic = try await room.publish([(.audio, .microphone)])[0]
    let hello = Task { try await room.play([.tone(880)], on: mic) }  // or .file("hello.wav")

    let listening = Task {
        var speech: [String: [Int16]] = [:]
        for await event in room.events {
            switch event {
            case .participantJoined(let p): print("\(p.name) is here")
            case .audio(let speaker, _, let pcm): speech[speaker, default: []] += pcm.samples
            default: break
            }
        }
        return speech
    }
    try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    hello.cancel()
    await room.leave()  // the server sees us go; the event stream ends
    return await listening.value
}
// README-EXAMPLE-END

@Suite("RoomClient documentation example", .serialized)
struct RoomClientDocumentationTests {
    @Test func readmeExampleRuns() async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        let janus = try JanusServer.start()
        defer { janus.stop() }
        // Janus is reachable inside its namespace: the namespace's event loops and address.
        let group = try await janus.eventLoopGroup()
        let options = janus.roomOptions()
        let speaker = try await janus.join("speaker", group: group)
        let mic = try await speaker.publish([(.audio, .microphone)])[0]
        let talking = Task { try await speaker.play([.tone(440)], on: mic) }
        let speech = try await roomTour(url: janus.url, options: options, group: group, seconds: 3)
        talking.cancel()
        await speaker.leave()
        let heard = try #require(speech[speaker.localParticipantID])
        #expect(heard.count >= 16_000 * 2, "\(heard.count) samples in 3 s")
        let tone = SignalAnalysis.dominantFrequency(
            in: heard.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
        #expect(abs(tone - 440) <= 10, "the scribe heard \(tone) Hz")
    }

    @Test func readmeShowsThisCode() throws {
        #expect(
            try ReadmeExample.isShown(testFile: #filePath, module: "RoomClient"),
            "README's RoomClient example differs from this file's")
    }
}
