import Foundation

/// A child process spoken to with one line per message on stdin/stdout — how MeetKit's
/// tests drive independent peers (aioice, aiortc) written in other languages. Standard
/// error is passed through for diagnostics. ``terminate()`` (or deinit) stops only this
/// process, by its PID.
///
/// ```swift
/// let peer = try LineProcess(executable: ".venv/bin/python", arguments: ["peer.py"])
/// let hello = try await peer.readLine(timeout: .seconds(10))
/// try peer.writeLine(#"{"type":"answer"}"#)
/// ```
public final class LineProcess: @unchecked Sendable {
    /// Why a line could not be had.
    public enum Failure: Error, CustomStringConvertible {
        /// The process could not start.
        case launch(String)
        /// No line came within the timeout.
        case timeout(Duration)
        /// The process closed its output.
        case ended(status: Int32)

        public var description: String {
            switch self {
            case .launch(let why): "cannot start process: \(why)"
            case .timeout(let d): "no line within \(d)"
            case .ended(let status): "process ended (status \(status))"
            }
        }
    }

    private let process = Process()
    private let stdin = Pipe()
    private let stdout = Pipe()
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()
    private var eof = false

    /// Starts `executable` with `arguments` (and extra `environment` variables). Its stderr
    /// goes to `stderrPath` when given, to the test's stderr otherwise.
    public init(
        executable: String, arguments: [String], environment: [String: String] = [:], stderrPath: String? = nil
    ) throws {
        // A child that dies before reading what it is sent must fail the write (EPIPE, a
        // thrown error), not kill the test process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = stdin
        process.standardOutput = stdout
        if let stderrPath {
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        } else {
            process.standardError = FileHandle.standardError
        }
        stdout.fileHandleForReading.readabilityHandler = { [weak self] handle in
            self?.consume(handle.availableData)
        }
        do {
            try process.run()
        } catch {
            throw Failure.launch("\(executable): \(error)")
        }
    }

    deinit { terminate() }

    /// The child's PID.
    public var pid: Int32 { process.processIdentifier }

    private func consume(_ data: Data) {
        lock.lock()
        if data.isEmpty {
            eof = true
            stdout.fileHandleForReading.readabilityHandler = nil
        } else {
            partial.append(data)
            while let newline = partial.firstIndex(of: 0x0A) {
                lines.append(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
                partial.removeSubrange(partial.startIndex...newline)
            }
        }
        lock.unlock()
    }

    private func takeLine() -> (String?, Bool) {
        lock.lock()
        defer { lock.unlock() }
        if !lines.isEmpty { return (lines.removeFirst(), false) }
        return (nil, eof)
    }

    /// The next line the process printed, waiting at most `timeout`.
    /// - Parameter poll: how often to look for it (a benchmark measuring this process's CPU
    ///   while it waits looks seldom).
    public func readLine(timeout: Duration = .seconds(30), poll: Duration = .milliseconds(2)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (line, ended) = takeLine()
            if let line { return line }
            if ended {
                process.waitUntilExit()
                throw Failure.ended(status: process.terminationStatus)
            }
            if ContinuousClock.now >= deadline { throw Failure.timeout(timeout) }
            try await Task.sleep(for: poll)
        }
    }

    /// The next line parsed as a JSON object.
    public func readJSON(timeout: Duration = .seconds(30), poll: Duration = .milliseconds(2)) async throws
        -> [String: Any]
    {
        let line = try await readLine(timeout: timeout, poll: poll)
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw Failure.launch("not a JSON object: \(line)")
        }
        return object
    }

    /// Writes `line` and a newline to the process's standard input.
    public func writeLine(_ line: String) throws {
        try stdin.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Writes a JSON object as one line.
    public func writeJSON(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object)
        try writeLine(String(decoding: data, as: UTF8.self))
    }

    /// Waits for the process to exit and returns its status.
    public func waitForExit() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Waits (polling) for the process to exit, at most `timeout`; its status, or nil if it
    /// is still running.
    public func exitStatus(within timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Stops the process (SIGTERM, then SIGKILL) if it still runs.
    public func terminate() {
        stop(process)
        stdout.fileHandleForReading.readabilityHandler = nil
    }
}

/// Where the project's interop peers live: the repository root, its Python venv and scripts.
public enum InteropPeers {
    /// The package root, found from this source file's location.
    public static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// The venv's Python, which `Scripts/bootstrap` creates with the interop packages.
    public static var python: String { root.appendingPathComponent(".venv/bin/python").path }

    /// A script under `Scripts/interop`.
    public static func script(_ name: String) -> String {
        root.appendingPathComponent("Scripts/interop/\(name)").path
    }

    /// Whether the venv exists; tests fail with a clear message when it does not.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: python) }

    /// Debian's Python, which has GStreamer's bindings (python3-gi and the typelibs are
    /// Debian packages, so the webrtcbin peer runs outside the venv).
    public static let systemPython = "/usr/bin/python3"

    /// Whether GStreamer's webrtcbin and its Python bindings are installed (`Scripts/bootstrap`).
    public static var hasWebrtcbin: Bool {
        FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstwebrtc.so")
            && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/gi")
    }
}

/// The project's example programs (meet-bot, meet-peer), which `swift test` builds beside
/// the test runner.
public enum ExampleBinary {
    /// The path of the example `name` next to the running test binary.
    public static func path(_ name: String) -> String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
