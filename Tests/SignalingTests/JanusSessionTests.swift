import MeetKitTestSupport
import Testing

@testable import Signaling

/// The Janus API against a real Janus (Debian's), started in a network namespace.
@Suite("Janus sessions against a real Janus", .serialized)
struct JanusSessionTests {
    @Test func requestsAnswersAndTypedErrors() async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        let janus = try JanusServer.start()
        defer { janus.stop() }
        let group = try await janus.eventLoopGroup()
        let session = try await JanusSession.connect(url: janus.url, group: group)
        let handle = try await session.attach(plugin: "janus.plugin.videoroom")
        let exists = try await handle.request(["request": "exists", "room": 1234])
        #expect(exists.data["exists"]?.bool == true, "\(exists.data.serialized)")
        let missing = try await handle.request(["request": "exists", "room": 4321])
        #expect(missing.data["exists"]?.bool == false)
        // Joining a room that does not exist: VideoRoom's own code and reason.
        await #expect(throws: JanusError.plugin(code: JanusError.noSuchRoom, reason: "No such room (4321)")) {
            try await handle.request(["request": "join", "ptype": "publisher", "room": 4321])
        }
        // A core error: a plugin that does not exist.
        do {
            _ = try await session.attach(plugin: "janus.plugin.nothing")
            Issue.record("attach to a missing plugin succeeded")
        } catch {
            guard case .server(let code, _) = error else { throw error }
            #expect(code == 460, "JANUS_ERROR_PLUGIN_NOT_FOUND")
        }
        try await handle.detach()
        await session.destroy()
        await #expect(throws: JanusError.self) { try await session.attach(plugin: "janus.plugin.videoroom") }
    }

    @Test func aDroppedConnectionFailsWaitingRequests() async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        let janus = try JanusServer.start()
        defer { janus.stop() }
        let group = try await janus.eventLoopGroup()
        let session = try await JanusSession.connect(url: janus.url, group: group)
        let handle = try await session.attach(plugin: "janus.plugin.videoroom")
        janus.killServer()  // Janus goes away under the session
        var reason: String?
        for await r in session.disconnected { reason = r }
        #expect(reason != nil)
        for await _ in handle.events {}  // the handle's stream ends too
        do {
            _ = try await handle.request(["request": "exists", "room": 1234])
            Issue.record("a request on a dead connection succeeded")
        } catch {
            guard case .disconnected = error else { throw error }
        }
    }

    @Test func connectingToNothingIsATypedError() async throws {
        do {
            _ = try await JanusSession.connect(url: "ws://127.0.0.1:9")
            Issue.record("connected to a closed port")
        } catch {
            guard case .connection(.connectFailed) = error else { throw error }
        }
    }
}
