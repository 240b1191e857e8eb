import Codec
import Foundation
import MeetKitTestSupport
import NIOCore
import Synchronization
import Testing
import Transport

@testable import RoomClient

/// Publishing over time on a real Janus: a screen share added to a running camera, mute,
/// unpublish, and selective subscription.
@Suite("Publishing and subscribing choices on a real Janus", .serialized)
struct PublishingTests {
    final class EventBox: Sendable {
        private let list = Mutex<[RoomEvent]>([])
        func append(_ e: RoomEvent) { list.withLock { $0.append(e) } }
        var all: [RoomEvent] { list.withLock { $0 } }
    }

    static func join(_ janus: JanusServer, _ group: any EventLoopGroup, _ name: String, auto: Bool) async throws -> Room
    {
        try await janus.join(name, group: group) { $0.autoSubscribe = auto }
    }

    @Test func screenShareMuteUnpublishAndSelectiveSubscription() async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        let janus = try JanusServer.start()
        defer { janus.stop() }
        let group = try await janus.eventLoopGroup()
        let alice = try await Self.join(janus, group, "alice", auto: true)
        let bob = try await Self.join(janus, group, "bob", auto: true)
        let carol = try await Self.join(janus, group, "carol", auto: false)
        let (bobSees, carolSees) = (EventBox(), EventBox())
        let listeners = [
            Task { for await e in bob.events { bobSees.append(e) } },
            Task { for await e in carol.events { carolSees.append(e) } },
        ]
        let a = alice.localParticipantID

        // Camera and microphone, then a screen share added to the running connection.
        let camera = try await alice.publish([(.audio, .microphone), (.video, .camera)])
        let screen = try await alice.publish([(.video, .screen)])[0]
        #expect(screen.source == .screen)
        func published(_ box: EventBox) -> [TrackSource] {
            box.all.compactMap { if case .trackPublished(let who, let t) = $0, who == a { t.source } else { nil } }
        }
        #expect(await eventually { Set(published(bobSees)) == [.microphone, .camera, .screen] })
        #expect(await eventually { Set(published(carolSees)) == [.microphone, .camera, .screen] })
        func subscribed(_ box: EventBox) -> [TrackSource] {
            box.all.compactMap { if case .trackSubscribed(let who, let t) = $0, who == a { t.source } else { nil } }
        }
        #expect(await eventually { Set(subscribed(bobSees)) == [.microphone, .camera, .screen] })

        // Pictures on the screen track reach bob as the screen track.
        var pattern = TestPatternGenerator(width: 320, height: 180)
        for _ in 0..<40 {
            try await alice.send(video: pattern.nextFrame(), on: screen)
            try await Task.sleep(for: .milliseconds(40))
        }
        let screenID = screen.mid
        #expect(
            await eventually {
                bobSees.all.filter {
                    if case .video(let who, let t, _) = $0 { who == a && t == screenID } else { false }
                }
                .count >= 20
            }, "bob decoded alice's screen")

        // Carol chose: she gets only what she asks for.
        #expect(subscribed(carolSees).isEmpty, "no automatic subscription for carol")
        try await carol.subscribe(participantID: a, trackID: camera[0].mid)
        #expect(await eventually { subscribed(carolSees) == [.microphone] })

        // Mute: the server is told, and the others see the track muted.
        try await alice.setMuted(true, track: camera[0])
        let muteSeen = await eventually {
            bobSees.all.contains { $0 == .trackMuted(participantID: a, trackID: camera[0].mid, muted: true) }
        }
        #expect(muteSeen, "bob saw the microphone muted")
        try await alice.setMuted(false, track: camera[0])
        let unmuteSeen = await eventually {
            bobSees.all.contains { $0 == .trackMuted(participantID: a, trackID: camera[0].mid, muted: false) }
        }
        #expect(unmuteSeen, "bob saw the microphone unmuted")

        // Unpublish everything: the others see every track go.
        try await alice.unpublishAll()
        let gone = await eventually {
            bobSees.all.filter { if case .trackUnpublished(let who, _) = $0 { who == a } else { false } }.count == 3
        }
        #expect(gone, "bob saw alice's three tracks unpublished")
        for room in [alice, bob, carol] { await room.leave() }
        for l in listeners { await l.value }
    }

    /// Files as sources: a WAV and an Ogg Opus on the microphone, an IVF on the camera;
    /// the other side hears the files' tones and decodes the pictures.
    @Test func playsWAVOggOpusAndIVFFiles() async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        let folder = NSTemporaryDirectory() + "meetkit-files-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // 1.5 s of 500 Hz as 16 kHz WAV, 1.5 s of 800 Hz as Ogg Opus, 45 VP8 pictures as IVF.
        let wav = try WAVWriter(path: folder + "/a.wav", sampleRate: 16_000, channels: 1)
        var low = ToneGenerator(frequency: 500, sampleRate: 16_000)
        try wav.write(low.nextFrame(samplesPerChannel: 24_000))
        try wav.finish()
        let ogg = try OggOpusWriter(path: folder + "/b.opus", channels: 1)
        let opus = try OpusEncoder()
        var high = ToneGenerator(frequency: 800)
        for _ in 0..<75 { try ogg.write(try opus.encode(high.nextFrame(samplesPerChannel: 960))) }
        try ogg.finish()
        let ivf = try IVFWriter(path: folder + "/c.ivf", width: 320, height: 180)
        let vp8 = try VP8Encoder(configuration: .init(width: 320, height: 180))
        var pattern = TestPatternGenerator(width: 320, height: 180)
        // A keyframe every 15 pictures, as recorded files have: a file source cannot answer a
        // keyframe request, so a receiver that missed the first one waits for the next.
        for i in 0..<45 {
            if let f = try vp8.encode(pattern.nextFrame(), forceKeyframe: i % 15 == 0) { try ivf.write(f) }
        }
        try ivf.finish()
        #expect(throws: MediaFileError.self) { try MediaSource.file(folder + "/missing.wav") }

        let janus = try JanusServer.start()
        defer { janus.stop() }
        let group = try await janus.eventLoopGroup()
        let alice = try await Self.join(janus, group, "alice", auto: false)
        let bob = try await Self.join(janus, group, "bob", auto: true)
        let bobSees = EventBox()
        let listener = Task { for await e in bob.events { bobSees.append(e) } }
        let tracks = try await alice.publish([(.audio, .microphone), (.video, .camera)])
        let a = alice.localParticipantID
        #expect(
            await eventually {
                bobSees.all.filter { if case .trackSubscribed(let who, _) = $0 { who == a } else { false } }.count == 2
            })
        // Play once both of bob's subscriber connection and alice's publisher connection are up.
        #expect(
            await eventually {
                bobSees.all.contains { $0 == .connectionState(.connected, publisher: false) }
            }, "bob's subscriber connection came up")
        var publishing = false
        for _ in 0..<200 where !publishing {
            publishing = (try? await alice.publisherState()) == .connected
            if !publishing { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(publishing, "alice's publisher connection came up")
        async let audio: Void = alice.play(
            [.file(folder + "/a.wav"), .file(folder + "/b.opus")], on: tracks[0])
        async let video: Void = alice.play([.file(folder + "/c.ivf")], on: tracks[1])
        _ = try await (audio, video)
        try await Task.sleep(for: .milliseconds(300))
        var pcm: [Int16] = []
        var pictures = 0
        for e in bobSees.all {
            if case .audio(let who, _, let frame) = e, who == a { pcm += frame.samples }
            if case .video(let who, _, _) = e, who == a { pictures += 1 }
        }
        // 48 kHz output: the WAV's second half of its 1.5 s, then the Opus file's.
        let first = Array(pcm.prefix(72_000).suffix(24_000)).map(\.normalized)
        let second = Array(pcm.suffix(30_000).prefix(24_000)).map(\.normalized)
        #expect(abs(SignalAnalysis.dominantFrequency(in: first, sampleRate: 48_000, range: 200...1200) - 500) <= 10)
        #expect(abs(SignalAnalysis.dominantFrequency(in: second, sampleRate: 48_000, range: 200...1200) - 800) <= 10)
        #expect(pictures >= 40, "bob decoded \(pictures) of 45 pictures from the IVF")
        for room in [alice, bob] { await room.leave() }
        await listener.value
    }
}
