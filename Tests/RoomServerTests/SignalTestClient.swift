import Foundation
import LiveKitProtocol
import MeetKitTestSupport
import Signaling
import SwiftProtobuf

@testable import RoomServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A bare LiveKit signalling client for tests: protobuf frames over a WebSocket, no media —
/// to look at exactly what meet-server sends and to feed it what no real client would.
final class SignalTestClient: Sendable {
    let socket: WebSocketChannel
    private let responses: AsyncStream<Livekit_SignalResponse>

    private init(socket: WebSocketChannel) {
        self.socket = socket
        let (stream, sink) = AsyncStream.makeStream(of: Livekit_SignalResponse.self)
        responses = stream
        Task {
            for await case .binary(let bytes) in socket.messages {
                if let response = try? Livekit_SignalResponse(serializedBytes: bytes) { sink.yield(response) }
            }
            sink.finish()
        }
    }

    /// Connects to `server` at `path` (`/rtc` by default) with `token` and extra query items.
    static func connect(
        _ server: RoomServer, token: String, path: String = "/rtc", query: String = ""
    ) async throws -> SignalTestClient {
        let url = "\(server.url)\(path)?access_token=\(token)\(query.isEmpty ? "" : "&" + query)"
        return SignalTestClient(socket: try await WebSocketChannel.connect(url: url))
    }

    /// Sends one request.
    func send(_ message: Livekit_SignalRequest.OneOf_Message) async throws {
        var request = Livekit_SignalRequest()
        request.message = message
        try await socket.send(binary: try request.serializedBytes())
    }

    /// The next response `predicate` accepts (others are skipped), or nil within `timeout`.
    func next(
        timeout: Duration = .seconds(10),
        where predicate: @escaping @Sendable (Livekit_SignalResponse.OneOf_Message) -> Bool
    ) async -> Livekit_SignalResponse.OneOf_Message? {
        await firstElement(of: responses, timeout: timeout) { response in
            response.message.map(predicate) ?? false
        }?.message
    }

    /// The JoinResponse (the first message of a session).
    func join() async -> Livekit_JoinResponse? {
        if case .join(let join)? = await next(where: { if case .join = $0 { true } else { false } }) { return join }
        return nil
    }

    func close() async { await socket.close() }
}

/// An in-process meet-server on loopback for signalling tests.
func startServer(_ adjust: (inout RoomServerConfiguration) -> Void = { _ in }) async throws -> RoomServer {
    var configuration = RoomServerConfiguration.development
    configuration.port = 0
    configuration.udpPort = 0
    adjust(&configuration)
    return try await RoomServer.start(configuration: configuration)
}

/// GET `path` on the server: the status and the body's text.
func httpGet(_ server: RoomServer, _ path: String) async throws -> (Int, String) {
    let url = URL(string: server.url.replacingOccurrences(of: "ws://", with: "http://") + path)!
    let (data, response) = try await URLSession.shared.data(from: url)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}
