import Foundation
import LiveKitProtocol
import MeetKitTestSupport
import Testing

@testable import RoomServer

/// meet-server's signalling seen by a bare protobuf client on loopback: joins, refusals,
/// pings, metadata, leaves and resumes, and hostile input that must disturb nobody else.
@Suite("meet-server signalling", .serialized)
struct SignalingTests {
    @Test func joinResponsesDescribeTheRoomAndTheOthers() async throws {
        let server = try await startServer()
        let alice = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "alice"))
        let joined = try #require(await alice.join())
        #expect(joined.room.name == "r")
        #expect(joined.room.sid.hasPrefix("RM_"))
        #expect(joined.participant.identity == "alice")
        #expect(joined.participant.sid.hasPrefix("PA_"))
        #expect(joined.otherParticipants.isEmpty)
        #expect(joined.pingInterval > 0 && joined.pingTimeout > joined.pingInterval)
        #expect(joined.subscriberPrimary)
        #expect(joined.serverVersion == server.configuration.serverVersion)
        #expect(joined.iceServers.isEmpty)
        // The subscriber connection is offered at once, with the server's data channels.
        let offer = await alice.next { if case .offer = $0 { true } else { false } }
        guard case .offer(let sd)? = offer else {
            Issue.record("no subscriber offer")
            return
        }
        #expect(sd.sdp.contains("m=application"))

        let bob = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "bob", name: "Bob"))
        let bobJoined = try #require(await bob.join())
        #expect(bobJoined.otherParticipants.map(\.identity) == ["alice"])
        let update = await alice.next {
            if case .update(let u) = $0 {
                u.participants.contains { $0.identity == "bob" && $0.name == "Bob" }
            } else {
                false
            }
        }
        #expect(update != nil)
        await alice.close()
        await bob.close()
        await server.stop()
    }

    @Test func refusedJoinsGiveLiveKitsReasonAndDisturbNobody() async throws {
        let server = try await startServer {
            $0.singlePeerConnection = false
            $0.maxParticipants = 2
        }
        let alice = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "alice"))
        _ = try #require(await alice.join())

        let wrongSecret = try await AccessTokenKeys(["devkey": "wrong"]).sign(
            AccessTokenClaims(identity: "mallory", grant: .join("r")), key: "devkey")
        let expired = try await server.token(room: "r", identity: "late", validFor: .seconds(-3600))
        var noJoin = VideoGrant.join("r")
        noJoin.roomJoin = false
        let cannotJoin = try await server.token(room: "r", identity: "x", grant: noJoin)
        for (token, status, text) in [
            (wrongSecret, 401, "invalid token"), (expired, 401, "expired"), ("garbage", 401, "invalid token"),
            (cannotJoin, 401, "no permissions"),
        ] {
            await #expect(throws: (any Error).self) { _ = try await SignalTestClient.connect(server, token: token) }
            let (code, body) = try await httpGet(server, "/rtc/validate?access_token=\(token)")
            #expect(code == status)
            #expect(body.contains(text), "\(body)")
        }
        // /rtc/v1 is not served here: 404, so clients fall back to /rtc.
        let good = try await server.token(room: "r", identity: "bob")
        #expect(try await httpGet(server, "/rtc/v1/validate?access_token=\(good)").0 == 404)
        await #expect(throws: (any Error).self) {
            _ = try await SignalTestClient.connect(server, token: good, path: "/rtc/v1")
        }
        // The room holds two: the third is refused with LiveKit's message.
        let bob = try await SignalTestClient.connect(server, token: good)
        _ = try #require(await bob.join())
        let carol = try await server.token(room: "r", identity: "carol")
        await #expect(throws: (any Error).self) { _ = try await SignalTestClient.connect(server, token: carol) }
        let (code, body) = try await httpGet(server, "/rtc/validate?access_token=\(carol)")
        #expect(code == 503)
        #expect(body.contains("max participants"))
        // Alice noticed nothing but Bob, and still gets answers.
        var ping = Livekit_Ping()
        ping.timestamp = 42
        try await alice.send(.pingReq(ping))
        let pong = await alice.next { if case .pongResp = $0 { true } else { false } }
        guard case .pongResp(let p)? = pong else {
            Issue.record("no pong")
            return
        }
        #expect(p.lastPingTimestamp == 42)
        await alice.close()
        await bob.close()
        await server.stop()
    }

    @Test func hostileFramesCloseOnlyTheirOwnConnection() async throws {
        let server = try await startServer { $0.maxSignalMessageSize = 64 * 1024 }
        let alice = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "alice"))
        _ = try #require(await alice.join())
        for frame in [[UInt8](repeating: 0xFF, count: 40), [UInt8](repeating: 0x0A, count: 100 * 1024)] {
            let mallory = try await SignalTestClient.connect(
                server, token: try await server.token(room: "r", identity: "mallory"))
            _ = try #require(await mallory.join())
            try await mallory.socket.send(binary: frame)
            #expect(await eventually(.seconds(10)) { mallory.socket.isClosed })
        }
        // Requests naming what does not exist are ignored.
        var mute = Livekit_MuteTrackRequest()
        mute.sid = "TR_nothing"
        mute.muted = true
        try await alice.send(.mute(mute))
        var trickle = Livekit_TrickleRequest()
        trickle.candidateInit = #"{"candidate":"candidate:1 1 udp 1 10.9.9.9 9 typ host","sdpMid":"0"}"#
        trickle.target = .publisher
        try await alice.send(.trickle(trickle))
        var answer = Livekit_SessionDescription()
        answer.type = "answer"
        answer.sdp = "v=0 garbage"
        try await alice.send(.answer(answer))
        try await alice.send(.ping(7))
        let pong = await alice.next { if case .pong = $0 { true } else { false } }
        #expect(pong == .pong(7))
        #expect(!alice.socket.isClosed)
        await alice.close()
        await server.stop()
    }

    @Test func metadataUpdatesNeedTheGrant() async throws {
        let server = try await startServer()
        let alice = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "alice"))
        _ = try #require(await alice.join())
        var grant = VideoGrant.join("r")
        grant.canUpdateOwnMetadata = true
        let bob = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "bob", grant: grant))
        _ = try #require(await bob.join())

        var update = Livekit_UpdateParticipantMetadata()
        update.attributes = ["handRaisedAt": "2026-12-02T10:00:00Z"]
        update.name = "Alice A."
        update.requestID = 5
        try await alice.send(.updateMetadata(update))
        let refused = await alice.next { if case .requestResponse = $0 { true } else { false } }
        guard case .requestResponse(let r)? = refused else {
            Issue.record("no request response")
            return
        }
        #expect(r.requestID == 5)
        #expect(r.reason == .notAllowed)

        update.name = "Bob B."
        try await bob.send(.updateMetadata(update))
        let seen = await alice.next {
            if case .update(let u) = $0 {
                u.participants.contains {
                    $0.identity == "bob" && $0.name == "Bob B."
                        && $0.attributes["handRaisedAt"] == "2026-12-02T10:00:00Z"
                }
            } else {
                false
            }
        }
        #expect(seen != nil)
        // An empty value removes the attribute.
        update.attributes = ["handRaisedAt": ""]
        try await bob.send(.updateMetadata(update))
        let lowered = await alice.next {
            if case .update(let u) = $0 {
                u.participants.contains { $0.identity == "bob" && $0.attributes.isEmpty }
            } else {
                false
            }
        }
        #expect(lowered != nil)
        await alice.close()
        await bob.close()
        await server.stop()
    }

    @Test func silentParticipantsAreRemovedAndLeavesAreSeen() async throws {
        let server = try await startServer {
            $0.pingTimeout = .seconds(2)
            $0.resumeWindow = .seconds(2)
        }
        let alice = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "alice"))
        _ = try #require(await alice.join())
        let bob = try await SignalTestClient.connect(server, token: try await server.token(room: "r", identity: "bob"))
        _ = try #require(await bob.join())
        let carol = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "carol"))
        _ = try #require(await carol.join())

        // Carol leaves: the others see her disconnected, for the reason she gave.
        var leave = Livekit_LeaveRequest()
        leave.reason = .clientInitiated
        try await carol.send(.leave(leave))
        let carolGone = await alice.next {
            if case .update(let u) = $0 {
                u.participants.contains { $0.identity == "carol" && $0.state == .disconnected }
            } else {
                false
            }
        }
        #expect(carolGone != nil)

        // Bob goes silent (no pings) but keeps his WebSocket: after the ping timeout the
        // server tells him to leave, and the others see him go. Alice keeps pinging.
        let pinger = Task {
            while !Task.isCancelled {
                try? await alice.send(.ping(1))
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        let told = await bob.next(timeout: .seconds(15)) { if case .leave = $0 { true } else { false } }
        guard case .leave(let l)? = told else {
            Issue.record("the silent participant was not told to leave")
            pinger.cancel()
            return
        }
        #expect(l.reason == .connectionTimeout)
        let bobGone = await alice.next {
            if case .update(let u) = $0 {
                u.participants.contains { $0.identity == "bob" && $0.state == .disconnected }
            } else {
                false
            }
        }
        #expect(bobGone != nil)
        pinger.cancel()
        await alice.close()
        await bob.close()
        await carol.close()
        await server.stop()
    }

    @Test func aDroppedWebSocketResumesWithinTheWindow() async throws {
        let server = try await startServer { $0.resumeWindow = .seconds(30) }
        let alice = try await SignalTestClient.connect(
            server, token: try await server.token(room: "r", identity: "alice"))
        _ = try #require(await alice.join())
        let token = try await server.token(room: "r", identity: "bob")
        let bob = try await SignalTestClient.connect(server, token: token)
        let joined = try #require(await bob.join())
        var add = Livekit_AddTrackRequest()
        add.cid = "mic"
        add.type = .audio
        add.source = .microphone
        try await bob.send(.addTrack(add))
        let published = await bob.next { if case .trackPublished = $0 { true } else { false } }
        guard case .trackPublished(let track)? = published else {
            Issue.record("no TrackPublishedResponse")
            return
        }
        #expect(track.cid == "mic")
        #expect(track.track.sid.hasPrefix("TR_"))

        await bob.close()  // the WebSocket drops without a leave
        let resumed = try await SignalTestClient.connect(
            server, token: token, query: "reconnect=1&sid=\(joined.participant.sid)")
        let reconnect = await resumed.next { if case .reconnect = $0 { true } else { false } }
        #expect(reconnect != nil)
        try await resumed.send(.ping(3))
        #expect(await resumed.next { if case .pong = $0 { true } else { false } } == .pong(3))
        // Alice never saw Bob leave.
        let sawLeave = await alice.next(timeout: .seconds(2)) {
            if case .update(let u) = $0 { u.participants.contains { $0.state == .disconnected } } else { false }
        }
        #expect(sawLeave == nil)
        await alice.close()
        await resumed.close()
        await server.stop()
    }
}

/// UpdateTrackSettings given as a display size: the smallest simulcast layer covering it.
@Suite("meet-server track settings")
struct TrackSettingsTests {
    @Test func aDisplaySizePicksTheSmallestLayerCoveringIt() {
        func layer(_ quality: Livekit_VideoQuality, _ width: UInt32, _ height: UInt32) -> Livekit_VideoLayer {
            var l = Livekit_VideoLayer()
            l.quality = quality
            l.width = width
            l.height = height
            return l
        }
        // As the official client announces a 1280x720 camera, highest first.
        let layers = [layer(.high, 1280, 720), layer(.medium, 640, 360), layer(.low, 320, 180)]
        #expect(RoomDirectory.quality(width: 160, height: 90, layers: layers) == .low)
        #expect(RoomDirectory.quality(width: 320, height: 180, layers: layers) == .low)
        #expect(RoomDirectory.quality(width: 321, height: 100, layers: layers) == .medium)
        #expect(RoomDirectory.quality(width: 640, height: 480, layers: layers) == .high)
        #expect(RoomDirectory.quality(width: 3840, height: 2160, layers: layers) == .high)
        #expect(RoomDirectory.quality(width: 100, height: 100, layers: []) == .high)
        // Sizes a hostile client may announce: no overflow, the largest still wins.
        let hostile = [layer(.low, .max, .max), layer(.high, 70_000, 70_000)]
        #expect(RoomDirectory.quality(width: 80_000, height: 80_000, layers: hostile) == .low)
        #expect(RoomDirectory.rank(.low) == 0 && RoomDirectory.rank(.medium) == 1 && RoomDirectory.rank(.high) == 2)
    }
}

extension TrackSettingsTests {
    /// ConnectionQuality from a report interval's packets: excellent under 2 % lost, good
    /// under 10 %, poor beyond; nothing sent is excellent.
    @Test func connectionQualityFollowsLoss() {
        #expect(RoomDirectory.quality(received: 0, lost: 0) == .excellent)
        #expect(RoomDirectory.quality(received: 1000, lost: 10) == .excellent)
        #expect(RoomDirectory.quality(received: 1000, lost: 50) == .good)
        #expect(RoomDirectory.quality(received: 1000, lost: 200) == .poor)
        #expect(RoomDirectory.quality(received: 0, lost: 30) == .poor)
    }
}
