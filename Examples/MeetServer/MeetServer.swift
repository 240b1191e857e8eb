import ArgumentParser
import Dispatch
import Foundation
import Logging
import RoomServer

/// meet-server: a LiveKit-compatible room server for development and tests.
@main
struct MeetServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meet-server",
        abstract: "A LiveKit-compatible room server for development and tests (not a production SFU).",
        subcommands: [Serve.self, Token.self], defaultSubcommand: Serve.self)
}

/// API keys from `--dev` or `--keys`.
struct Keys: ParsableArguments {
    @Flag(help: "Development credentials: API key 'devkey', secret 'secret' (never expose them).")
    var dev = false

    @Option(name: .customLong("keys"), help: "An API key and its secret, as KEY:SECRET (repeatable).")
    var pairs: [String] = []

    func resolved() throws -> [String: String] {
        var keys: [String: String] = [:]
        for pair in pairs {
            let parts = pair.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("--keys takes KEY:SECRET, got \(pair)")
            }
            keys[parts[0]] = parts[1]
        }
        if dev { keys["devkey"] = "secret" }
        if let key = ProcessInfo.processInfo.environment["LIVEKIT_API_KEY"],
            let secret = ProcessInfo.processInfo.environment["LIVEKIT_API_SECRET"], keys.isEmpty
        {
            keys[key] = secret
        }
        guard !keys.isEmpty else {
            throw ValidationError(
                "no API key: pass --dev, --keys KEY:SECRET, or set LIVEKIT_API_KEY/LIVEKIT_API_SECRET")
        }
        return keys
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve rooms until SIGINT or SIGTERM.")

    @OptionGroup var keys: Keys

    @Option(help: "The address to bind HTTP, WebSocket and media to.")
    var bind = "127.0.0.1"

    @Option(help: "The HTTP/WebSocket port (0: any free one).")
    var port = 7880

    @Option(name: .customLong("udp-port"), help: "The UDP port all media shares (0: any free one).")
    var udpPort = 7882

    @Option(name: .customLong("node-ip"), help: "The address to put in ICE candidates (default: the bound one).")
    var nodeIP: String?

    @Flag(name: .customLong("no-v1"), help: "Do not serve /rtc/v1 (clients fall back to /rtc, two PeerConnections).")
    var noV1 = false

    @Option(name: .customLong("max-participants"), help: "The participant limit of each room (0: none).")
    var maxParticipants: UInt32 = 0

    @Flag(
        name: .customLong("visio-api"),
        help: "Also serve an emulation of Visio's room API (/api/v1.0/…: links, lobby) — not Visio's backend.")
    var visioAPI = false

    @Option(name: .customLong("visio-lobby-room"), help: "A room slug whose guests wait in the lobby (repeatable).")
    var visioLobbyRooms: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        var configuration = RoomServerConfiguration(keys: try keys.resolved())
        configuration.bindAddress = bind
        configuration.port = port
        configuration.udpPort = udpPort
        configuration.advertisedAddress = nodeIP
        configuration.singlePeerConnection = !noV1
        configuration.maxParticipants = maxParticipants
        configuration.visioAPI = visioAPI || !visioLobbyRooms.isEmpty
        configuration.visioLobbyRooms = Set(visioLobbyRooms)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let server = try await RoomServer.start(configuration: configuration)
        // Machine-readable lines on stdout for scripts and tests; logs go to stderr.
        var lines = ["URL \(server.url)", "MEDIA \(server.mediaAddress)"]
        if keys.dev {
            let token = try await server.token(room: "demo", identity: "guest", name: "Guest")
            lines += ["KEY devkey", "SECRET secret", "TOKEN \(token)"]
            FileHandle.standardError.write(
                Data(
                    ("meet-server --dev: API key 'devkey', secret 'secret' — development credentials, "
                        + "for this machine only. The token above joins room 'demo' as 'guest'.\n").utf8))
        }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        await waitForTermination()
        await server.stop()
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print an access token.")

    @OptionGroup var keys: Keys

    @Option(help: "The room the token joins.")
    var room: String

    @Option(help: "The participant identity.")
    var identity: String

    @Option(help: "The display name.")
    var name: String?

    @Option(help: "Participant metadata.")
    var metadata: String?

    @Option(help: "An attribute as KEY=VALUE (repeatable).")
    var attribute: [String] = []

    @Option(
        help: """
            A grant as NAME=true|false (repeatable): canPublish, canSubscribe, canPublishData, \
            canUpdateOwnMetadata, hidden, roomAdmin, roomList, roomCreate, roomRecord, roomJoin.
            """)
    var grant: [String] = []

    @Option(name: .customLong("valid-for"), help: "Seconds the token is valid.")
    var validFor = 6 * 3600

    func run() async throws {
        let keys = try self.keys.resolved()
        var video = VideoGrant.join(room)
        for g in grant {
            let parts = g.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Bool(parts[1]) else {
                throw ValidationError("--grant takes NAME=true|false")
            }
            switch parts[0] {
            case "canPublish": video.canPublish = value
            case "canSubscribe": video.canSubscribe = value
            case "canPublishData": video.canPublishData = value
            case "canUpdateOwnMetadata": video.canUpdateOwnMetadata = value
            case "hidden": video.hidden = value
            case "roomAdmin": video.roomAdmin = value
            case "roomList": video.roomList = value
            case "roomCreate": video.roomCreate = value
            case "roomRecord": video.roomRecord = value
            case "roomJoin": video.roomJoin = value
            default: throw ValidationError("unknown grant \(parts[0])")
            }
        }
        var attributes: [String: String] = [:]
        for a in attribute {
            let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--attribute takes KEY=VALUE") }
            attributes[parts[0]] = parts[1]
        }
        let claims = AccessTokenClaims(
            identity: identity, name: name, metadata: metadata, attributes: attributes.isEmpty ? nil : attributes,
            grant: video, validFor: .seconds(validFor))
        let key = keys.keys.sorted().first!
        print(try await AccessTokenKeys(keys).sign(claims, key: key))
    }
}

/// Returns on SIGINT or SIGTERM.
func waitForTermination() async {
    let (stream, sink) = AsyncStream.makeStream(of: Int32.self)
    let sources = [SIGINT, SIGTERM].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { sink.yield(sig) }
        source.resume()
        return source
    }
    for await _ in stream { break }
    for source in sources { source.cancel() }
}
