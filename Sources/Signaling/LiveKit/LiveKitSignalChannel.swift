import Foundation
import LiveKitProtocol
import NIOCore
import SwiftProtobuf
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A LiveKit server's address, as the URL a token comes with (`wss://host`, `ws://host:7880`,
/// or `https://…`), turned into the signalling endpoints.
struct LiveKitEndpoint: Sendable {
    /// `ws` or `wss`, host, port and any path prefix, without a trailing slash.
    let webSocketBase: String
    /// The same with `http` or `https`.
    let httpBase: String

    init(_ url: String) throws(LiveKitError) {
        var text = url.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("/") { text.removeLast() }
        guard let colon = text.range(of: "://") else { throw .unreachable("not a URL: \(url)") }
        let rest = text[colon.upperBound...]
        guard !rest.isEmpty else { throw .unreachable("no host in \(url)") }
        switch text[..<colon.lowerBound].lowercased() {
        case "ws", "http":
            (webSocketBase, httpBase) = ("ws://" + rest, "http://" + rest)
        case "wss", "https":
            (webSocketBase, httpBase) = ("wss://" + rest, "https://" + rest)
        default:
            throw .unreachable("unsupported scheme in \(url)")
        }
    }

    /// The query string of `items`, each value percent-encoded.
    static func query(_ items: [(String, String)]) -> String { queryString(items) }
}

/// A URL query string of `items`, each value percent-encoded (all but RFC 3986's
/// unreserved characters): for LiveKit's signalling URLs and Visio's room API.
package func queryString(_ items: [(String, String)]) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        .joined(separator: "&")
}

/// One LiveKit signalling connection: protobuf `SignalRequest`s out and `SignalResponse`s
/// in over a WebSocket. A refused upgrade is explained by the server's `/validate`
/// endpoint, as LiveKit's SDKs do it.
final class LiveKitSignalChannel: Sendable {
    /// The server's messages, until the connection ends.
    let responses: AsyncStream<Livekit_SignalResponse>
    /// Frames that did not decode (dropped).
    var undecodable: Int { dropped.load(ordering: .relaxed) }
    private let socket: WebSocketChannel
    private let dropped = Atomic(0)

    private let sink: AsyncStream<Livekit_SignalResponse>.Continuation

    private init(socket: WebSocketChannel) {
        self.socket = socket
        (responses, sink) = AsyncStream.makeStream(of: Livekit_SignalResponse.self)
    }

    /// Decodes the socket's messages into ``responses`` until it closes.
    private func startReading() {
        Task {
            for await message in socket.messages {
                guard case .binary(let bytes) = message,
                    let response = try? Livekit_SignalResponse(serializedBytes: bytes)
                else {
                    dropped.add(1, ordering: .relaxed)
                    continue
                }
                sink.yield(response)
            }
            sink.finish()
        }
    }

    /// Why the connection ended, once it has.
    var closeReason: String? { socket.closeReason }

    /// Opens `path` (`/rtc`, `/rtc/v1`) on `endpoint` with `query`.
    /// - Throws: the refusal `/validate` explains (``LiveKitError/unauthorized(_:)`` …), or
    ///   ``LiveKitError/unreachable(_:)``. A 404 from the validation of `/rtc/v1` means the
    ///   server has no such endpoint: ``LiveKitError/roomNotFound(_:)`` then, as for a room.
    static func open(
        _ endpoint: LiveKitEndpoint, path: String, query: [(String, String)], timeout: Duration = .seconds(10),
        group: any EventLoopGroup
    ) async throws(LiveKitError) -> LiveKitSignalChannel {
        let q = LiveKitEndpoint.query(query)
        do {
            let socket = try await WebSocketChannel.connect(
                url: "\(endpoint.webSocketBase)\(path)?\(q)", maxMessageSize: 1 << 20, connectTimeout: timeout,
                group: group)
            let channel = LiveKitSignalChannel(socket: socket)
            channel.startReading()
            return channel
        } catch {
            throw await validate(endpoint, path: path, query: q, fallback: error.description)
        }
    }

    /// The reason the server gives for refusing a join at `path` (`GET path/validate`).
    static func validate(_ endpoint: LiveKitEndpoint, path: String, query: String, fallback: String) async
        -> LiveKitError
    {
        guard let url = URL(string: "\(endpoint.httpBase)\(path)/validate?\(query)") else {
            return .unreachable(fallback)
        }
        var request = URLRequest(url: url)
        request.timeoutInterval = 10
        guard let (data, response) = try? await fetchUncancelled(request),
            let status = (response as? HTTPURLResponse)?.statusCode
        else { return .unreachable(fallback) }
        let text = String(decoding: data.prefix(4096), as: UTF8.self)
        // 200: the join itself would be accepted; the WebSocket failed for another reason.
        return status == 200 ? .unreachable(fallback) : LiveKitError(status: status, message: text)
    }

    /// Sends one request.
    /// - Throws: ``LiveKitError/disconnected(_:)`` once the connection has ended.
    func send(_ message: Livekit_SignalRequest.OneOf_Message) async throws(LiveKitError) {
        var request = Livekit_SignalRequest()
        request.message = message
        let bytes: [UInt8]
        do {
            bytes = try request.serializedBytes()
        } catch {
            throw .protocolViolation("could not encode a request: \(error)")
        }
        do {
            try await socket.send(binary: bytes)
        } catch {
            throw .disconnected(socket.closeReason ?? "closed")
        }
    }

    /// Closes the connection.
    func close() async { await socket.close() }
}
