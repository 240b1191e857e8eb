import Codec
import Foundation
import MeetKitTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing
import Transport

@testable import RoomClient
@testable import RoomServer
@testable import Signaling

/// MeetKit's LiveKit client (`LiveKitRoomSignaling` under a `Room`) on meet-server: with
/// other MeetKit participants on loopback, and with LiveKit's official client in a network
/// namespace.
@Suite("MeetKit's LiveKit client on meet-server", .serialized)
struct LiveKitClientTests {
    /// One MeetKit participant: its room, its microphone track, and what it heard from whom.
    final class Participant: Sendable {
        let room: RoomClient.Room
        let signaling: LiveKitRoomSignaling
        let frequency: Double
        private let tally = Mutex(Tally())
        private let listener = Mutex<Task<Void, Never>?>(nil)

        struct Tally {
            /// The last second or more of each sender's audio at 16 kHz.
            var samples: [String: [Int16]] = [:]
            var heard: [String: Int] = [:]
            var joined: [String: String] = [:]  // id → name
            var left: Set<String> = []
            var subscribed: [String: Set<MediaKind>] = [:]
            var muted: [String: Bool] = [:]
            var unpublished: [String: Int] = [:]
            var disconnected: String?
            var data: [RoomData] = []
            var texts: [RoomText] = []
            var bytes: [RoomBytes] = []
            var chats: [ChatMessage] = []
            var reactions: [(String, Reaction)] = []
            var hands: [(String, Date?)] = []
            var connection: [String] = []  // "reconnecting", "reconnected"
            /// The size of the last keyframe received per sender/track.
            var pictureSize: [String: (Int, Int)] = [:]
            var videoTracks: [String: String] = [:]  // sender → video track id
            /// Pictures decoded per sender, the last one's size, and its luma gradients.
            var decoded: [String: Int] = [:]
            var decodedSize: [String: (Int, Int)] = [:]
            var gradients: [String: (horizontal: Double, vertical: Double)] = [:]
        }

        init(
            url: String, token: String, address: IPAddress, frequency: Double,
            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, mode: LiveKitSignalMode = .automatic,
            configure: (inout RoomOptions) -> Void = { _ in }
        ) async throws {
            var connect = LiveKitConnectOptions()
            connect.group = group
            connect.mode = mode
            signaling = LiveKitRoomSignaling(url: url, token: token, options: connect)
            var options = RoomOptions()
            options.localAddresses = [address]
            options.audioOutput = .decoded(audioSampleRate: 16_000)
            options.videoOutput = .encoded
            configure(&options)
            room = try await RoomClient.Room.join(
                signaling: signaling, room: "", displayName: "", options: options, group: group)
            self.frequency = frequency
            let task = Task { [room] in
                for await event in room.events {
                    self.tally.withLock { t in
                        switch event {
                        case .audio(let who, _, let pcm):
                            t.heard[who, default: 0] += pcm.samples.count
                            t.samples[who, default: []] += pcm.samples
                            if t.samples[who]!.count > 32_000 { t.samples[who]!.removeFirst(16_000) }
                        case .participantJoined(let p): t.joined[p.id] = p.name
                        case .participantLeft(let id, _): t.left.insert(id)
                        case .trackSubscribed(let who, let info):
                            t.subscribed[who, default: []].insert(info.kind)
                            if info.kind == .video { t.videoTracks[who] = info.id }
                        case .encoded(let who, _, let frame) where frame.codec == .vp8 && frame.isKeyframe:
                            if let header = try? VP8FrameHeader(frame.data), let w = header.width, let h = header.height
                            {
                                t.pictureSize[who] = (w, h)
                            }
                        case .video(let who, _, let picture):
                            t.decoded[who, default: 0] += 1
                            t.decodedSize[who] = (picture.width, picture.height)
                            t.gradients[who] = Self.lumaGradients(of: picture)
                        case .trackMuted(let who, _, let muted): t.muted[who] = muted
                        case .trackUnpublished(let who, _): t.unpublished[who, default: 0] += 1
                        case .disconnected(let reason): t.disconnected = reason
                        case .data(let data): t.data.append(data)
                        case .text(let text): t.texts.append(text)
                        case .bytes(let bytes): t.bytes.append(bytes)
                        case .chat(let chat): t.chats.append(chat)
                        case .reaction(_, let identity, let reaction): t.reactions.append((identity, reaction))
                        case .handRaised(let who, let at): t.hands.append((who, at))
                        case .reconnecting: t.connection.append("reconnecting")
                        case .reconnected: t.connection.append("reconnected")
                        default: break
                        }
                    }
                }
            }
            listener.withLock { $0 = task }
        }

        /// The median change of luma over 8 pixels to the right and 8 pixels down, sampled
        /// on a 16-pixel grid: the medians ignore where the sender's pattern wraps around.
        static func lumaGradients(of picture: VideoFrame) -> (horizontal: Double, vertical: Double) {
            var right: [Int] = [], down: [Int] = []
            for y in stride(from: 0, to: picture.height - 8, by: 16) {
                for x in stride(from: 0, to: picture.width - 8, by: 16) {
                    let here = Int(picture.luma(x: x, y: y))
                    right.append(Int(picture.luma(x: x + 8, y: y)) - here)
                    down.append(Int(picture.luma(x: x, y: y + 8)) - here)
                }
            }
            func median(_ values: [Int]) -> Double { values.isEmpty ? 0 : Double(values.sorted()[values.count / 2]) }
            return (median(right), median(down))
        }

        var id: String { room.localParticipantID }
        func snapshot() -> Tally { tally.withLock { $0 } }

        /// The dominant frequency of the last second heard from `sender` (0 if nothing).
        func frequencyHeard(from sender: String) -> Double {
            let samples = snapshot().samples[sender] ?? []
            guard samples.count >= 16_000 else { return 0 }
            return SignalAnalysis.dominantFrequency(
                in: samples.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
        }

        /// Publishes a microphone track and sends its tone, 20 ms per tick, for `seconds`.
        func speak(seconds: Double) async throws -> LocalTrack {
            let track = try await room.publish([(.audio, .microphone)])[0]
            var tone = ToneGenerator(frequency: frequency)
            let start = ContinuousClock.now
            for tick in 0..<Int(seconds * 50) {
                try await room.send(audio: tone.nextFrame(samplesPerChannel: 960), on: track)
                try await Task.sleep(until: start + .milliseconds(20 * (tick + 1)))
            }
            return track
        }

        /// Sends its tone on `track`, 20 ms per tick, until cancelled (at most a minute).
        func speakUntilCancelled(on track: LocalTrack) -> Task<Void, any Error> {
            Task { [room, frequency] in
                var tone = ToneGenerator(frequency: frequency)
                let start = ContinuousClock.now
                for tick in 0..<3000 where !Task.isCancelled {
                    try await room.send(audio: tone.nextFrame(samplesPerChannel: 960), on: track)
                    try? await Task.sleep(until: start + .milliseconds(20 * (tick + 1)))
                }
            }
        }

        func leave() async {
            await room.leave()
            await listener.withLock { $0 }?.value
        }
    }

    /// Two MeetKit participants on an in-process meet-server (loopback), with `/rtc/v1`
    /// (one connection each) and with `/rtc` (two): each hears the other's tone, gets its
    /// data, chat, reaction and raised hand, sees the other's mute, and sees it leave.
    @Test(arguments: [LiveKitSignalMode.singlePeerConnection, .twoPeerConnections])
    func twoMeetKitParticipantsHearEachOther(mode: LiveKitSignalMode) async throws {
        let server = try await startServer()
        defer { Task { await server.stop() } }
        let loopback = IPAddress("127.0.0.1")!
        let alice = try await Participant(
            url: server.url, token: try await server.token(room: "demo", identity: "alice", name: "Alice"),
            address: loopback, frequency: 440, mode: mode)
        let bob = try await Participant(
            url: server.url,
            token: try await server.token(
                room: "demo", identity: "bob",
                grant: VideoGrant(roomJoin: true, room: "demo", canUpdateOwnMetadata: true)),
            address: loopback, frequency: 660, mode: mode)
        #expect(alice.id.hasPrefix("PA_") && bob.id.hasPrefix("PA_") && alice.id != bob.id)
        let single = mode == .singlePeerConnection
        #expect(alice.signaling.singlePeerConnection == single && bob.signaling.singlePeerConnection == single)
        #expect(
            await eventually(.seconds(10)) { bob.snapshot().joined[alice.id] == "Alice" },
            "bob sees alice already there: \(bob.snapshot().joined)")
        #expect(await eventually(.seconds(10)) { alice.snapshot().joined[bob.id] == "bob" }, "alice sees bob join")

        async let a = alice.speak(seconds: 3)
        async let b = bob.speak(seconds: 3)
        let (aliceTrack, _) = try await (a, b)
        #expect(alice.snapshot().subscribed[bob.id] == [.audio] && bob.snapshot().subscribed[alice.id] == [.audio])
        #expect((alice.snapshot().heard[bob.id] ?? 0) >= 16_000 * 2, "alice heard \(alice.snapshot().heard)")
        #expect((bob.snapshot().heard[alice.id] ?? 0) >= 16_000 * 2, "bob heard \(bob.snapshot().heard)")
        #expect(
            abs(alice.frequencyHeard(from: bob.id) - 660) <= 10, "alice hears \(alice.frequencyHeard(from: bob.id)) Hz")
        #expect(
            abs(bob.frequencyHeard(from: alice.id) - 440) <= 10, "bob hears \(bob.frequencyHeard(from: alice.id)) Hz")
        // The server answers pings with a round-trip time.
        #expect(
            await eventually(.seconds(12)) { alice.signaling.roundTripTime != nil }, "no pong within a ping interval")

        // Data: a reliable user packet to bob alone, a lossy one to everyone, and a long
        // text stream (chunked at character boundaries) on the chat topic.
        try await alice.room.send(data: Array("for bob".utf8), topic: "notes", reliable: true, to: ["bob"])
        try await alice.room.send(data: Array("to all".utf8), topic: nil, reliable: false)
        let long = String(repeating: "Bonjour à tous, 👋 ", count: 2_500)
        let streamID = try await alice.room.send(text: long, topic: "lk.chat")
        #expect(await eventually(.seconds(10)) { bob.snapshot().data.count == 2 && bob.snapshot().texts.count == 1 })
        let got = bob.snapshot()
        #expect(
            got.data.contains(
                RoomData(
                    participantID: alice.id, identity: "alice", topic: "notes", payload: Array("for bob".utf8),
                    reliable: true)), "\(got.data)")
        #expect(got.data.contains { $0.payload == Array("to all".utf8) && !$0.reliable && $0.topic == nil })
        #expect(got.texts.first?.text == long && got.texts.first?.topic == "lk.chat" && got.texts.first?.id == streamID)
        #expect(got.texts.first?.identity == "alice")
        #expect(alice.snapshot().data.isEmpty && alice.snapshot().texts.isEmpty, "alice got her own data back")

        // Visio's conventions: a chat message (sent in both forms) is seen once; a reaction;
        // reactions beyond 10 a second refused; a raised hand seen by both, lowered again;
        // alice's token does not allow her to change her attributes.
        let sent = try await alice.room.sendChat("Bonjour, c'est Alice")
        try await alice.room.sendReaction(.partyPopper)
        #expect(
            await eventually(.seconds(10)) {
                bob.snapshot().chats.contains { $0.id == sent.id } && !bob.snapshot().reactions.isEmpty
            })
        try await Task.sleep(for: .milliseconds(500))  // the second form of the message has arrived too
        // (The long text stream sent above on `lk.chat` was a chat message too.)
        let chats = bob.snapshot().chats.filter { $0.id == sent.id }
        #expect(chats.count == 1, "the message in its two forms is seen once: \(chats)")
        #expect(
            chats.first.map { $0.id == sent.id && $0.identity == "alice" && $0.text == sent.text && !$0.isEdit }
                == true,
            "\(chats)")
        #expect(bob.snapshot().reactions.map(\.1) == [.partyPopper] && bob.snapshot().reactions.first?.0 == "alice")
        var refused = false
        for _ in 0..<10 {
            do { try await alice.room.sendReaction(.thumbsUp) } catch RoomError.rateLimited { refused = true }
        }
        #expect(refused, "an 11th reaction within a second was sent")
        // Alice edits it: Bob sees the edit once (it too comes in two forms).
        try await alice.room.editChat(sent, text: "Bonjour, c'est Alice (édité)")
        #expect(await eventually(.seconds(10)) { bob.snapshot().chats.contains { $0.isEdit } })
        try await Task.sleep(for: .milliseconds(500))
        let edits = bob.snapshot().chats.filter { $0.id == sent.id && $0.isEdit }
        #expect(edits.map(\.text) == ["Bonjour, c'est Alice (édité)"] && edits.first?.identity == "alice", "\(edits)")
        await #expect(throws: LiveKitError.self) { try await alice.room.setHandRaised(true) }
        try await bob.room.setHandRaised(true)
        #expect(
            await eventually(.seconds(10)) {
                alice.snapshot().hands.contains { $0.0 == bob.id && $0.1 != nil }
                    && bob.snapshot().hands.contains { $0.0 == bob.id && $0.1 != nil }
            }, "the raised hand: \(alice.snapshot().hands) \(bob.snapshot().hands)")
        let raisedAt = try #require(alice.snapshot().hands.last?.1)
        #expect(abs(raisedAt.timeIntervalSinceNow) < 30)
        try await bob.room.setHandRaised(false)
        #expect(
            await eventually(.seconds(10)) { alice.snapshot().hands.last.map { $0.0 == bob.id && $0.1 == nil } == true }
        )

        try await alice.room.setMuted(true, track: aliceTrack)
        #expect(await eventually(.seconds(10)) { bob.snapshot().muted[alice.id] == true }, "bob sees alice muted")
        await alice.leave()
        #expect(await eventually(.seconds(10)) { bob.snapshot().left.contains(alice.id) }, "bob sees alice leave")
        #expect(bob.snapshot().disconnected == nil)
        await bob.leave()
    }

    /// The Room as LiveKit's SDKs shape it: `Room.connect(url:token:)`, the local
    /// participant, remote participants with their publications (subscribed, muted,
    /// speaking), another consumer of the events, a track's frames as their own bounded
    /// sequence (a consumer that never reads loses the oldest, counted), the connection
    /// state.
    @Test func theRoomIsShapedLikeLiveKits() async throws {
        let server = try await startServer()
        defer { Task { await server.stop() } }
        let options = Self.loopbackOptions()
        let alice = try await RoomClient.Room.connect(
            url: server.url, token: try await server.token(room: "demo", identity: "alice", name: "Alice"),
            options: options)
        let bob = try await RoomClient.Room.connect(
            url: server.url, token: try await server.token(room: "demo", identity: "bob"), options: options)
        #expect(alice.connectionState == .connected)
        #expect(alice.localParticipant.identity == "alice" && alice.localParticipant.name == "Alice")
        #expect(alice.localParticipant.sid == alice.localParticipantID)
        let bobsEvents = bob.makeEvents()
        let seen = Mutex<[String]>([])
        let watcher = Task {
            for await event in bobsEvents {
                switch event {
                case .trackSubscribed: seen.withLock { $0.append("subscribed") }
                case .participantLeft: seen.withLock { $0.append("left") }
                default: break
                }
            }
            seen.withLock { $0.append("end") }
        }
        let track = try await alice.publish([(.audio, .microphone)])[0]
        #expect(alice.localParticipant.tracks == [track])
        #expect(
            await eventually(.seconds(10)) {
                bob.remoteParticipants.first?.tracks.first.map { $0.subscribed && $0.kind == .audio } == true
            }, "\(bob.remoteParticipants)")
        let remote = try #require(bob.remoteParticipants.first)
        #expect(remote.identity == "alice" && remote.name == "Alice" && remote.tracks.first?.source == .microphone)
        let trackID = try #require(remote.tracks.first?.sid)
        // One consumer reads the track's frames; another never reads and keeps 4 at most.
        let frames = bob.frames(participantID: remote.sid, trackID: trackID)
        let idle = bob.frames(participantID: remote.sid, trackID: trackID, buffer: 4)
        let reader = Task { () -> (Int, Double) in
            var samples: [Int16] = []
            for await frame in frames {
                if case .audio(let pcm) = frame { samples += pcm.samples }
                if samples.count >= 32_000 { break }
            }
            let heard = SignalAnalysis.dominantFrequency(
                in: samples.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
            return (samples.count, heard)
        }
        var tone = ToneGenerator(frequency: 440)
        let start = ContinuousClock.now
        for tick in 0..<200 {
            try await alice.send(audio: tone.nextFrame(samplesPerChannel: 960), on: track)
            try await Task.sleep(until: start + .milliseconds(20 * (tick + 1)))
        }
        let (count, heard) = await reader.value
        #expect(count >= 32_000 && abs(heard - 440) <= 10, "the track's own sequence: \(count) samples at \(heard) Hz")
        #expect(idle.dropped >= 100, "the idle consumer dropped \(idle.dropped) frames")
        #expect(
            await eventually(.seconds(5)) { bob.remoteParticipants.first?.isSpeaking == true },
            "the server's speakers update")
        // Loopback loses nothing: the server says so every 2 s.
        #expect(
            await eventually(.seconds(5)) {
                bob.remoteParticipants.first?.connectionQuality == .excellent
                    && alice.localParticipant.connectionQuality == .excellent
            }, "connection quality: \(String(describing: bob.remoteParticipants.first?.connectionQuality))")
        let chat = try await alice.sendChat("bonjour")
        #expect(chat.identity == "alice" && chat.participantID == alice.localParticipantID)
        try await alice.setMuted(true, track: track)
        #expect(await eventually(.seconds(10)) { bob.remoteParticipants.first?.tracks.first?.muted == true })
        await alice.leave()
        #expect(alice.connectionState == .disconnected)
        #expect(await eventually(.seconds(10)) { bob.remoteParticipants.isEmpty })
        await bob.leave()
        await watcher.value
        #expect(seen.withLock { $0 } == ["subscribed", "left", "end"], "the other consumer: \(seen.withLock { $0 })")
    }

    /// With an event handler, every event goes to it, one call at a time, in the room's
    /// order — participant, subscription, then the media —, and `events` ends at once.
    @Test func anEventHandlerTakesEveryEvent() async throws {
        let server = try await startServer()
        defer { Task { await server.stop() } }
        var options = Self.loopbackOptions()
        let alice = try await RoomClient.Room.connect(
            url: server.url, token: try await server.token(room: "demo", identity: "alice"), options: options)
        struct Seen {
            var order: [String] = []
            var samples: [Int16] = []
            var overlapping = 0
        }
        let seen = Mutex(Seen())
        let inside = Atomic(false)
        options.eventHandler = { event in
            if inside.exchange(true, ordering: .acquiring) { seen.withLock { $0.overlapping += 1 } }
            defer { inside.store(false, ordering: .releasing) }
            seen.withLock { s in
                switch event {
                case .participantJoined(let p): s.order.append("joined \(p.identity)")
                case .trackSubscribed: s.order.append("subscribed")
                case .audio(_, _, let pcm):
                    if s.order.last != "audio" { s.order.append("audio") }
                    s.samples += pcm.samples
                default: break
                }
            }
        }
        let bob = try await RoomClient.Room.connect(
            url: server.url, token: try await server.token(room: "demo", identity: "bob"), options: options)
        var streamed = 0
        for await _ in bob.events { streamed += 1 }
        #expect(streamed == 0, "the handler takes the events: the sequence ends at once")
        let track = try await alice.publish([(.audio, .microphone)])[0]
        var tone = ToneGenerator(frequency: 440)
        let start = ContinuousClock.now
        for tick in 0..<150 {
            try await alice.send(audio: tone.nextFrame(samplesPerChannel: 960), on: track)
            try await Task.sleep(until: start + .milliseconds(20 * (tick + 1)))
        }
        #expect(await eventually(.seconds(5)) { seen.withLock { $0.samples.count } >= 32_000 })
        await alice.leave()
        await bob.leave()
        let result = seen.withLock { $0 }
        #expect(result.order == ["joined alice", "subscribed", "audio"], "\(result.order)")
        #expect(result.overlapping == 0)
        let heard = SignalAnalysis.dominantFrequency(
            in: result.samples.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
        #expect(abs(heard - 440) <= 10, "\(heard) Hz")
    }

    /// A MeetKit room's options on loopback, hearing decoded 16 kHz audio.
    static func loopbackOptions() -> RoomOptions {
        var options = RoomOptions()
        options.localAddresses = [IPAddress("127.0.0.1")!]
        options.audioOutput = .decoded(audioSampleRate: 16_000)
        return options
    }

    /// Alice (440 Hz) and bob (660 Hz): MeetKit participants of room "demo" on `server`,
    /// over loopback.
    static func aliceAndBob(on server: RoomServer, mode: LiveKitSignalMode = .automatic) async throws -> (
        Participant, Participant
    ) {
        let loopback = IPAddress("127.0.0.1")!
        let alice = try await Participant(
            url: server.url, token: try await server.token(room: "demo", identity: "alice"), address: loopback,
            frequency: 440, mode: mode)
        let bob = try await Participant(
            url: server.url, token: try await server.token(room: "demo", identity: "bob"), address: loopback,
            frequency: 660, mode: mode)
        return (alice, bob)
    }

    /// A server without `/rtc/v1` (LiveKit before 1.9.10, Visio's): the default mode falls
    /// back to `/rtc` with two connections, and media flows.
    @Test func aServerWithoutRTCv1IsJoinedOnRTC() async throws {
        let server = try await startServer { $0.singlePeerConnection = false }
        defer { Task { await server.stop() } }
        let (alice, bob) = try await Self.aliceAndBob(on: server)
        #expect(!alice.signaling.singlePeerConnection && !bob.signaling.singlePeerConnection)
        _ = try await alice.speak(seconds: 2)
        #expect((bob.snapshot().heard[alice.id] ?? 0) >= 16_000, "bob heard \(bob.snapshot().heard)")
        // `/rtc/v1` alone is refused as the server has no such endpoint.
        await #expect(throws: LiveKitError.self) {
            _ = try await Participant(
                url: server.url, token: try await server.token(room: "demo", identity: "carol"),
                address: IPAddress("127.0.0.1")!, frequency: 440, mode: .singlePeerConnection)
        }
        await alice.leave()
        await bob.leave()
    }

    /// Refused joins throw LiveKitError with the server's reason, quickly, and disturb no one.
    @Test func refusedJoinsAreTypedErrors() async throws {
        let server = try await startServer { $0.maxParticipants = 1 }
        defer { Task { await server.stop() } }
        let loopback = IPAddress("127.0.0.1")!
        let forged = try await AccessTokenKeys(["devkey": "another secret, not the server's one"]).sign(
            AccessTokenClaims(identity: "mallory", grant: .join("demo")), key: "devkey")
        let expired = try await server.token(room: "demo", identity: "late", validFor: .seconds(-3600))
        let attempts: [(String, String, (LiveKitError) -> Bool)] = [
            ("forged", forged, { if case .unauthorized(let why) = $0 { why.contains("signature") } else { false } }),
            ("expired", expired, { if case .unauthorized = $0 { true } else { false } }),
            ("garbage", "not-a-token", { if case .unauthorized = $0 { true } else { false } }),
        ]
        for (name, token, expected) in attempts {
            let started = ContinuousClock.now
            do {
                _ = try await Participant(url: server.url, token: token, address: loopback, frequency: 440)
                Issue.record("the \(name) token was accepted")
            } catch let error as LiveKitError {
                #expect(expected(error), "the \(name) token: \(error)")
            }
            #expect(ContinuousClock.now - started < .seconds(5), "the \(name) token's refusal took long")
        }
        // The room is full with one participant (max_participants 1).
        let first = try await Participant(
            url: server.url, token: try await server.token(room: "demo", identity: "first"), address: loopback,
            frequency: 440)
        do {
            _ = try await Participant(
                url: server.url, token: try await server.token(room: "demo", identity: "second"), address: loopback,
                frequency: 440)
            Issue.record("a second participant joined a room of one")
        } catch let error as LiveKitError {
            guard case .roomFull = error else {
                Issue.record("a full room: \(error)")
                return
            }
        }
        // An unreachable server.
        do {
            _ = try await Participant(url: "ws://127.0.0.1:9", token: forged, address: loopback, frequency: 440)
            Issue.record("joined a server that is not there")
        } catch let error as LiveKitError {
            guard case .unreachable = error else {
                Issue.record("no server: \(error)")
                return
            }
        }
        #expect(first.snapshot().disconnected == nil, "the participant in the room was disturbed")
        await first.leave()
    }

    /// A MeetKit participant (on `/rtc/v1`, then on `/rtc`) and LiveKit's official client in
    /// one room: each hears the other's tone, data and chat go both ways, the official
    /// client reads Visio's chat, reaction and raised hand; it sees MeetKit's mute and leave.
    @Test(arguments: [LiveKitSignalMode.singlePeerConnection, .twoPeerConnections])
    func meetKitAndTheOfficialClientHearEachOther(mode: LiveKitSignalMode) async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let group = try await room.namespace.eventLoopGroup(threads: 2)
        let official = try await room.join(
            "olivia", mode: "v1", grant: VideoGrant(roomJoin: true, room: "demo", canUpdateOwnMetadata: true))
        try official.command(["cmd": "publish_audio", "hz": 550])
        _ = try await official.waitFor("published")
        try official.command(["cmd": "publish_video", "width": 320, "height": 240])
        _ = try await official.waitFor("published") { $0["kind"] as? String == "video" }
        let meetkit = try await Participant(
            url: room.url,
            token: try await room.token(
                "mika", grant: VideoGrant(roomJoin: true, room: "demo", canUpdateOwnMetadata: true)),
            address: IPAddress("10.99.0.1")!, frequency: 770, group: group, mode: mode
        ) { $0.videoOutput = .decoded() }
        #expect(meetkit.signaling.singlePeerConnection == (mode == .singlePeerConnection))
        _ = await eventually(.seconds(10)) { meetkit.snapshot().joined.values.contains("Olivia") }
        let olivia = try #require(
            meetkit.snapshot().joined.first { $0.value == "Olivia" }?.key, "\(meetkit.snapshot().joined)")
        let track = try await meetkit.speak(seconds: 3)
        let (audio, _) = try await official.stats()
        let fromMeetKit = audio["mika"] ?? [:]
        #expect((fromMeetKit["frames"] as? Int ?? 0) >= 100, "the official client decoded \(fromMeetKit)")
        #expect(abs((fromMeetKit["frequency"] as? Double ?? 0) - 770) <= 10, "the official client hears \(fromMeetKit)")
        #expect((meetkit.snapshot().heard[olivia] ?? 0) >= 16_000 * 2, "MeetKit heard \(meetkit.snapshot().heard)")
        #expect(
            abs(meetkit.frequencyHeard(from: olivia) - 550) <= 10,
            "MeetKit hears \(meetkit.frequencyHeard(from: olivia)) Hz")
        // The official client's picture, decoded by MeetKit: its size, and the gradients of
        // its pattern (red grows 1 per pixel to the right, green 1 per pixel down: about 2 and
        // 4 levels of luma over 8 pixels).
        #expect(
            await eventually(.seconds(10)) { (meetkit.snapshot().decoded[olivia] ?? 0) >= 30 },
            "MeetKit decoded \(meetkit.snapshot().decoded) pictures")
        let seen = meetkit.snapshot()
        #expect(seen.decodedSize[olivia].map { $0 == (320, 240) } == true, "\(String(describing: seen.decodedSize))")
        let gradients = try #require(seen.gradients[olivia])
        #expect((1...3.5).contains(gradients.horizontal) && (3...5.5).contains(gradients.vertical), "\(gradients)")

        // Data both ways: the official client's user packet and chat text stream reach
        // MeetKit with its identity; MeetKit's reach the official client's handlers.
        try official.command(["cmd": "data", "payload": "hello mika", "reliable": true, "topic": "t", "to": ["mika"]])
        try official.command(["cmd": "text", "text": "Bonjour de Python", "topic": "lk.chat"])
        #expect(
            await eventually(.seconds(10)) { !meetkit.snapshot().data.isEmpty && !meetkit.snapshot().texts.isEmpty },
            "MeetKit received \(meetkit.snapshot().data) \(meetkit.snapshot().texts)")
        let received = meetkit.snapshot()
        #expect(
            received.data.first.map { ($0.identity, $0.topic, $0.payload) == ("olivia", "t", Array("hello mika".utf8)) }
                == true, "\(received.data)")
        #expect(
            received.texts.first.map { ($0.identity, $0.topic, $0.text) == ("olivia", "lk.chat", "Bonjour de Python") }
                == true, "\(received.texts)")
        try await meetkit.room.send(data: Array("hello olivia".utf8), topic: "t", reliable: true, to: ["olivia"])
        let data = try await official.waitFor("data") { $0["identity"] as? String == "mika" }
        #expect(data["payload"] as? String == "hello olivia" && data["topic"] as? String == "t", "\(data)")
        try await meetkit.room.send(text: "Bonjour de Swift", topic: "lk.chat")
        let text = try await official.waitFor("text") { $0["identity"] as? String == "mika" }
        #expect(text["text"] as? String == "Bonjour de Swift" && text["topic"] as? String == "lk.chat", "\(text)")
        // Byte streams both ways (100 kB from the official client, 60 kB to it), byte-equal.
        try official.command(["cmd": "bytes", "size": 100_000, "name": "notes.bin", "topic": "files"])
        #expect(await eventually(.seconds(10)) { !meetkit.snapshot().bytes.isEmpty }, "no byte stream received")
        let file = try #require(meetkit.snapshot().bytes.first)
        #expect(file.identity == "olivia" && file.name == "notes.bin" && file.topic == "files")
        #expect(file.bytes == (0..<100_000).map { UInt8($0 % 251) }, "the byte stream's content")
        // Compressed (the official client advertises deflate-raw) to more than one chunk.
        let sent = LiveKitDataTests.letters(60_000, seed: 3)
        try await meetkit.room.send(bytes: sent, name: "from-swift.bin", topic: "files")
        let arrived = try await official.waitFor("bytes") { $0["identity"] as? String == "mika" }
        // The same position-sensitive sum as the script's.
        let checksum = sent.enumerated().reduce(UInt64(0)) { total, element in
            (total + UInt64(element.offset + 1) * UInt64(element.element)) % ((1 << 61) - 1)
        }
        #expect(
            arrived["name"] as? String == "from-swift.bin" && arrived["size"] as? Int == 60_000
                && (arrived["checksum"] as? NSNumber)?.uint64Value == checksum, "\(arrived)")
        // Compression: MeetKit compressed what it sent (the text inline, the bytes in chunks);
        // it advertises deflate-raw in /rtc/v1's JoinRequest (/rtc's query has no place for
        // it), and then the official client compressed its 100 kB to it.
        let streams = meetkit.signaling.dataStreams
        #expect(streams.sent == 2 && streams.sentCompressed == 1 && streams.sentInline == 1, "\(streams)")
        #expect(streams.received == 2 && streams.dropped == 0, "\(streams)")
        #expect(streams.receivedCompressed == (mode == .singlePeerConnection ? 1 : 0), "\(streams)")

        // Visio's conventions, read by the official client: the chat's text stream and its
        // legacy packet, a reaction packet, the raised hand's attribute.
        let chat = try await meetkit.room.sendChat("Salut Olivia")
        let chatText = try await official.waitFor("text") { $0["text"] as? String == "Salut Olivia" }
        #expect(chatText["identity"] as? String == "mika")
        let legacy = try await official.waitFor("data") { $0["topic"] as? String == "lk-chat-topic" }
        let legacyJSON = try JSONSerialization.jsonObject(with: Data((legacy["payload"] as? String ?? "").utf8))
        let legacyFields = try #require(legacyJSON as? [String: Any], "\(legacy)")
        #expect(legacyFields["id"] as? String == chat.id && legacyFields["message"] as? String == "Salut Olivia")
        #expect(
            legacyFields["ignoreLegacy"] as? Bool == true, "meet-server reports 1.9.11: newer clients read the stream")
        // An edit: the same stream id with the new text, which LiveKit's chat receivers
        // (Visio's components-js) apply to the message they have with that id.
        let edited = try await meetkit.room.editChat(chat, text: "Salut Olivia !")
        #expect(edited.id == chat.id && edited.isEdit)
        let editText = try await official.waitFor("text") { $0["text"] as? String == "Salut Olivia !" }
        #expect(editText["id"] as? String == chat.id && editText["identity"] as? String == "mika", "\(editText)")
        let legacyEdit = try await official.waitFor("data") {
            ($0["payload"] as? String ?? "").contains("Salut Olivia !")
        }
        let editFields = try JSONSerialization.jsonObject(with: Data((legacyEdit["payload"] as? String ?? "").utf8))
        #expect((editFields as? [String: Any])?["id"] as? String == chat.id, "\(legacyEdit)")
        #expect((editFields as? [String: Any])?["editTimestamp"] is NSNumber, "\(legacyEdit)")
        await #expect(throws: RoomError.notOwnMessage) {
            try await meetkit.room.editChat(
                ChatMessage(id: "x", participantID: nil, identity: "olivia", text: "no"), text: "mine now")
        }
        try await meetkit.room.sendReaction(.clappingHands)
        let reaction = try await official.waitFor("data") {
            ($0["payload"] as? String ?? "").contains("reactionReceived")
        }
        #expect(
            reaction["payload"] as? String == #"{"data":{"emoji":"clapping-hands"},"type":"reactionReceived"}"#
                || (reaction["payload"] as? String ?? "").contains(#""emoji":"clapping-hands""#), "\(reaction)")
        // Name and metadata changed by MeetKit, attributes by the official client: each side
        // sees the other's.
        try await meetkit.room.updateLocalParticipant(name: "Mika (bot)", metadata: #"{"role":"recorder"}"#)
        _ = try await official.waitFor("name") {
            $0["identity"] as? String == "mika" && $0["name"] as? String == "Mika (bot)"
        }
        _ = try await official.waitFor("metadata") {
            $0["identity"] as? String == "mika" && $0["metadata"] as? String == #"{"role":"recorder"}"#
        }
        try official.command(["cmd": "attributes", "attributes": ["lang": "fr"]])
        #expect(
            await eventually(.seconds(10)) {
                meetkit.room.remoteParticipants.first { $0.identity == "olivia" }?.attributes["lang"] == "fr"
            }, "\(meetkit.room.remoteParticipants.map(\.attributes))")
        try await meetkit.room.setHandRaised(true)
        let hand = try await official.waitFor("attributes") { $0["identity"] as? String == "mika" }
        let handAt = (hand["attributes"] as? [String: String])?["handRaisedAt"] ?? ""
        #expect(handAt.hasSuffix("Z") && handAt.contains("T"), "handRaisedAt: \(hand)")

        // The official client stops publishing (a renegotiation without the track): the
        // server unpublishes it, MeetKit sees it go.
        try official.command(["cmd": "unpublish", "kind": "audio"])
        _ = try await official.waitFor("unpublished")
        #expect(
            await eventually(.seconds(10)) { meetkit.snapshot().unpublished[olivia] == 1 },
            "MeetKit saw no unpublish: \(meetkit.snapshot().unpublished)")

        try await meetkit.room.setMuted(true, track: track)
        _ = try await official.waitFor("track_muted") { $0["identity"] as? String == "mika" }
        await meetkit.leave()
        _ = try await official.waitFor("participant_disconnected") { $0["identity"] as? String == "mika" }
    }

    /// An official client speaking a 550 Hz tone, and `meet-bot record` for `seconds` in
    /// the namespace: the client, the bot's process and its output folder (log beside it).
    static func recordingBot(in room: OfficialClientRoom, seconds: Int) async throws -> (
        OfficialClient, Process, String
    ) {
        let official = try await room.join("olivia", mode: "v1")
        try official.command(["cmd": "publish_audio", "hz": 550])
        _ = try await official.waitFor("published")
        let output = NSTemporaryDirectory() + "meet-bot-livekit-\(UInt32.random(in: 0...UInt32.max))"
        let process = try room.namespace.spawn(
            [
                ExampleBinary.path("meet-bot"), "record", "--livekit", room.url, "--token",
                try await room.token("recorder"), "--address", "10.99.0.1", "--output", output, "--duration",
                String(seconds),
            ], log: output + ".log")
        return (official, process, output)
    }

    /// meet-bot records an official-client speaker on LiveKit: its WAV holds the tone, for
    /// the time recorded; the timeline starts and stops.
    @Test func meetBotRecordsAnOfficialClientSpeaker() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let (official, process, output) = try await Self.recordingBot(in: room, seconds: 4)
        // Once the bot is in, a chat message and a reaction as Visio's client sends them.
        _ = try await official.waitFor("participant_connected") { $0["identity"] as? String == "recorder" }
        try official.command(["cmd": "text", "text": "Bonjour le bot", "topic": "lk.chat"])
        try official.command([
            "cmd": "data", "payload": #"{"type":"reactionReceived","data":{"emoji":"red-heart"}}"#, "reliable": true,
        ])
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try #require(!process.isRunning, "meet-bot did not end (log: \(output).log)")
        #expect(process.terminationStatus == 0, "meet-bot's exit status (log: \(output).log)")
        let files = try FileManager.default.contentsOfDirectory(atPath: output)
        let wavName = try #require(files.first { $0.hasPrefix("Olivia-") && $0.hasSuffix(".wav") }, "\(files)")
        let wav = try WAVReader(path: output + "/" + wavName)
        #expect(wav.sampleRate == 16_000 && abs(wav.duration.seconds - 4) <= 0.5, "\(wavName): \(wav.duration)")
        let heard = SignalAnalysis.dominantFrequency(
            in: wav.samples.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
        #expect(abs(heard - 550) <= 10, "\(wavName) holds \(heard) Hz")
        #expect(files.contains { $0.hasPrefix("Olivia-") && $0.hasSuffix(".opus") }, "an Ogg Opus: \(files)")
        let timeline = try String(contentsOfFile: output + "/timeline.jsonl", encoding: .utf8)
        #expect(timeline.contains(#""event":"started""#) && timeline.contains(#""event":"stopped""#), "\(timeline)")
        #expect(timeline.contains(#""room":"demo""#), "the timeline names the LiveKit room: \(timeline)")
        let lines = timeline.split(separator: "\n")
        #expect(
            lines.contains {
                $0.contains(#""event":"chat""#) && $0.contains("Bonjour le bot") && $0.contains("olivia")
            },
            "the chat in the timeline: \(timeline)")
        #expect(
            lines.contains { $0.contains(#""event":"reaction""#) && $0.contains("red-heart") },
            "the reaction in the timeline: \(timeline)")
    }

    /// meet-bot's one-shot commands, as an announcer uses them: a chat message, a reaction
    /// and a raised hand reach the official client the way Visio's client sends them.
    @Test func meetBotSaysOneThingAndLeaves() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let official = try await room.join("olivia", mode: "v1")
        let token = try await room.token(
            "announcer", grant: VideoGrant(roomJoin: true, room: "demo", canUpdateOwnMetadata: true))
        func bot(_ arguments: [String]) async throws {
            let log = NSTemporaryDirectory() + "meet-bot-say-\(UInt32.random(in: 0...UInt32.max)).log"
            let process = try room.namespace.spawn(
                [ExampleBinary.path("meet-bot")] + arguments + [
                    "--livekit", room.url, "--token", token, "--address", "10.99.0.1",
                ], log: log)
            let deadline = ContinuousClock.now + .seconds(30)
            while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            try #require(!process.isRunning, "meet-bot \(arguments[0]) did not end (log: \(log))")
            #expect(process.terminationStatus == 0, "meet-bot \(arguments[0])'s exit status (log: \(log))")
        }
        try await bot(["chat", "Annonce : la réunion reprend à 14 h"])
        let text = try await official.waitFor("text") { $0["identity"] as? String == "announcer" }
        #expect(
            text["text"] as? String == "Annonce : la réunion reprend à 14 h" && text["topic"] as? String == "lk.chat")
        try await bot(["react", "party-popper"])
        let reaction = try await official.waitFor("data") {
            $0["identity"] as? String == "announcer" && ($0["payload"] as? String ?? "").contains("reactionReceived")
        }
        #expect((reaction["payload"] as? String ?? "").contains(#""emoji":"party-popper""#), "\(reaction)")
        try await bot(["hand", "--stay", "0.5"])
        let hand = try await official.waitFor("attributes") { $0["identity"] as? String == "announcer" }
        let raisedAt = (hand["attributes"] as? [String: String])?["handRaisedAt"]
        #expect(raisedAt?.hasSuffix("Z") == true, "\(hand)")
    }

    /// The server dies under a recording bot: the bot notices, says why, finishes its
    /// files (valid, the speaker's tone in them) and exits with status 1.
    @Test func aRecordingSurvivesTheServerGoingAway() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let (official, process, output) = try await Self.recordingBot(in: room, seconds: 60)
        _ = try await official.waitFor("participant_connected") { $0["identity"] as? String == "recorder" }
        try await Task.sleep(for: .seconds(3))
        room.server.terminate()
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try #require(!process.isRunning, "meet-bot went on recording without a server (log: \(output).log)")
        #expect(process.terminationStatus == 1, "meet-bot's exit status (log: \(output).log)")
        let log = (try? String(contentsOfFile: output + ".log", encoding: .utf8)) ?? ""
        #expect(log.contains("the room ended: "), "the bot says why it stopped: \(log)")
        let files = try FileManager.default.contentsOfDirectory(atPath: output)
        let wavName = try #require(files.first { $0.hasPrefix("Olivia-") && $0.hasSuffix(".wav") }, "\(files)")
        let wav = try WAVReader(path: output + "/" + wavName)
        #expect(wav.duration.seconds >= 2 && wav.duration.seconds < 30, "\(wavName) lasts \(wav.duration.seconds) s")
        let heard = SignalAnalysis.dominantFrequency(
            in: wav.samples.prefix(32_000).suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
        #expect(abs(heard - 550) <= 10, "\(wavName) holds \(heard) Hz")
        let timeline = try String(contentsOfFile: output + "/timeline.jsonl", encoding: .utf8)
        #expect(
            timeline.contains(#""event":"disconnected""#) && timeline.contains(#""event":"stopped""#), "\(timeline)")
    }

    /// The server drops a MeetKit participant's WebSocket (LiveKit's node-failure
    /// scenario): it resumes — reconnecting, then reconnected —, its media never stops, the
    /// others see no leave, and signalling (mute) and data work afterwards.
    @Test func aDroppedSignalConnectionResumes() async throws {
        let server = try await startServer()
        defer { Task { await server.stop() } }
        let (alice, bob) = try await Self.aliceAndBob(on: server)
        let speaking = Task { try await alice.speak(seconds: 6) }
        #expect(await eventually(.seconds(10)) { (bob.snapshot().heard[alice.id] ?? 0) > 16_000 })
        try await alice.signaling.simulateSignalFailure()
        #expect(
            await eventually(.seconds(10)) { alice.snapshot().connection == ["reconnecting", "reconnected"] },
            "alice's connection: \(alice.snapshot().connection)")
        let heardAtResume = bob.snapshot().heard[alice.id] ?? 0
        let track = try await speaking.value
        #expect(
            (bob.snapshot().heard[alice.id] ?? 0) - heardAtResume >= 16_000,
            "bob heard \((bob.snapshot().heard[alice.id] ?? 0) - heardAtResume) samples of alice after the resume")
        #expect(abs(bob.frequencyHeard(from: alice.id) - 440) <= 10)
        #expect(!bob.snapshot().left.contains(alice.id), "bob saw alice leave")
        try await alice.room.setMuted(true, track: track)
        let message = try await alice.room.sendChat("toujours là")
        #expect(
            await eventually(.seconds(10)) {
                bob.snapshot().muted[alice.id] == true && bob.snapshot().chats.contains { $0.id == message.id }
            }, "mute and chat after the resume")
        #expect(alice.snapshot().disconnected == nil && bob.snapshot().disconnected == nil)
        await alice.leave()
        await bob.leave()
    }

    /// The server restarts (same address, none of the old sessions): the resume finds no
    /// session and the server starts a new one — both participants rejoin with new ids,
    /// publish again on new connections (alice's LocalTrack goes on being fed) and
    /// subscribe again; bob hears alice's tone after, and keeps its recording's events
    /// going. With `/rtc/v1` and `/rtc`.
    @Test(arguments: [LiveKitSignalMode.singlePeerConnection, .twoPeerConnections])
    func aRestartedServerIsRejoined(mode: LiveKitSignalMode) async throws {
        var server = try await startServer()
        let port = try #require(URL(string: server.url)?.port)
        let (alice, bob) = try await Self.aliceAndBob(on: server, mode: mode)
        let firstID = alice.id
        let track = try await alice.room.publish([(.audio, .microphone)])[0]
        // Alice speaks until told to stop (whatever the reconnection takes).
        let speaking = alice.speakUntilCancelled(on: track)
        #expect(await eventually(.seconds(10)) { (bob.snapshot().heard[firstID] ?? 0) > 16_000 })
        await server.stop()
        server = try await startServer { $0.port = port }
        defer { Task { [server] in await server.stop() } }
        #expect(
            await eventually(.seconds(15)) {
                alice.snapshot().connection == ["reconnecting", "reconnected"]
                    && bob.snapshot().connection == ["reconnecting", "reconnected"]
            }, "alice: \(alice.snapshot().connection), bob: \(bob.snapshot().connection)")
        let secondID = alice.id
        #expect(secondID != firstID && secondID.hasPrefix("PA_"), "alice's new id")
        #expect(alice.signaling.singlePeerConnection == (mode == .singlePeerConnection))
        #expect(
            await eventually(.seconds(10)) { (bob.snapshot().heard[secondID] ?? 0) >= 16_000 },
            "bob heard \(bob.snapshot().heard) after the restart; joined \(bob.snapshot().joined), subscribed \(bob.snapshot().subscribed), left \(bob.snapshot().left); remote \(bob.room.remoteParticipants)"
        )
        #expect(abs(bob.frequencyHeard(from: secondID) - 440) <= 10)
        #expect(bob.snapshot().left.contains(firstID), "alice's old session is gone for bob")
        speaking.cancel()
        try await speaking.value
        #expect(alice.snapshot().disconnected == nil && bob.snapshot().disconnected == nil)
        await alice.leave()
        await bob.leave()
    }

    /// Alice's network drops everything for 4 s (the server ignores her datagrams): her
    /// connection's consent expires (2 s here), the room restarts ICE with a new offer —
    /// reconnecting, then reconnected — and bob hears her again; nobody sees a leave. Then
    /// bob's (on `/rtc`): his subscriber connection fails and the server restarts its ICE.
    @Test func aMediaOutageIsRecoveredByAnICERestart() async throws {
        let server = try await startServer()
        defer { Task { await server.stop() } }
        let loopback = IPAddress("127.0.0.1")!
        let shortConsent: (inout RoomOptions) -> Void = { options in
            options.peerConnection.ice.consentInterval = .milliseconds(500)
            options.peerConnection.ice.consentTimeout = .seconds(2)
        }
        let alice = try await Participant(
            url: server.url, token: try await server.token(room: "demo", identity: "alice"), address: loopback,
            frequency: 440, configure: shortConsent)
        let bob = try await Participant(
            url: server.url, token: try await server.token(room: "demo", identity: "bob"), address: loopback,
            frequency: 660, mode: .twoPeerConnections, configure: shortConsent)
        let track = try await alice.room.publish([(.audio, .microphone)])[0]
        let speaking = alice.speakUntilCancelled(on: track)
        #expect(await eventually(.seconds(10)) { (bob.snapshot().heard[alice.id] ?? 0) > 16_000 })
        await server.simulateMediaOutage(identity: "alice", room: "demo", for: .seconds(4))
        #expect(
            await eventually(.seconds(20)) { alice.snapshot().connection == ["reconnecting", "reconnected"] },
            "alice: \(alice.snapshot().connection)")
        let heardAfter = bob.snapshot().heard[alice.id] ?? 0
        #expect(
            await eventually(.seconds(10)) { (bob.snapshot().heard[alice.id] ?? 0) - heardAfter >= 16_000 },
            "bob heard \((bob.snapshot().heard[alice.id] ?? 0) - heardAfter) samples after the restart")
        #expect(abs(bob.frequencyHeard(from: alice.id) - 440) <= 10)
        #expect(bob.snapshot().left.isEmpty && alice.room.connectionState == .connected)

        // Bob, on `/rtc`, loses his network: his subscriber connection (the server offers
        // it) fails; his resume asks the server for an ICE restart, repeated while the
        // network is down; he hears alice again, as the same participant (alice sees no leave);
        // his room reports reconnecting once, though three parts fail (signal resumed too).
        let firstBob = bob.id
        let heardBefore = bob.snapshot().heard[alice.id] ?? 0
        await server.simulateMediaOutage(identity: "bob", room: "demo", for: .seconds(4))
        #expect(
            await eventually(.seconds(30)) {
                (bob.snapshot().heard[alice.id] ?? 0) - heardBefore >= 16_000 * 6
                    && bob.snapshot().connection == ["reconnecting", "reconnected"]
                    && bob.room.state.withLock { $0.subscriberState } == .connected
            },
            "bob heard \((bob.snapshot().heard[alice.id] ?? 0) - heardBefore) samples; \(bob.snapshot().connection)")
        #expect(bob.id == firstBob && alice.snapshot().left.isEmpty, "bob was not replaced")
        #expect(bob.snapshot().disconnected == nil && bob.room.connectionState == .connected)
        #expect(abs(bob.frequencyHeard(from: alice.id) - 440) <= 10)
        speaking.cancel()
        try await speaking.value
        await alice.leave()
        await bob.leave()
    }

    /// The official client publishes a 1280x720 camera in three simulcast layers; a MeetKit
    /// subscriber gets the quality it asks for (UpdateTrackSettings): the full picture, the
    /// low layer's, then the full one again — by quality and by displayed size; with
    /// `/rtc/v1` and with `/rtc`.
    @Test(arguments: [LiveKitSignalMode.singlePeerConnection, .twoPeerConnections])
    func meetKitGetsTheSimulcastLayerItAsksFor(mode: LiveKitSignalMode) async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let group = try await room.namespace.eventLoopGroup(threads: 2)
        let official = try await room.join("olivia", mode: "v1")
        try official.command(["cmd": "publish_video", "width": 1280, "height": 720, "simulcast": true])
        _ = try await official.waitFor("published")
        let meetkit = try await Participant(
            url: room.url, token: try await room.token("mika"), address: IPAddress("10.99.0.1")!, frequency: 770,
            group: group, mode: mode)
        _ = await eventually(.seconds(10)) { meetkit.snapshot().videoTracks.count == 1 }
        let (olivia, track) = try #require(meetkit.snapshot().videoTracks.first, "no video subscribed")
        func size(_ wanted: (Int, Int)) async -> (Int, Int)? {
            _ = await eventually(.seconds(20)) { meetkit.snapshot().pictureSize[olivia].map { $0 == wanted } ?? false }
            return meetkit.snapshot().pictureSize[olivia]
        }
        let high = await size((1280, 720))
        #expect(high.map { $0 == (1280, 720) } == true, "first \(String(describing: high))")
        try await meetkit.room.setVideoQuality(.low, participantID: olivia, trackID: track)
        let low = await size((320, 180))
        #expect(low.map { $0 == (320, 180) } == true, "after asking for low: \(String(describing: low))")
        try await meetkit.room.setVideoQuality(.high, width: 1280, height: 720, participantID: olivia, trackID: track)
        let again = await size((1280, 720))
        #expect(again.map { $0 == (1280, 720) } == true, "after asking for 1280x720: \(String(describing: again))")
        await meetkit.leave()
    }

    /// MeetKit publishes a camera and a screen share (two video tracks): the official client
    /// receives both, with their sources, and decodes their pictures at their sizes.
    @Test func theOfficialClientSeesMeetKitsCameraAndScreen() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let group = try await room.namespace.eventLoopGroup(threads: 2)
        let official = try await room.join("olivia", mode: "v1")
        let meetkit = try await Participant(
            url: room.url, token: try await room.token("mika"), address: IPAddress("10.99.0.1")!, frequency: 770,
            group: group)
        let tracks = try await meetkit.room.publish([(.video, .camera), (.video, .screen)])
        var camera = TestPatternGenerator(width: 320, height: 240, frameRate: 15)
        var screen = TestPatternGenerator(width: 640, height: 360, frameRate: 15)
        let start = ContinuousClock.now
        for tick in 0..<45 {
            try await meetkit.room.send(video: camera.nextFrame(), on: tracks[0])
            try await meetkit.room.send(video: screen.nextFrame(), on: tracks[1])
            try await Task.sleep(until: start + .milliseconds(66 * (tick + 1)))
        }
        let cameraTrack = try await official.waitFor("track_subscribed") {
            $0["identity"] as? String == "mika" && $0["source"] as? Int == 1
        }
        let screenTrack = try await official.waitFor("track_subscribed") {
            $0["identity"] as? String == "mika" && $0["source"] as? Int == 3
        }
        let (_, video) = try await official.stats()
        let cameraStats = video["mika/\(cameraTrack["sid"] as? String ?? "")"] ?? [:]
        let screenStats = video["mika/\(screenTrack["sid"] as? String ?? "")"] ?? [:]
        #expect((cameraStats["frames"] as? Int ?? 0) >= 15, "camera: \(cameraStats)")
        #expect((screenStats["frames"] as? Int ?? 0) >= 15, "screen: \(screenStats)")
        #expect(cameraStats["width"] as? Int == 320 && cameraStats["height"] as? Int == 240, "camera: \(cameraStats)")
        #expect(screenStats["width"] as? Int == 640 && screenStats["height"] as? Int == 360, "screen: \(screenStats)")
        // Unpublishing renegotiates the publisher connection (its data channels stay): both
        // tracks go, and chat still works.
        try await meetkit.room.unpublishAll()
        for sid in [cameraTrack["sid"], screenTrack["sid"]].compactMap({ $0 as? String }) {
            _ = try await official.waitFor("track_unpublished") { $0["sid"] as? String == sid }
        }
        try await meetkit.room.sendChat("encore là")
        let text = try await official.waitFor("text") { $0["identity"] as? String == "mika" }
        #expect(text["text"] as? String == "encore là")
        await meetkit.leave()
    }
}
