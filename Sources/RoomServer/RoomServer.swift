import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import LiveKitProtocol
import Logging
import MeetKitNet
import NIOCore
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import SwiftProtobuf
import Transport

/// A LiveKit-compatible room server for development and tests — the equivalent of
/// `livekit-server --dev` — that LiveKit's clients (and MeetKit's) join with a URL and a
/// token. Signalling on `/rtc` (two PeerConnections per participant) and `/rtc/v1` (one),
/// `/rtc/validate` for the reason of a refusal, media on one UDP port. Not a production
/// SFU: one process, one media thread.
///
/// ```swift
/// let server = try await RoomServer.start(configuration: .development)
/// let token = try await server.token(room: "demo", identity: "alice")
/// print(server.url, token)            // ws://127.0.0.1:7880 …
/// await server.stop()
/// ```
public final class RoomServer: Sendable {
    /// The settings it runs with.
    public let configuration: RoomServerConfiguration
    /// The URL clients connect to (`ws://address:port`).
    public let url: String
    /// The HTTP and WebSocket port.
    public let port: Int
    /// Where media arrives.
    public let mediaAddress: TransportAddress
    let directory: RoomDirectory
    private let media: UDPDriver<MediaRouter>
    private let tasks: [Task<Void, Never>]
    private let application: Task<Void, any Error>
    private let services: ServiceGroup

    private init(
        configuration: RoomServerConfiguration, url: String, port: Int, mediaAddress: TransportAddress,
        directory: RoomDirectory, media: UDPDriver<MediaRouter>, tasks: [Task<Void, Never>],
        application: Task<Void, any Error>, services: ServiceGroup
    ) {
        self.configuration = configuration
        self.url = url
        self.port = port
        self.mediaAddress = mediaAddress
        self.directory = directory
        self.media = media
        self.tasks = tasks
        self.application = application
        self.services = services
    }

    /// Binds the media socket and the HTTP server, and serves until ``stop()``.
    /// - Parameter group: where sockets live (a group inside a network namespace binds there).
    public static func start(
        configuration: RoomServerConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "meet-server")
    ) async throws -> RoomServer {
        guard let bind = IPAddress(configuration.bindAddress) else {
            throw JoinRefusal(status: 500, message: "not an IP address: \(configuration.bindAddress)")
        }
        let advertised = configuration.advertisedAddress.flatMap(IPAddress.init)
        let (mediaEvents, mediaSink) = AsyncStream.makeStream(of: MediaRouter.Event.self)
        let media = try await UDPDriver<MediaRouter>.start(
            localAddresses: [bind], port: UInt16(configuration.udpPort), group: group,
            onEvent: { mediaSink.yield($0) },
            makeMachine: {
                // The bound port is known only once bound: the router learns it below.
                MediaRouter(boundAddress: TransportAddress(ip: bind, port: 0))
            })
        guard let mediaAddress = media.localAddresses.first else { throw UDPDriverError.bindFailed("\(bind)") }
        try await media.perform { router, _ in
            router.setAddresses(
                bound: mediaAddress, advertised: advertised.map { TransportAddress(ip: $0, port: mediaAddress.port) })
        }
        let directory = RoomDirectory(configuration: configuration, media: media, logger: logger)
        let eventTask = Task {
            for await event in mediaEvents { await directory.mediaEvent(event) }
        }
        let tickTask = Task {
            var ticks = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                await directory.reportSpeakers()
                await directory.tick()
                ticks += 1
                if ticks % 4 == 0 { await directory.reportConnectionQuality() }  // every 2 s
            }
        }

        let router = Router()
        Self.addRoutes(to: router, directory: directory, configuration: configuration)
        TwirpRoomService.addRoutes(to: router, directory: directory)
        if configuration.visioAPI {
            VisioAPIEmulation(
                keys: configuration.keys, lobbyRooms: configuration.visioLobbyRooms, directory: directory
            ).addRoutes(to: router)
        }
        let maxSize = configuration.maxSignalMessageSize
        let singlePC = configuration.singlePeerConnection
        let (bound, boundSink) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(configuration: .init(ws: .init(maxFrameSize: maxSize))) { request, _, _ in
                guard let path = request.path, let kind = SignalPath(path, singlePeerConnection: singlePC) else {
                    return .dontUpgrade
                }
                let parameters = kind.parameters(URI(path), authorization: request.headerFields[.authorization])
                guard case .success(let admission) = await directory.validate(parameters) else {
                    // The HTTP route answers with the reason.
                    return .dontUpgrade
                }
                return .upgrade([:]) { inbound, outbound, _ in
                    await Self.serve(
                        admission, directory: directory, inbound: inbound, outbound: outbound, maxSize: maxSize)
                }
            },
            configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.port)),
            onServerRunning: { channel in boundSink.yield(channel.localAddress?.port ?? 0) },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
        // Run as a service group of its own, so that stop() shuts it down gracefully.
        let services = ServiceGroup(
            configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger))
        let application = Task {
            // A server that cannot start (the port taken) ends the wait for its port.
            defer { boundSink.finish() }
            try await services.run()
        }
        var port = 0
        for await p in bound {
            port = p
            break
        }
        guard port != 0 else {
            for task in [eventTask, tickTask] { task.cancel() }
            await media.close()
            let failure = await application.result
            throw JoinRefusal(status: 500, message: "the HTTP server did not start: \(failure)")
        }
        let host =
            configuration.bindAddress.contains(":") ? "[\(configuration.bindAddress)]" : configuration.bindAddress
        logger.info("serving", metadata: ["url": "ws://\(host):\(port)", "media": "\(mediaAddress)"])
        return RoomServer(
            configuration: configuration, url: "ws://\(host):\(port)", port: port, mediaAddress: mediaAddress,
            directory: directory, media: media, tasks: [eventTask, tickTask], application: application,
            services: services)
    }

    /// Stops serving: every participant is told the server is shutting down.
    public func stop() async {
        await directory.shutdown()
        await services.triggerGracefulShutdown()
        _ = await application.result
        for task in tasks { task.cancel() }
        await media.close()
    }

    /// Drops everything the participant `identity` of `room` sends for `duration`, as a
    /// network outage would: for tests of a client's media recovery.
    package func simulateMediaOutage(identity: String, room: String, for duration: Duration) async {
        guard let sid = await directory.sid(of: identity, in: room) else { return }
        try? await media.perform { router, now in router.simulateOutage(of: sid, until: now + duration) }
    }

    /// A token for `identity` in `room`, signed with the first configured key.
    public func token(
        room: String, identity: String, name: String? = nil, grant: VideoGrant? = nil,
        validFor: Duration = .seconds(6 * 3600)
    ) async throws -> String {
        guard let key = configuration.keys.keys.sorted().first else { throw AccessTokenError.unknownKey("") }
        let claims = AccessTokenClaims(identity: identity, name: name, grant: grant ?? .join(room), validFor: validFor)
        return try await AccessTokenKeys(configuration.keys).sign(claims, key: key)
    }

    // MARK: WebSocket sessions

    /// Runs one signalling session: requests in, responses out, until either side ends.
    private static func serve(
        _ admission: Admission, directory: RoomDirectory, inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter, maxSize: Int
    ) async {
        let session: SignalSession
        do {
            session = try await directory.join(admission)
        } catch {
            var leave = Livekit_LeaveRequest()
            leave.reason = .joinFailure
            var response = Livekit_SignalResponse()
            response.leave = leave
            if let bytes: [UInt8] = try? response.serializedBytes() {
                try? await outbound.write(.binary(ByteBuffer(bytes: bytes)))
            }
            try? await outbound.close(.unexpectedServerError, reason: error.message)
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await response in session.responses {
                    guard let bytes: [UInt8] = try? response.serializedBytes() else { continue }
                    do {
                        try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                    } catch {
                        break
                    }
                }
                try? await outbound.close(.normalClosure, reason: nil)
            }
            var closeReason: (WebSocketErrorCode, String)?
            do {
                for try await message in inbound.messages(maxSize: maxSize) {
                    let request: Livekit_SignalRequest
                    do {
                        switch message {
                        case .binary(let buffer):
                            request = try Livekit_SignalRequest(serializedBytes: Array(buffer.readableBytesView))
                        case .text(let text): request = try Livekit_SignalRequest(jsonString: text)
                        }
                    } catch {
                        closeReason = (.protocolError, "malformed signal message")
                        break
                    }
                    await directory.receive(request, from: session.participant, session: session.session)
                }
            } catch {
                closeReason = (.messageTooLarge, "signal message too large")
            }
            if let closeReason { try? await outbound.close(closeReason.0, reason: closeReason.1) }
            await directory.signalClosed(participant: session.participant, session: session.session)
        }
    }

    // MARK: HTTP

    private static func addRoutes(
        to router: Router<BasicRequestContext>, directory: RoomDirectory, configuration: RoomServerConfiguration
    ) {
        let singlePC = configuration.singlePeerConnection
        // A request that was not upgraded: the reason, as LiveKit gives it.
        for path in ["/rtc", "/rtc/validate", "/rtc/v1", "/rtc/v1/validate"] {
            router.get(RouterPath(stringLiteral: path)) { request, _ -> Response in
                guard let kind = SignalPath(request.uri.path, singlePeerConnection: singlePC) else {
                    return Response(status: .notFound)
                }
                let parameters = kind.parameters(request.uri, authorization: request.headers[.authorization])
                switch await directory.validate(parameters) {
                case .success:
                    return text(.ok, "success")
                case .failure(let refusal):
                    return text(HTTPResponse.Status(code: refusal.status), refusal.message)
                }
            }
        }
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The signalling endpoints.
enum SignalPath {
    case v0, v1

    /// The endpoint of a path (with or without `/validate`); nil for others, and for
    /// `/rtc/v1` when the server does not serve it (clients then fall back to `/rtc`).
    init?(_ path: String, singlePeerConnection: Bool) {
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        if ["/rtc", "/rtc/", "/rtc/validate"].contains(bare) {
            self = .v0
        } else if singlePeerConnection, ["/rtc/v1", "/rtc/v1/", "/rtc/v1/validate"].contains(bare) {
            self = .v1
        } else {
            return nil
        }
    }

    /// The join parameters of a request's URL (and its Authorization header).
    func parameters(_ uri: URI, authorization: String?) -> JoinParameters {
        let query = uri.queryParameters
        var p = JoinParameters()
        p.token = query["access_token"].map(String.init)
        if p.token == nil, let authorization, authorization.hasPrefix("Bearer ") {
            p.token = String(authorization.dropFirst("Bearer ".count))
        }
        switch self {
        case .v0:
            p.autoSubscribe = query["auto_subscribe"].map { $0 != "0" && $0 != "false" } ?? true
            p.reconnect = query["reconnect"].map { $0 == "1" || $0 == "true" } ?? false
            p.participantSID = query["sid"].map(String.init)
            p.clientProtocol = query["client_protocol"].flatMap { Int32($0) } ?? 0
            p.reconnectReason =
                query["reconnect_reason"].flatMap { Int($0) }.flatMap(Livekit_ReconnectReason.init(rawValue:))
                ?? .rrUnknown
        case .v1:
            p.singlePeerConnection = true
            if let wrapped = query["join_request"], let request = try? JoinRequestCodec.decode(String(wrapped)) {
                p.joinRequest = request
                p.autoSubscribe = request.connectionSettings.autoSubscribe
                p.reconnect = request.reconnect
                p.participantSID = request.participantSid.isEmpty ? nil : request.participantSid
                p.clientProtocol = request.clientInfo.clientProtocol
            }
        }
        return p
    }
}
