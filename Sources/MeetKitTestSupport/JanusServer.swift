import Foundation
import NIOCore
import NIOPosix
import Transport

/// A real Janus (Debian's `janus`, VideoRoom plugin) for tests, started by the project's
/// `Scripts/janus/start` inside a network namespace of its own (Janus does not gather
/// loopback interfaces; the namespace gives it a veth address instead). Clients run
/// inside the same namespace: NIO sockets on ``eventLoopGroup()``, processes through
/// ``spawn(_:log:)``. ``stop()`` stops Janus by its PID and deletes the namespace.
///
/// ```swift
/// let janus = try JanusServer.start()
/// defer { janus.stop() }
/// let group = try await janus.eventLoopGroup()
/// let session = try await JanusSession.connect(url: janus.url, group: group)
/// ```
public final class JanusServer: @unchecked Sendable {
    /// The namespace Janus runs in.
    public let namespace: NetworkNamespace
    /// Janus's address (on the namespace's veth); clients gather this address too.
    public let address: IPAddress
    /// The WebSocket URL of its API.
    public let url: String
    /// Where its configuration and log are.
    public let directory: String
    private let root: String
    private var stopped = false

    /// Whether Janus is installed (Scripts/bootstrap installs it).
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/janus") }

    /// The package root (where Scripts/ is), found from this file's location.
    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    private init(namespace: String, address: IPAddress, port: Int, directory: String, root: String) {
        self.namespace = NetworkNamespace(adopting: namespace)
        self.address = address
        self.url = "ws://\(address):\(port)"
        self.directory = directory
        self.root = root
    }

    /// Starts Janus in a new namespace `name` on `address`.
    public static func start(
        name: String = "mk-janus-\(getpid())-\(UInt16.random(in: 0...UInt16.max))", address: String = "10.77.0.1",
        port: Int = 8188
    ) throws -> JanusServer {
        let root = packageRoot
        let directory = NSTemporaryDirectory() + name
        try NetworkNamespace.run([
            "bash", root + "/Scripts/janus/start", name, address, directory, String(port),
        ])
        return JanusServer(
            namespace: name, address: IPAddress(address)!, port: port, directory: directory, root: root)
    }

    /// An event loop group whose sockets live in Janus's namespace (one loop per core by
    /// default: rooms with many participants keep both cores busy).
    public func eventLoopGroup(threads: Int = System.coreCount) async throws -> MultiThreadedEventLoopGroup {
        try await namespace.eventLoopGroup(threads: threads)
    }

    /// Starts a process inside the namespace (stopped by ``stop()`` if still running).
    public func spawn(_ arguments: [String], log: String) throws -> Process {
        try namespace.spawn(arguments, log: log)
    }

    /// The end of Janus's log, for failure messages.
    public func logTail(lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: directory + "/janus.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Kills Janus alone, leaving clients and their event loops running: what a crashed
    /// server looks like to them.
    public func killServer() {
        _ = try? NetworkNamespace.run(["bash", root + "/Scripts/janus/stop", namespace.name, directory])
    }

    /// Stops Janus (by PID) and the processes started here, shuts the event loops and
    /// deletes the namespace.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        killServer()
        namespace.close()
    }

    deinit { stop() }
}
