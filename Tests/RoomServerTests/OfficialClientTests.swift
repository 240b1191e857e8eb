import Foundation
import MeetKitTestSupport
import Testing

@testable import RoomServer

/// meet-server proven with LiveKit's official client (PyPI `livekit` 1.2.1: the Rust SDK
/// and libwebrtc), in `/rtc/v1` mode (one PeerConnection) and, with v1 off at the server,
/// in `/rtc` mode (two): three participants publish a tone and a picture each and receive
/// the others', decoded; data, text streams, attributes, mute and leaves go around.
@Suite("meet-server with LiveKit's official client", .serialized)
struct OfficialClientTests {
    static let tones = ["alice": 440.0, "bob": 660.0, "carol": 880.0]

    @Test(arguments: ["v1", "v0"])
    func threeParticipantsHearSeeAndMessageEachOther(mode: String) async throws {
        try #require(InteropPeers.isInstalled, "run Scripts/bootstrap first")
        let room = try await OfficialClientRoom(mode: mode)
        defer { room.close() }
        var grant = VideoGrant.join("demo")
        grant.canUpdateOwnMetadata = true
        var clients: [String: OfficialClient] = [:]
        for name in ["alice", "bob", "carol"] {
            let client = try await room.join(name, mode: mode, grant: grant)
            try client.command(["cmd": "publish_audio", "hz": Self.tones[name]!])
            try client.command(["cmd": "publish_video", "width": 320, "height": 240])
            clients[name] = client
        }
        // Everyone receives the two others' audio and video.
        for (name, client) in clients {
            for other in clients.keys where other != name {
                _ = try await client.waitFor("track_subscribed", timeout: .seconds(30)) {
                    $0["identity"] as? String == other && $0["kind"] as? Int == 1
                }
                _ = try await client.waitFor("track_subscribed", timeout: .seconds(30)) {
                    $0["identity"] as? String == other && $0["kind"] as? Int == 2
                }
            }
        }
        try await Task.sleep(for: .seconds(4))
        for (name, client) in clients {
            let stats = try await client.stats()
            for other in clients.keys where other != name {
                let audio = try #require(stats.audio[other], "\(name) got no audio from \(other)")
                #expect((audio["frames"] as? Int ?? 0) > 100, "\(name) ← \(other): \(audio)")
                let frequency = audio["frequency"] as? Double ?? 0
                #expect(abs(frequency - Self.tones[other]!) < 10, "\(name) hears \(other) at \(frequency) Hz")
                let video = stats.video.filter { $0.key.hasPrefix(other + "/") }.values.first
                #expect((video?["frames"] as? Int ?? 0) > 15, "\(name) ← \(other) video: \(String(describing: video))")
                #expect(video?["width"] as? Int == 320 && video?["height"] as? Int == 240)
            }
        }

        let alice = clients["alice"]!, bob = clients["bob"]!, carol = clients["carol"]!
        // Reliable data to everyone, with a topic; the sender's identity stamped by the server.
        try alice.command(["cmd": "data", "payload": "hello all", "reliable": true, "topic": "greet"])
        for c in [bob, carol] {
            _ = try await c.waitFor("data") {
                $0["payload"] as? String == "hello all" && $0["identity"] as? String == "alice"
                    && $0["topic"] as? String == "greet"
            }
        }
        // Lossy data to Carol alone: Bob never gets it (a reliable packet after it is the marker).
        try alice.command(["cmd": "data", "payload": "for carol", "reliable": false, "to": ["carol"]])
        _ = try await carol.waitFor("data") { $0["payload"] as? String == "for carol" }
        try alice.command(["cmd": "data", "payload": "marker", "reliable": true])
        _ = try await bob.waitFor("data") { $0["payload"] as? String == "marker" }
        #expect(!bob.hasSeen("data") { $0["payload"] as? String == "for carol" })
        // A chat text stream on lk.chat.
        try bob.command(["cmd": "text", "text": "bonjour à tous", "topic": "lk.chat"])
        for c in [alice, carol] {
            _ = try await c.waitFor("text") {
                $0["text"] as? String == "bonjour à tous" && $0["identity"] as? String == "bob"
            }
        }
        // Attributes (a raised hand, as Visio sets it).
        try carol.command(["cmd": "attributes", "attributes": ["handRaisedAt": "2026-12-02T10:00:00.000Z"]])
        for c in [alice, bob] {
            _ = try await c.waitFor("attributes") {
                $0["identity"] as? String == "carol"
                    && ($0["attributes"] as? [String: String])?["handRaisedAt"] == "2026-12-02T10:00:00.000Z"
            }
        }
        // The active speakers are reported (everyone sends a tone).
        _ = try await bob.waitFor("active_speakers") { ($0["identities"] as? [String])?.contains("alice") == true }
        // Mute and unmute.
        try alice.command(["cmd": "mute", "kind": "audio", "muted": true])
        _ = try await bob.waitFor("track_muted") { $0["identity"] as? String == "alice" }
        try alice.command(["cmd": "mute", "kind": "audio", "muted": false])
        _ = try await bob.waitFor("track_unmuted") { $0["identity"] as? String == "alice" }
        // A leave is seen by the others.
        try carol.command(["cmd": "leave"])
        for c in [alice, bob] {
            _ = try await c.waitFor("participant_disconnected") { $0["identity"] as? String == "carol" }
        }
    }
}

/// A participant whose WebSocket the server kills (LiveKit's "node failure" scenario)
/// resumes its session: same participant, media flowing on, nobody told it left.
@Suite("meet-server resumes official clients", .serialized)
struct ResumeTests {
    @Test(arguments: ["v1", "v0"])
    func aWebSocketKilledAtTheServerResumesAndMediaContinues(mode: String) async throws {
        try #require(InteropPeers.isInstalled, "run Scripts/bootstrap first")
        let room = try await OfficialClientRoom(mode: mode)
        defer { room.close() }
        let alice = try await room.join("alice", mode: mode)
        try alice.command(["cmd": "publish_audio", "hz": 440])
        let bob = try await room.join("bob", mode: mode)
        try bob.command(["cmd": "publish_audio", "hz": 660])
        _ = try await alice.waitFor("track_subscribed") { $0["identity"] as? String == "bob" }
        _ = try await bob.waitFor("track_subscribed") { $0["identity"] as? String == "alice" }
        try await Task.sleep(for: .seconds(1))
        let before = try await alice.stats().audio["bob"]?["frames"] as? Int ?? 0

        try bob.command(["cmd": "simulate", "scenario": "node_failure"])
        _ = try await bob.waitFor("reconnecting", timeout: .seconds(30))
        _ = try await bob.waitFor("reconnected", timeout: .seconds(30))
        try await Task.sleep(for: .seconds(2))
        // Media both ways after the resume; data too.
        let aliceHears = try await alice.stats().audio["bob"]
        #expect(
            (aliceHears?["frames"] as? Int ?? 0) > before + 100, "\(String(describing: aliceHears)) after \(before)")
        #expect(abs((aliceHears?["frequency"] as? Double ?? 0) - 660) < 10)
        let bobHears = try await bob.stats().audio["alice"]
        #expect(abs((bobHears?["frequency"] as? Double ?? 0) - 440) < 10, "\(String(describing: bobHears))")
        try bob.command(["cmd": "data", "payload": "back", "reliable": true])
        _ = try await alice.waitFor("data") { $0["payload"] as? String == "back" && $0["identity"] as? String == "bob" }
        #expect(!alice.hasSeen("participant_disconnected"))
    }
}

/// Subscriptions changed by the subscriber (UpdateSubscription), over `/rtc`.
@Suite("meet-server subscriptions", .serialized)
struct SubscriptionTests {
    @Test func aSubscriberDropsAndTakesBackATrack() async throws {
        try #require(InteropPeers.isInstalled, "run Scripts/bootstrap first")
        let room = try await OfficialClientRoom(mode: "v0")
        defer { room.close() }
        let alice = try await room.join("alice", mode: "v0")
        try alice.command(["cmd": "publish_audio", "hz": 440])
        let bob = try await room.join("bob", mode: "v0")
        _ = try await bob.waitFor("track_subscribed") { $0["identity"] as? String == "alice" }
        try bob.command(["cmd": "subscribe", "identity": "alice", "subscribed": false])
        _ = try await bob.waitFor("track_unsubscribed") { $0["identity"] as? String == "alice" }
        try bob.command(["cmd": "subscribe", "identity": "alice", "subscribed": true])
        _ = try await bob.waitFor("track_subscribed") { $0["identity"] as? String == "alice" }
        try await Task.sleep(for: .seconds(2))
        let heard = try await bob.stats().audio["alice"]
        #expect(abs((heard?["frequency"] as? Double ?? 0) - 440) < 10, "\(String(describing: heard))")
    }
}

/// Simulcast: the official client publishes a 1280x720 camera in three layers (q, h, f);
/// the subscriber gets the high one, a smaller picture once it asks for the low quality
/// (UpdateTrackSettings), and the full one again on high — each switch at a keyframe of
/// the new layer.
@Suite("meet-server simulcast", .serialized)
struct SimulcastTests {
    @Test func theSubscriberGetsTheLayerItAsksFor() async throws {
        try #require(InteropPeers.isInstalled, "run Scripts/bootstrap first")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let alice = try await room.join("alice", mode: "v1")
        try alice.command(["cmd": "publish_video", "width": 1280, "height": 720, "simulcast": true])
        let bob = try await room.join("bob", mode: "v1")
        _ = try await bob.waitFor("track_subscribed") { $0["identity"] as? String == "alice" }

        func size(after: Duration) async throws -> (Int, Int) {
            try await Task.sleep(for: after)
            let video = try await bob.stats().video.first { $0.key.hasPrefix("alice/") }?.value
            return (video?["width"] as? Int ?? 0, video?["height"] as? Int ?? 0)
        }
        let high = try await size(after: .seconds(3))
        #expect(high == (1280, 720), "first \(high)")
        try bob.command(["cmd": "quality", "identity": "alice", "quality": "low"])
        let low = try await size(after: .seconds(3))
        #expect(low.0 > 0 && low.0 < 1280 && low.1 < 720, "low \(low)")
        try bob.command(["cmd": "quality", "identity": "alice", "quality": "high"])
        let again = try await size(after: .seconds(3))
        #expect(again == (1280, 720), "high again \(again)")
    }
}

/// LiveKit's server API (`livekit-api` 1.2.2's RoomService, over Twirp) against meet-server
/// with official clients in the room, and refused tokens.
@Suite("meet-server's RoomService with livekit-api", .serialized)
struct RoomServiceTests {
    @Test func roomServiceCallsAffectTheRoom() async throws {
        try #require(InteropPeers.isInstalled, "run Scripts/bootstrap first")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let alice = try await room.join("alice", mode: "v1")
        try alice.command(["cmd": "publish_audio", "hz": 440])
        let published = try await alice.waitFor("published")
        let trackSid = try #require(published["sid"] as? String)
        let bob = try await room.join("bob", mode: "v1")
        _ = try await bob.waitFor("track_subscribed") { $0["identity"] as? String == "alice" }

        // A token signed with another secret is refused, as Twirp refuses.
        let refused = try room.roomService("list_rooms", secret: "not-the-secret")
        #expect(refused["error"] as? String == "unauthenticated", "\(refused)")

        let rooms = try room.roomService("list_rooms")
        let listed = (rooms["rooms"] as? [[String: Any]]) ?? []
        #expect(listed.contains { $0["name"] as? String == "demo" && $0["numParticipants"] as? Int == 2 }, "\(rooms)")

        let participants = try room.roomService("list_participants", ["room": "demo"])
        let infos = (participants["participants"] as? [[String: Any]]) ?? []
        #expect(Set(infos.compactMap { $0["identity"] as? String }) == ["alice", "bob"])
        #expect(
            infos.first { $0["identity"] as? String == "alice" }.flatMap { ($0["tracks"] as? [Any])?.count } == 1)

        let muted = try room.roomService(
            "mute_published_track", ["room": "demo", "identity": "alice", "track_sid": trackSid, "muted": true])
        #expect((muted["track"] as? [String: Any])?["muted"] as? Bool == true, "\(muted)")
        _ = try await bob.waitFor("track_muted") { $0["identity"] as? String == "alice" }

        _ = try room.roomService(
            "send_data", ["room": "demo", "payload": "from the backend", "topic": "srv", "to": ["bob"]])
        _ = try await bob.waitFor("data") {
            $0["payload"] as? String == "from the backend" && $0["topic"] as? String == "srv"
        }

        _ = try room.roomService(
            "update_room_metadata", ["room": "demo", "metadata": #"{"recording_status":"started"}"#])
        for c in [alice, bob] {
            _ = try await c.waitFor("room_metadata") { $0["metadata"] as? String == #"{"recording_status":"started"}"# }
        }
        _ = try room.roomService(
            "update_participant", ["room": "demo", "identity": "bob", "attributes": ["role": "owner"]])
        _ = try await alice.waitFor("attributes") {
            $0["identity"] as? String == "bob" && ($0["attributes"] as? [String: String])?["role"] == "owner"
        }
        #expect(!alice.hasSeen("data") { $0["payload"] as? String == "from the backend" })

        let missing = try room.roomService("remove_participant", ["room": "demo", "identity": "nobody"])
        #expect(missing["error"] as? String == "not_found")
        _ = try room.roomService("remove_participant", ["room": "demo", "identity": "bob"])
        _ = try await bob.waitFor("disconnected")
        _ = try await alice.waitFor("participant_disconnected") { $0["identity"] as? String == "bob" }
    }

    @Test func theOfficialClientIsToldWhyItsTokenIsRefused() async throws {
        try #require(InteropPeers.isInstalled, "run Scripts/bootstrap first")
        let room = try await OfficialClientRoom(mode: "v1")
        defer { room.close() }
        let alice = try await room.join("alice", mode: "v1")
        let forged = try await AccessTokenKeys(["devkey": "forged"]).sign(
            AccessTokenClaims(identity: "mallory", grant: .join("demo")), key: "devkey")
        let mallory = try room.start("mallory", token: forged, mode: "v1")
        let refusal = try await mallory.waitForError()
        #expect(refusal.contains("invalid token") || refusal.contains("401"), "\(refusal)")
        // Alice saw no one come or go, and the room still works for her.
        try alice.command(["cmd": "stats"])
        _ = try await alice.waitFor("stats")
        #expect(!alice.hasSeen("participant_connected"))
    }
}
