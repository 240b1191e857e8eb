import Logging
import NIOCore
import NIOPosix

/// A message Janus sent about a plugin handle: plugin events (with their JSEP, if any),
/// and the core's notices about the handle's PeerConnection.
public enum JanusHandleEvent: Sendable, Equatable {
    /// A plugin event not answering a request of this client (`plugindata.data`, and the
    /// SDP Janus sent with it).
    case plugin(data: JSONValue, jsep: JSONValue?)
    /// The PeerConnection of this handle is up (ICE + DTLS).
    case webrtcUp
    /// Janus started or stopped receiving media of `type` (audio/video) on `mid`.
    case media(type: String, mid: String?, receiving: Bool)
    /// Janus sees loss on the path (`uplink`: from this client to Janus).
    case slowLink(uplink: Bool, lost: Int?)
    /// The PeerConnection went down.
    case hangup(reason: String?)
    /// The handle was detached.
    case detached
}

/// A plugin's answer to a request: its data and, for offers or answers, the JSEP.
public struct JanusResponse: Sendable, Equatable {
    /// `plugindata.data` (or the core's `data`).
    public var data: JSONValue
    /// The SDP that came with it (`{"type":"offer"|"answer","sdp":…}`).
    public var jsep: JSONValue?
}

/// One Janus session over one WebSocket (the Janus API, `janus-protocol`): creates the
/// session, keeps it alive, attaches plugin handles, correlates each request with its
/// answer by transaction id (with a timeout), turns errors into ``JanusError``s carrying
/// Janus's code and reason, and routes unsolicited events to the handle they concern.
/// When the WebSocket drops, every waiting request fails with
/// ``JanusError/disconnected(_:)`` and every handle's event stream ends.
///
/// ```swift
/// let session = try await JanusSession.connect(url: "ws://10.77.0.1:8188")
/// let handle = try await session.attach(plugin: "janus.plugin.videoroom")
/// let reply = try await handle.request(["request": "exists", "room": 1234])
/// ```
public actor JanusSession {
    /// The session id Janus assigned.
    public nonisolated let id: Int64
    /// Session-level notices: nil-terminated by the end of the connection.
    public nonisolated let disconnected: AsyncStream<String>
    private let socket: WebSocketChannel
    private let requestTimeout: Duration
    private let logger: Logger
    private var pending: [String: Pending] = [:]
    private var handles: [Int64: AsyncStream<JanusHandleEvent>.Continuation] = [:]
    private var nextTransaction = 0
    private var ended: String?
    private var keepalive: Task<Void, Never>?
    private var reader: Task<Void, Never>?
    private let disconnectedSink: AsyncStream<String>.Continuation

    private struct Pending {
        let what: String
        /// Whether an `ack` ends the request (trickle, keepalive) or an event is awaited.
        let ackIsEnough: Bool
        let continuation: CheckedContinuation<Result<JanusResponse, JanusError>, Never>
        /// Sends the request, then waits out its timeout; cancelled when the answer comes.
        var timer: Task<Void, Never>?
    }

    private init(id: Int64, socket: WebSocketChannel, requestTimeout: Duration, logger: Logger) {
        self.id = id
        self.socket = socket
        self.requestTimeout = requestTimeout
        self.logger = logger
        (disconnected, disconnectedSink) = AsyncStream.makeStream(of: String.self)
    }

    /// Connects to Janus's WebSocket transport and creates a session.
    /// - Parameters:
    ///   - keepaliveInterval: how often to refresh the session (Janus expires idle
    ///     sessions after its `session_timeout`, 60 s by default).
    ///   - requestTimeout: how long any request may wait for its answer.
    public static func connect(
        url: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        keepaliveInterval: Duration = .seconds(25), requestTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "meetkit.janus")
    ) async throws(JanusError) -> JanusSession {
        let socket: WebSocketChannel
        do {
            socket = try await WebSocketChannel.connect(url: url, subprotocol: "janus-protocol", group: group)
        } catch {
            throw .connection(error)
        }
        // The create request is answered before the session object exists: read it here.
        let transaction = "create-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try await socket.send((["janus": "create", "transaction": .string(transaction)] as JSONValue).serialized)
        } catch {
            throw .connection(error)
        }
        let reply = await withTaskGroup(of: JSONValue?.self) { group -> JSONValue? in
            group.addTask {
                for await case .text(let text) in socket.messages {
                    if let m = try? JSONValue(parsing: text), m["transaction"]?.string == transaction { return m }
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: requestTimeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let reply else {
            await socket.close()
            throw .timeout(request: "create")
        }
        if let error = Self.coreError(reply) {
            await socket.close()
            throw error
        }
        guard reply["janus"]?.string == "success", let id = reply["data"]?["id"]?.int64 else {
            await socket.close()
            throw .unexpectedResponse(reply.serialized)
        }
        let session = JanusSession(id: id, socket: socket, requestTimeout: requestTimeout, logger: logger)
        await session.run(keepaliveInterval: keepaliveInterval)
        return session
    }

    private func run(keepaliveInterval: Duration) {
        reader = Task { [socket] in
            for await case .text(let text) in socket.messages { self.receive(text) }
            self.connectionEnded(socket.closeReason ?? "the WebSocket closed")
        }
        keepalive = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: keepaliveInterval)
                if Task.isCancelled { break }
                _ = try? await self.send(["janus": "keepalive"], what: "keepalive", ackIsEnough: true)
            }
        }
    }

    /// Attaches a plugin handle.
    public func attach(plugin: String) async throws(JanusError) -> JanusHandle {
        let reply = try await send(["janus": "attach", "plugin": .string(plugin)], what: "attach", ackIsEnough: false)
        guard let handleID = reply.data["id"]?.int64 else { throw .unexpectedResponse(reply.data.serialized) }
        let (events, sink) = AsyncStream.makeStream(of: JanusHandleEvent.self)
        handles[handleID] = sink
        return JanusHandle(id: handleID, session: self, events: events)
    }

    /// Destroys the session and closes the WebSocket.
    public func destroy() async {
        if ended == nil { _ = try? await send(["janus": "destroy"], what: "destroy", ackIsEnough: false) }
        keepalive?.cancel()
        await socket.close()
        connectionEnded("session destroyed")
        await reader?.value
    }

    /// Whether the session is still usable.
    public var isConnected: Bool { ended == nil }

    // MARK: requests

    func send(_ message: JSONValue, handle: Int64? = nil, what: String, ackIsEnough: Bool) async throws(JanusError)
        -> JanusResponse
    {
        if let ended { throw .disconnected(ended) }
        nextTransaction += 1
        let transaction = "mk\(nextTransaction)"
        guard case .object(var fields) = message else { throw .unexpectedResponse("request is not an object") }
        fields["transaction"] = .string(transaction)
        fields["session_id"] = .int(id)
        if let handle { fields["handle_id"] = .int(handle) }
        let text = JSONValue.object(fields).serialized
        let timeout = requestTimeout
        let result = await withCheckedContinuation {
            (c: CheckedContinuation<Result<JanusResponse, JanusError>, Never>) in
            pending[transaction] = Pending(what: what, ackIsEnough: ackIsEnough, continuation: c)
            pending[transaction]?.timer = Task {
                do throws(SignalingConnectionError) {
                    try await self.socket.send(text)
                } catch {
                    self.finish(transaction, .failure(.disconnected(error.description)))
                    return
                }
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return  // answered in time
                }
                self.finish(transaction, .failure(.timeout(request: what)))
            }
        }
        return try result.get()
    }

    private func finish(_ transaction: String, _ result: Result<JanusResponse, JanusError>) {
        guard let p = pending.removeValue(forKey: transaction) else { return }
        p.timer?.cancel()
        p.continuation.resume(returning: result)
    }

    func detached(_ handle: Int64) {
        handles.removeValue(forKey: handle)?.finish()
    }

    // MARK: incoming

    private static func coreError(_ m: JSONValue) -> JanusError? {
        guard m["janus"]?.string == "error" else { return nil }
        return .server(code: m["error"]?["code"]?.int ?? 0, reason: m["error"]?["reason"]?.string ?? "")
    }

    private static func pluginError(_ data: JSONValue) -> JanusError? {
        guard let code = data["error_code"]?.int else { return nil }
        return .plugin(code: code, reason: data["error"]?.string ?? "")
    }

    private func receive(_ text: String) {
        guard let m = try? JSONValue(parsing: text), let kind = m["janus"]?.string else {
            logger.warning("dropped a message that is not Janus JSON", metadata: ["text": "\(text.prefix(200))"])
            return
        }
        let sender = m["sender"]?.int64
        if let transaction = m["transaction"]?.string, let p = pending[transaction] {
            let data = m["plugindata"]?["data"] ?? m["data"] ?? .null
            switch kind {
            case "ack":
                if p.ackIsEnough { finish(transaction, .success(JanusResponse(data: .null, jsep: nil))) }
                return
            case "error":
                finish(transaction, .failure(Self.coreError(m)!))
                return
            case "success", "event":
                if let e = Self.pluginError(data) {
                    finish(transaction, .failure(e))
                } else {
                    finish(transaction, .success(JanusResponse(data: data, jsep: m["jsep"])))
                }
                return
            default: break
            }
        }
        guard let sender, let sink = handles[sender] else {
            if kind == "timeout" { connectionEnded("the Janus session timed out") }
            return
        }
        switch kind {
        case "event":
            if let data = m["plugindata"]?["data"] { sink.yield(.plugin(data: data, jsep: m["jsep"])) }
        case "webrtcup": sink.yield(.webrtcUp)
        case "media":
            sink.yield(
                .media(
                    type: m["type"]?.string ?? "", mid: m["mid"]?.string, receiving: m["receiving"]?.bool ?? false))
        case "slowlink": sink.yield(.slowLink(uplink: m["uplink"]?.bool ?? false, lost: m["lost"]?.int))
        case "hangup": sink.yield(.hangup(reason: m["reason"]?.string))
        case "detached":
            sink.yield(.detached)
            detached(sender)
        default: break
        }
    }

    private func connectionEnded(_ reason: String) {
        guard ended == nil else { return }
        ended = reason
        keepalive?.cancel()
        for (_, p) in pending {
            p.timer?.cancel()
            p.continuation.resume(returning: .failure(.disconnected(reason)))
        }
        pending = [:]
        for (_, sink) in handles { sink.finish() }
        handles = [:]
        disconnectedSink.yield(reason)
        disconnectedSink.finish()
    }
}

/// A plugin handle of a ``JanusSession``.
public struct JanusHandle: Sendable {
    /// The handle id Janus assigned.
    public let id: Int64
    /// The session it belongs to.
    public let session: JanusSession
    /// Events about this handle; ends when the handle is detached or the connection ends.
    public let events: AsyncStream<JanusHandleEvent>

    /// Sends a plugin message (`body`, and an offer or answer as `jsep`) and returns the
    /// plugin's answer: the synchronous reply, or the event carrying this transaction.
    /// - Throws: ``JanusError``, with the plugin's code for a refused request.
    public func request(_ body: JSONValue, jsep: JSONValue? = nil) async throws(JanusError) -> JanusResponse {
        var message: [String: JSONValue] = ["janus": "message", "body": body]
        if let jsep { message["jsep"] = jsep }
        return try await session.send(
            .object(message), handle: id, what: body["request"]?.string ?? "message", ackIsEnough: false)
    }

    /// Sends a plugin message that Janus only acknowledges now and answers later as an
    /// event (the answer then arrives on ``events``).
    public func post(_ body: JSONValue, jsep: JSONValue? = nil) async throws(JanusError) {
        var message: [String: JSONValue] = ["janus": "message", "body": body]
        if let jsep { message["jsep"] = jsep }
        _ = try await session.send(
            .object(message), handle: id, what: body["request"]?.string ?? "message", ackIsEnough: true)
    }

    /// Trickles a local candidate (`a=candidate` value with its mid), or, with nil, the end
    /// of candidates.
    public func trickle(candidate: String?, mid: String = "0", mLineIndex: Int = 0) async throws(JanusError) {
        let c: JSONValue =
            candidate.map {
                [
                    "candidate": .string("candidate:" + $0), "sdpMid": .string(mid),
                    "sdpMLineIndex": .int(Int64(mLineIndex)),
                ]
            }
            ?? ["completed": true]
        _ = try await session.send(
            ["janus": "trickle", "candidate": c], handle: id, what: "trickle", ackIsEnough: true)
    }

    /// Detaches the handle (its PeerConnection is closed by Janus).
    public func detach() async throws(JanusError) {
        _ = try await session.send(["janus": "detach"], handle: id, what: "detach", ackIsEnough: false)
        await session.detached(id)
    }
}
