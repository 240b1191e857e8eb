import Foundation
import MeetKitTestSupport

@testable import RoomServer

/// meet-server (the built `meet-server` program) inside a network namespace of the test's
/// own, for LiveKit's official client: its libwebrtc gathers no loopback candidates, so the
/// namespace gets a veth pair with 10.99.0.1, where the server binds and clients connect.
final class OfficialClientRoom: @unchecked Sendable {
    let namespace: NetworkNamespace
    let server: LineProcess
    /// The signalling URL.
    let url: String
    let keys = AccessTokenKeys(["devkey": "secret"])
    private var clients: [OfficialClient] = []

    init(mode: String, arguments: [String] = []) async throws {
        let ns = try NetworkNamespace(name: "mk-lk-\(getpid())")
        namespace = ns
        try ns.run(["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        try ns.run(["ip", "addr", "add", "10.99.0.1/24", "dev", "v0"])
        try ns.run(["ip", "link", "set", "v0", "up"])
        try ns.run(["ip", "link", "set", "v1", "up"])
        server = try LineProcess(
            executable: "/usr/bin/env",
            arguments: [
                "ip", "netns", "exec", ns.name, ExampleBinary.path("meet-server"), "--dev", "--bind", "10.99.0.1",
                "--port", "0", "--udp-port", "0",
            ] + (mode == "v1" ? [] : ["--no-v1"]) + arguments,
            stderrPath: NSTemporaryDirectory() + "meetkit-meet-server-\(getpid()).log")
        var found: String?
        while found == nil {
            let line = try await server.readLine(timeout: .seconds(30))
            if line.hasPrefix("URL ") { found = String(line.dropFirst(4)) }
        }
        url = found!
    }

    /// A token for `identity` in `room`.
    func token(_ identity: String, grant: VideoGrant? = nil, room: String = "demo") async throws -> String {
        try await keys.sign(
            AccessTokenClaims(identity: identity, name: identity.capitalized, grant: grant ?? .join(room)),
            key: "devkey")
    }

    /// An official-client participant `identity`, connected (its `connected` event seen).
    func join(_ identity: String, mode: String, grant: VideoGrant? = nil) async throws -> OfficialClient {
        let client = try OfficialClient(
            namespace: namespace, url: url, token: try await token(identity, grant: grant), mode: mode, name: identity)
        clients.append(client)
        _ = try await client.waitFor("connected", timeout: .seconds(30))
        return client
    }

    /// One call of LiveKit's server API (`livekit-api`) against the server, from inside the
    /// namespace: the JSON it printed (an `error` key for a Twirp error).
    func roomService(_ method: String, _ arguments: [String: Any] = [:], secret: String = "secret") throws -> [String:
        Any]
    {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: arguments), as: UTF8.self)
        let output = try namespace.run(
            [
                InteropPeers.python, InteropPeers.script("livekit_room_service.py"),
                url.replacingOccurrences(of: "ws://", with: "http://"), "devkey", secret, method, json,
            ])
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? ["unparsed": output]
    }

    /// A client started with `token`, whatever becomes of it (for refused joins).
    func start(_ name: String, token: String, mode: String) throws -> OfficialClient {
        let client = try OfficialClient(namespace: namespace, url: url, token: token, mode: mode, name: name)
        clients.append(client)
        return client
    }

    func close() {
        for c in clients { c.process.terminate() }
        server.terminate()
        namespace.close()
    }
}

/// One official-client participant (`Scripts/interop/livekit_participant.py`): JSON
/// commands in, JSON events out.
final class OfficialClient: @unchecked Sendable {
    let process: LineProcess
    let name: String
    private var seen: [[String: Any]] = []

    init(namespace: NetworkNamespace, url: String, token: String, mode: String, name: String) throws {
        self.name = name
        process = try LineProcess(
            executable: "/usr/bin/env",
            arguments: [
                "ip", "netns", "exec", namespace.name, InteropPeers.python,
                InteropPeers.script("livekit_participant.py"), "--url", url, "--token", token, "--mode", mode,
            ],
            environment: ["PYTHONWARNINGS": "ignore"],
            stderrPath: NSTemporaryDirectory() + "meetkit-livekit-\(name)-\(getpid()).log")
    }

    /// Sends a command.
    func command(_ object: [String: Any]) throws { try process.writeJSON(object) }

    /// The first event named `name` that `predicate` accepts, among those already read or
    /// arriving within `timeout` (a safety net, not a timing assertion).
    func waitFor(
        _ name: String, timeout: Duration = .seconds(20), where predicate: ([String: Any]) -> Bool = { _ in true }
    ) async throws -> [String: Any] {
        if let i = seen.firstIndex(where: { $0["event"] as? String == name && predicate($0) }) {
            return seen.remove(at: i)
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let event = try await process.readJSON(timeout: deadline - ContinuousClock.now)
            if event["event"] as? String == "error" {
                throw LineProcess.Failure.launch("\(self.name): \(event["message"] ?? "")")
            }
            if event["event"] as? String == name, predicate(event) { return event }
            seen.append(event)
        }
        throw LineProcess.Failure.timeout(timeout)
    }

    /// The message of the client's `error` event (a refused connection), waiting for it.
    func waitForError(timeout: Duration = .seconds(30)) async throws -> String {
        do {
            let event = try await waitFor("never", timeout: timeout)
            return "\(event)"
        } catch LineProcess.Failure.launch(let message) {
            return message
        }
    }

    /// Whether an event named `name` that `predicate` accepts was read so far.
    func hasSeen(_ name: String, where predicate: ([String: Any]) -> Bool = { _ in true }) -> Bool {
        seen.contains { $0["event"] as? String == name && predicate($0) }
    }

    /// The client's receive statistics: audio per sender (frames, dominant frequency),
    /// video per sender/track (frames, last size, sizes seen).
    func stats() async throws -> (audio: [String: [String: Any]], video: [String: [String: Any]]) {
        try command(["cmd": "stats"])
        let s = try await waitFor("stats")
        return (s["audio"] as? [String: [String: Any]] ?? [:], s["video"] as? [String: [String: Any]] ?? [:])
    }
}
