import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import Synchronization
import WSClient

/// Why a signaling connection failed or ended.
public enum SignalingConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The WebSocket could not be opened (refused, unreachable, upgrade rejected).
    case connectFailed(String)
    /// The connection is closed; nothing can be sent.
    case closed
    /// The server sent something this client cannot use.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .connectFailed(let why): "could not connect: \(why)"
        case .closed: "the signaling connection is closed"
        case .protocolViolation(let why): "protocol violation: \(why)"
        }
    }
}

/// A WebSocket carrying signaling messages — Janus's JSON text, LiveKit's binary
/// protobuf — on swift-websocket's `WebSocketClient`: connect with the subprotocol and
/// headers the server wants, send text or bytes, read incoming messages as an
/// `AsyncStream` that ends when the connection drops, close.
///
/// ```swift
/// let ws = try await WebSocketChannel.connect(url: "ws://10.77.0.1:8188", subprotocol: "janus-protocol")
/// try await ws.send(#"{"janus":"info","transaction":"t1"}"#)
/// for await case .text(let text) in ws.messages { … }   // ends when the server goes away
/// ```
public final class WebSocketChannel: Sendable {
    /// One message.
    public enum Message: Sendable, Equatable {
        /// A text message.
        case text(String)
        /// A binary message.
        case binary([UInt8])
    }

    /// Incoming messages; finishes when the connection ends (see ``closeReason``).
    public let messages: AsyncStream<Message>
    private let state: Mutex<State>
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    private struct State {
        var writer: WebSocketOutboundWriter?
        var closed = false
        var closeReason: String?
        var closeRequested: CheckedContinuation<Void, Never>?
        var opened: CheckedContinuation<Result<Void, SignalingConnectionError>, Never>?
    }

    private init(messages: AsyncStream<Message>) {
        self.messages = messages
        state = Mutex(State())
    }

    /// Opens a WebSocket to `url`.
    /// - Parameters:
    ///   - subprotocol: the `Sec-WebSocket-Protocol` to ask for (Janus needs `janus-protocol`).
    ///   - headers: further HTTP headers for the upgrade request (e.g. authorization).
    ///   - group: the event loops to run on (a namespace's, in tests).
    /// - Throws: ``SignalingConnectionError/connectFailed(_:)``.
    public static func connect(
        url: String, subprotocol: String? = nil, headers: [(name: String, value: String)] = [],
        maxMessageSize: Int = 1 << 22, connectTimeout: Duration = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "meetkit.signaling.websocket")
    ) async throws(SignalingConnectionError) -> WebSocketChannel {
        var fields = HTTPFields()
        if let subprotocol { fields[.secWebSocketProtocol] = subprotocol }
        for h in headers {
            guard let name = HTTPField.Name(h.name) else { throw .connectFailed("bad header name \(h.name)") }
            fields.append(HTTPField(name: name, value: h.value))
        }
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: maxMessageSize, additionalHeaders: fields, closeTimeout: .seconds(2))
        let (messages, sink) = AsyncStream.makeStream(of: Message.self)
        let channel = WebSocketChannel(messages: messages)
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Void, SignalingConnectionError>, Never>) in
            channel.state.withLock { $0.opened = continuation }
            let task = Task {
                var failure: String?
                do {
                    try await WebSocketClient.connect(
                        url: url, configuration: configuration, eventLoopGroup: group, logger: logger
                    ) { inbound, outbound, _ in
                        channel.state.withLock {
                            $0.writer = outbound
                            $0.opened?.resume(returning: .success(()))
                            $0.opened = nil
                        }
                        await withTaskGroup(of: Void.self) { tasks in
                            tasks.addTask {
                                do {
                                    for try await message in inbound.messages(maxSize: maxMessageSize) {
                                        switch message {
                                        case .text(let text): sink.yield(.text(text))
                                        case .binary(let bytes): sink.yield(.binary(Array(bytes.readableBytesView)))
                                        }
                                    }
                                } catch {
                                    channel.noteClose("\(error)")
                                }
                            }
                            tasks.addTask { await channel.waitForCloseRequest() }
                            await tasks.next()
                            tasks.cancelAll()
                        }
                    }
                } catch {
                    failure = "\(error)"
                }
                channel.noteClose(failure ?? "closed by the server")
                channel.state.withLock { $0.writer = nil }
                sink.finish()
                channel.state.withLock {
                    $0.opened?.resume(returning: .failure(.connectFailed(failure ?? "closed during the upgrade")))
                    $0.opened = nil
                }
            }
            channel.task.withLock { $0 = task }
            // A server that accepts the connection and never answers the upgrade (one
            // shutting down, say) must not hold the caller for ever.
            Task {
                try? await Task.sleep(for: connectTimeout)
                let pending = channel.state.withLock { s in
                    defer { s.opened = nil }
                    return s.opened
                }
                guard let pending else { return }
                pending.resume(returning: .failure(.connectFailed("no WebSocket upgrade within \(connectTimeout)")))
                task.cancel()
            }
        }
        if case .failure(let error) = result { throw error }
        return channel
    }

    private func noteClose(_ reason: String) {
        state.withLock {
            if !$0.closed {
                $0.closed = true
                $0.closeReason = reason
            }
        }
    }

    private func waitForCloseRequest() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let already = state.withLock { s -> Bool in
                    if s.closed { return true }
                    s.closeRequested = c
                    return false
                }
                if already { c.resume() }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.closeRequested = nil }
                return s.closeRequested
            }
            c?.resume()
        }
    }

    /// Whether the connection has ended.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Why the connection ended, once it has.
    public var closeReason: String? { state.withLock { $0.closeReason } }

    /// Sends a text message.
    /// - Throws: ``SignalingConnectionError/closed`` once the connection has ended.
    public func send(_ text: String) async throws(SignalingConnectionError) {
        try await write(.text(text))
    }

    /// Sends a binary message.
    /// - Throws: ``SignalingConnectionError/closed`` once the connection has ended.
    public func send(binary bytes: [UInt8]) async throws(SignalingConnectionError) {
        try await write(.binary(ByteBuffer(bytes: bytes)))
    }

    private func write(_ frame: WebSocketOutboundWriter.OutboundFrame) async throws(SignalingConnectionError) {
        guard let writer = state.withLock({ $0.closed ? nil : $0.writer }) else { throw .closed }
        do {
            try await writer.write(frame)
        } catch {
            noteClose("\(error)")
            throw .closed
        }
    }

    /// Closes the connection (a normal WebSocket close) and waits until it has ended.
    public func close() async {
        let (writer, waiter) = state.withLock { s -> (WebSocketOutboundWriter?, CheckedContinuation<Void, Never>?) in
            let w = s.closed ? nil : s.writer
            if !s.closed {
                s.closed = true
                s.closeReason = "closed by this side"
            }
            defer { s.closeRequested = nil }
            return (w, s.closeRequested)
        }
        try? await writer?.close(.normalClosure, reason: nil)
        waiter?.resume()
        await task.withLock { $0 }?.value
    }
}
