import CMeetKitTestShim
import Foundation
import NIOCore
import NIOPosix

/// Stops a child process: SIGTERM, then SIGKILL if it is still running after `grace`.
/// (A child may inherit a signal mask with SIGTERM blocked from the thread that spawned it.)
public func stop(_ process: Process, grace: Duration = .seconds(2)) {
    guard process.isRunning else { return }
    process.terminate()
    let deadline = ContinuousClock.now + grace
    while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

/// A Linux network namespace the test creates and deletes itself (`ip netns`), so that a
/// test can have its own addresses, NAT rules and servers without touching the machine's
/// network. Needs root (as on the project's machines and CI).
///
/// ```swift
/// let ns = try NetworkNamespace(name: "mk-test")
/// try ns.applyNftables(rules)                     // e.g. a NAT on loopback
/// let server = try ns.spawn(["turnserver", ...])  // a process inside it
/// let group = try await ns.eventLoopGroup()       // NIO sockets inside it
/// ```
public final class NetworkNamespace: @unchecked Sendable {
    /// Why the namespace could not be set up.
    public struct Failure: Error, CustomStringConvertible {
        /// What failed.
        public let description: String
    }

    /// The namespace's name under /run/netns.
    public let name: String
    private var children: [Process] = []
    private var groups: [MultiThreadedEventLoopGroup] = []

    /// Takes over a namespace something else created (e.g. `Scripts/janus/start`);
    /// ``close()`` deletes it all the same.
    public init(adopting name: String) {
        self.name = name
    }

    /// Creates the namespace with its loopback interface up.
    public init(name: String) throws {
        self.name = name
        _ = try? Self.run(["ip", "netns", "del", name])  // a leftover from a killed run
        try Self.run(["ip", "netns", "add", name])
        try Self.run(["ip", "-n", name, "link", "set", "lo", "up"])
    }

    deinit { close() }

    /// Runs a command to completion in the root namespace; throws on a non-zero status.
    @discardableResult
    public static func run(_ arguments: [String], input: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let out = Pipe()
        let inPipe = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = inPipe
        try p.run()
        if let input { try inPipe.fileHandleForWriting.write(contentsOf: Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) exited \(p.terminationStatus): \(text)")
        }
        return text
    }

    /// Runs a command inside the namespace to completion.
    @discardableResult
    public func run(_ arguments: [String], input: String? = nil) throws -> String {
        try Self.run(["ip", "netns", "exec", name] + arguments, input: input)
    }

    /// Loads an nftables ruleset inside the namespace.
    public func applyNftables(_ ruleset: String) throws { try run(["nft", "-f", "-"], input: ruleset) }

    /// Starts a long-running process inside the namespace; it is stopped (by PID) on
    /// ``close()``. Its output goes to `log`.
    public func spawn(_ arguments: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", name] + arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        children.append(p)
        return p
    }

    /// An event loop group whose threads live inside the namespace: sockets NIO opens on
    /// it belong to the namespace.
    public func eventLoopGroup(threads: Int = 1) async throws -> MultiThreadedEventLoopGroup {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        groups.append(group)
        let path = "/run/netns/\(name)"
        for loop in group.makeIterator() {
            try await loop.submit {
                guard mk_enter_network_namespace(path) == 0 else {
                    throw Failure(description: "setns \(path): \(String(cString: strerror(errno)))")
                }
            }.get()
        }
        return group
    }

    /// Whether a UDP port is bound inside the namespace (for waiting on a server).
    public func isListeningUDP(port: UInt16) -> Bool {
        ((try? run(["ss", "-Hlun", "sport = :\(port)"])) ?? "").contains(":\(port)")
    }

    /// Stops the processes started here, shuts the event loops and deletes the namespace.
    public func close() {
        for p in children { stop(p) }
        children = []
        for g in groups { g.shutdownGracefully { _ in } }
        groups = []
        _ = try? Self.run(["ip", "netns", "del", name])
    }
}
