import Codec
import Foundation
import MeetKitTestSupport
import Synchronization
import Testing
import Transport

@testable import RoomClient
@testable import RoomServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Joining by Visio link against meet-server's emulation of Visio's room API (built from
/// the field names in Visio's public source — an emulation, not Visio's backend): a direct
/// join, the lobby accepted, denied and timed out, a bad link.
@Suite("Visio links on meet-server's emulated room API", .serialized)
struct VisioRoomTests {
    func server() async throws -> RoomServer {
        try await startServer {
            $0.visioAPI = true
            $0.visioLobbyRooms = ["secret", "closed", "slow"]
        }
    }

    func site(_ server: RoomServer) -> String { server.url.replacingOccurrences(of: "ws://", with: "http://") }

    var options: RoomOptions {
        var options = RoomOptions()
        options.localAddresses = [IPAddress("127.0.0.1")!]
        return options
    }

    var quickLobby: VisioRoom.LobbyOptions {
        var lobby = VisioRoom.LobbyOptions()
        lobby.pollInterval = .milliseconds(100)
        lobby.timeout = .seconds(20)
        return lobby
    }

    /// JSON from the emulated API (as a moderator's client would call it).
    func api(_ method: String, _ url: String, body: [String: Any]? = nil) async throws -> [String: Any] {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let body { request.httpBody = try JSONSerialization.data(withJSONObject: body) }
        let (data, _) = try await URLSession.shared.data(for: request)
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// The lobby's first waiting participant of room `slug`, once there.
    func waitingParticipant(_ server: RoomServer, slug: String) async throws -> (room: String, participant: String) {
        let room = try #require(
            try await api("GET", site(server) + "/api/v1.0/rooms/\(slug)/?username=x")["id"] as? String)
        for _ in 0..<200 {
            let list = try await api("GET", site(server) + "/api/v1.0/rooms/\(room)/waiting-participants/")
            if let first = (list["participants"] as? [[String: Any]])?.first, let id = first["id"] as? String {
                #expect(first["username"] as? String == "Scribe")
                return (room, id)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw VisioError.lobbyTimeout
    }

    @Test func aPublicRoomIsJoinedDirectly() async throws {
        let server = try await server()
        defer { Task { await server.stop() } }
        let first = try await VisioRoom.join(link: site(server) + "/standup", displayName: "Scribe", options: options)
        let second = try await VisioRoom.join(link: site(server) + "/standup/", displayName: "Second", options: options)
        #expect(await eventually(.seconds(10)) { second.participants.contains { $0.name == "Scribe" } })
        #expect((second.signaling as? LiveKitRoomSignaling)?.roomName == "standup")
        // A guest's token may not change its attributes: the hand goes up and down through
        // the room API's toggle-hand, and the others see it.
        #expect((first.signaling as? LiveKitRoomSignaling)?.canUpdateOwnMetadata == false)
        await #expect(throws: LiveKitError.self) { try await first.updateLocalParticipant(attributes: ["x": "y"]) }
        try await first.setHandRaised(true)
        #expect(
            await eventually(.seconds(10)) {
                second.participants.first { $0.name == "Scribe" }?.handRaisedAt.map {
                    abs($0.timeIntervalSinceNow) < 30
                }
                    == true
            }, "\(second.participants)")
        try await first.setHandRaised(false)
        #expect(
            await eventually(.seconds(10)) {
                second.participants.first { $0.name == "Scribe" }.map { $0.handRaisedAt == nil } == true
            })
        await first.leave()
        await second.leave()
    }

    @Test func theLobbyAdmitsRefusesOrKeepsWaiting() async throws {
        let server = try await server()
        defer { Task { await server.stop() } }
        // Admitted by a moderator: the join goes on into the room named by the room's id.
        let joining = Task {
            try await VisioRoom.join(
                link: site(server) + "/secret", displayName: "Scribe", options: options, lobby: quickLobby)
        }
        let (roomID, participant) = try await waitingParticipant(server, slug: "secret")
        _ = try await api(
            "POST", site(server) + "/api/v1.0/rooms/\(roomID)/enter/",
            body: ["participant_id": participant, "allow_entry": true])
        let room = try await joining.value
        #expect((room.signaling as? LiveKitRoomSignaling)?.roomName == roomID)
        // The room API knows the room by its id: the hand goes up.
        try await room.setHandRaised(true)
        #expect(await eventually(.seconds(10)) { room.handRaisedAt != nil }, "its own hand is seen raised")
        await room.leave()

        // Refused.
        let refused = Task {
            try await VisioRoom.access(link: site(server) + "/closed", displayName: "Scribe", lobby: quickLobby)
        }
        let (closedID, waiting) = try await waitingParticipant(server, slug: "closed")
        _ = try await api(
            "POST", site(server) + "/api/v1.0/rooms/\(closedID)/enter/",
            body: ["participant_id": waiting, "allow_entry": false])
        await #expect(throws: VisioError.lobbyDenied) { try await refused.value }

        // Nobody answers.
        var short = quickLobby
        short.timeout = .milliseconds(800)
        await #expect(throws: VisioError.lobbyTimeout) {
            try await VisioRoom.access(link: self.site(server) + "/slow", displayName: "Scribe", lobby: short)
        }
    }

    /// Visio's client marks the legacy chat packet ignorable for servers newer than 1.8.2.
    @Test func legacyChatIsIgnorableAfterLiveKit182() {
        #expect(!VisioConventions.ignoresLegacy(serverVersion: nil))
        for version in ["1.8.1", "1.8.2", "0.15.0", "1.7.10"] {
            #expect(!VisioConventions.ignoresLegacy(serverVersion: version), "\(version)")
        }
        for version in ["1.8.3", "1.8.2.1", "1.9.4", "1.9.11", "2.0.0-rc1", "10.0"] {
            #expect(VisioConventions.ignoresLegacy(serverVersion: version), "\(version)")
        }
    }

    @Test func badLinksAndAbsentSitesAreTypedErrors() async throws {
        for link in ["not a link", "ftp://visio.example/abc", "https://visio.example/", "https://visio.example/a/b"] {
            #expect(throws: VisioError.invalidLink(link)) { try VisioRoom.Link(link) }
        }
        let link = try VisioRoom.Link("https://visio.numerique.gouv.fr/abc-defg-hij?x=1")
        #expect(link.site == "https://visio.numerique.gouv.fr" && link.slug == "abc-defg-hij")
        await #expect {
            try await VisioRoom.access(link: "http://127.0.0.1:9/room", displayName: "Scribe")
        } throws: { error in
            if case VisioError.unreachable = error { true } else { false }
        }
    }

    /// meet-bot by Visio link: one bot plays a tone into a lobby room once admitted, another
    /// records it; the recording holds the tone under the speaker's display name.
    @Test func meetBotJoinsByVisioLink() async throws {
        let server = try await server()
        defer { Task { await server.stop() } }
        let output = NSTemporaryDirectory() + "meet-bot-visio-\(UInt32.random(in: 0...UInt32.max))"
        func bot(_ arguments: [String]) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ExampleBinary.path("meet-bot"))
            process.arguments = arguments + ["--address", "127.0.0.1"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            return process
        }
        let speaker = try bot(["play", "--visio", site(server) + "/standup", "--name", "Orateur", "--tone", "440"])
        defer { if speaker.isRunning { speaker.terminate() } }
        try await Task.sleep(for: .milliseconds(500))
        let recorder = try bot([
            "record", "--visio", site(server) + "/standup", "--name", "Greffier", "--output", output, "--duration", "3",
        ])
        let deadline = ContinuousClock.now + .seconds(30)
        while recorder.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try #require(!recorder.isRunning, "meet-bot record did not end")
        #expect(recorder.terminationStatus == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: output)
        let wavName = try #require(files.first { $0.hasPrefix("Orateur-") && $0.hasSuffix(".wav") }, "\(files)")
        let wav = try WAVReader(path: output + "/" + wavName)
        let heard = SignalAnalysis.dominantFrequency(
            in: wav.samples.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
        #expect(abs(heard - 440) <= 10, "\(wavName) holds \(heard) Hz")
    }

    /// Visio's recording status lives in the room metadata: set through LiveKit's server
    /// API (as Visio's backend does), it reaches the room as metadata and as a recording
    /// status; participants carry Visio's badges (colour, role, signed in).
    @Test func recordingStatusAndBadgesFromTheServer() async throws {
        let server = try await server()
        defer { Task { await server.stop() } }
        let room = try await VisioRoom.join(link: site(server) + "/standup", displayName: "Scribe", options: options)
        let seen = Mutex<[RoomEvent]>([])
        let listener = Task {
            for await event in room.events {
                switch event {
                case .roomMetadataChanged, .recording: seen.withLock { $0.append(event) }
                default: break
                }
            }
        }
        let admin = try await server.token(
            room: "standup", identity: "backend", grant: VideoGrant(roomAdmin: true, room: "standup"))
        var request = URLRequest(url: URL(string: site(server) + "/twirp/livekit.RoomService/UpdateRoomMetadata")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(admin)", forHTTPHeaderField: "Authorization")
        let metadata = #"{"recording_mode":"transcript","recording_status":"started"}"#
        request.httpBody = try JSONSerialization.data(withJSONObject: ["room": "standup", "metadata": metadata])
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(await eventually(.seconds(10)) { seen.withLock { $0.count } >= 2 }, "\(seen.withLock { $0 })")
        let events = seen.withLock { $0 }
        #expect(events.contains(.roomMetadataChanged(metadata)) && room.metadata == metadata)
        let recording = events.compactMap { if case .recording(let r) = $0 { r } else { nil } }.first
        #expect(recording?.mode == "transcript" && recording?.status == "started" && recording?.isActive == true)
        // The emulated API gives guests Visio's attributes.
        let other = try await VisioRoom.join(link: site(server) + "/standup", displayName: "Second", options: options)
        #expect(await eventually(.seconds(10)) { other.participants.contains { $0.name == "Scribe" } })
        let scribe = try #require(other.participants.first { $0.name == "Scribe" })
        #expect(
            scribe.visioRole == "member" && scribe.isAuthenticated == false
                && scribe.visioColor?.hasPrefix("hsl(") == true)
        await other.leave()
        await room.leave()
        listener.cancel()
    }
}
