// meet-bot — a headless meeting bot on MeetKit: records every speaker of a room to their
// own files, or plays media files into a room. Copy it and change what it does with the
// media: everything it uses is MeetKit's public API.
//
//   meet-bot record --url ws://10.77.0.1:8188 --room 1234 --address 10.77.0.1 --output out/meeting
//   meet-bot play   --url ws://10.77.0.1:8188 --room 1234 --address 10.77.0.1 announcement.wav --loop
//   meet-bot record --livekit wss://visio.example --token "$TOKEN" --output out/meeting
//
// No STUN or TURN server is configured: the bot gathers the addresses it is given.

import ArgumentParser
import Dispatch
import Foundation
import RoomClient
import Signaling
import Synchronization
import Transport

@main
struct MeetBot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meet-bot",
        abstract: "A headless meeting bot: records each speaker of a room, or plays files into it.",
        subcommands: [Record.self, Play.self, Chat.self, React.self, Hand.self])

    static func main() async {
        Console.ignoreBrokenPipes()
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            try Console.exitIfBroken()
        } catch {
            exit(withError: error)
        }
    }
}

/// Where and how to join: a Janus VideoRoom (`--url`, `--room`) or a LiveKit room
/// (`--livekit`, `--token`: the token names the room and the participant).
struct RoomOptionsGroup: ParsableArguments {
    @Option(help: "The Janus WebSocket URL (ws://host:8188).")
    var url: String?

    @Option(help: "The VideoRoom room number (Janus).")
    var room: String = "1234"

    @Option(help: "The LiveKit server URL (wss://host, ws://127.0.0.1:7880): Visio's server, meet-server, …")
    var livekit: String?

    @Option(help: "The LiveKit access token (it names the room and this participant).")
    var token: String?

    @Option(help: "A Visio meeting link (https://HOST/<slug>): joined as --name, through the lobby if it has one.")
    var visio: String?

    @Option(help: "The display name in the room (Janus, Visio; with --livekit the token gives it).")
    var name: String = "meet-bot"

    @Option(help: "A local IP address to gather (repeat for several); default: every non-loopback interface.")
    var address: [String] = []

    func validate() throws {
        let ways = [url != nil, livekit != nil, visio != nil].filter { $0 }.count
        guard ways == 1 else {
            throw ValidationError("give one of --url (Janus), --livekit with --token (LiveKit), --visio (a Visio link)")
        }
        if livekit != nil, token == nil { throw ValidationError("--livekit needs --token") }
    }

    func roomOptions() throws -> RoomOptions {
        var options = RoomOptions()
        if !address.isEmpty {
            options.localAddresses = try address.map {
                guard let ip = IPAddress($0) else { throw ValidationError("not an IP address: \($0)") }
                return ip
            }
        }
        return options
    }

    /// The room's name as the bot reports it (LiveKit's from the server, once joined).
    func roomName(_ room: Room) -> String { room.signalingRoomName ?? self.room }

    func join(options: RoomOptions) async throws -> Room {
        if let visio {
            log("meet-bot: joining \(visio) as \(name) (waiting in the lobby if there is one)")
            return try await VisioRoom.join(link: visio, displayName: name, options: options)
        }
        if let livekit, let token {
            return try await Room.connect(url: livekit, token: token, options: options)
        }
        return try await Room.connect(janus: url ?? "", room: room, displayName: name, options: options)
    }
}

extension Room {
    /// The LiveKit room's name, when the room was joined on LiveKit.
    var signalingRoomName: String? { (signaling as? LiveKitRoomSignaling)?.roomName }
}

/// SIGINT and SIGTERM as an async signal: the first one asks the bot to finish cleanly.
final class StopSignal: @unchecked Sendable {  // the sources are only kept alive, never touched again
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init() {
        let (stream, sink) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        sources = [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { sink.yield(sig) }
            source.resume()
            return source
        }
    }

    /// Returns when a signal arrives, stdout or stderr goes away, `timeout` passes, or
    /// `other` returns.
    func wait(timeout: Duration?, or other: (@Sendable () async -> Void)? = nil) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [stream] in for await _ in stream { return } }
            group.addTask { await Console.waitUntilBroken() }
            if let timeout { group.addTask { try? await Task.sleep(for: timeout) } }
            if let other { group.addTask { await other() } }
            await group.next()
            group.cancelAll()
        }
    }
}

/// Seconds since `start`, with millisecond precision, for the timeline.
func elapsed(since start: ContinuousClock.Instant) -> Double {
    ((ContinuousClock.now - start).seconds * 1000).rounded() / 1000
}

func log(_ text: String) { Console.write(text + "\n", to: .standardError) }

/// stdout and stderr without traps: SIGPIPE is ignored, and a write whose reader has gone
/// away (EPIPE) marks the console broken instead of killing the process. The bot then
/// stops as on SIGTERM — leaves the room, finishes every file — and exits with status 1.
enum Console {
    private static let broken = Atomic<Bool>(false)
    private static let closing = AsyncStream.makeStream(of: Void.self)

    /// Whether a write to stdout or stderr has failed.
    static var isBroken: Bool { broken.load(ordering: .relaxed) }

    static func ignoreBrokenPipes() { signal(SIGPIPE, SIG_IGN) }

    /// Writes `text`; false (and the console marked broken) when it could not.
    @discardableResult
    static func write(_ text: String, to handle: FileHandle) -> Bool {
        do {
            try handle.write(contentsOf: Data(text.utf8))
            return true
        } catch {
            if !broken.exchange(true, ordering: .relaxed) {
                if handle !== FileHandle.standardError {
                    _ = try? FileHandle.standardError.write(contentsOf: Data("meet-bot: stdout is closed\n".utf8))
                }
                closing.continuation.finish()
            }
            return false
        }
    }

    /// Returns once a write has failed (at once if one already has).
    static func waitUntilBroken() async {
        for await _ in closing.stream {}
    }

    /// Exit status 1 when the console broke during the run.
    static func exitIfBroken() throws {
        if isBroken { throw ExitCode(1) }
    }
}
