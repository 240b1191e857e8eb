import Synchronization

/// A WebRTC data channel of a ``PeerConnection`` (RFC 8831): messages both ways over SCTP,
/// with the delivery its options ask for.
///
/// ```swift
/// let chat = try await pc.createDataChannel(label: "chat")
/// try await chat.opened()                   // acknowledged by the peer
/// try await chat.send("bonjour")
/// for await message in chat.messages { if case .text(let s) = message { print(s) } }
/// ```
///
/// ``send(_:)-(String)`` waits while more than ``highWaterMark`` bytes are queued on the
/// channel, until they drain to ``lowWaterMark``: a sender that outruns the network waits
/// instead of growing memory.
public final class DataChannel: Sendable {
    /// A channel's life (the W3C `RTCDataChannelState`).
    public enum State: Sendable, Equatable {
        case connecting, open, closing, closed
    }

    /// The label given when it was created.
    public let label: String
    /// Its delivery options (and, once known, its stream id).
    public let options: DataChannelOptions
    /// Messages received, in the order delivered; ends when the channel closes. Until a
    /// message is read here it counts against the connection's SCTP receive window (1 MiB
    /// by default): a reader that falls behind slows the peer down, memory stays bounded.
    /// Read the messages of every channel (or close it).
    public let messages: Messages
    /// Queued bytes above which ``send(_:)-(String)`` waits.
    public let highWaterMark: Int
    /// Queued bytes at which a waiting send goes on.
    public let lowWaterMark: Int

    let handle: Int
    private let driver: UDPDriver<PeerConnectionCore>
    private let sink: AsyncStream<DataChannelMessage>.Continuation

    private struct Storage {
        var state: State = .connecting
        var id: UInt16?
        var openWaiters: [CheckedContinuation<Void, any Error>] = []
        /// bufferedAmountLow events seen: a waiting sender resumes when this moves on.
        var drains = 0
        var drainWaiters: [(after: Int, CheckedContinuation<Void, any Error>)] = []
    }
    private let storage = Mutex(Storage())

    init(
        handle: Int, label: String, options: DataChannelOptions, driver: UDPDriver<PeerConnectionCore>,
        highWaterMark: Int = 1 << 20, lowWaterMark: Int = 256 << 10
    ) {
        self.handle = handle
        self.label = label
        self.options = options
        self.driver = driver
        self.highWaterMark = highWaterMark
        self.lowWaterMark = lowWaterMark
        let (stream, sink) = AsyncStream.makeStream(of: DataChannelMessage.self)
        self.sink = sink
        messages = Messages(stream: stream) { bytes in
            driver.schedule { pc, now in pc.releaseDataChannelBytes(bytes, now: now) }
        }
    }

    /// The messages of a channel, releasing each one's bytes to the receive window as it
    /// is read.
    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = DataChannelMessage
        let stream: AsyncStream<DataChannelMessage>
        let release: @Sendable (Int) -> Void

        public struct AsyncIterator: AsyncIteratorProtocol {
            var base: AsyncStream<DataChannelMessage>.AsyncIterator
            let release: @Sendable (Int) -> Void

            public mutating func next() async -> DataChannelMessage? {
                guard let message = await base.next() else { return nil }
                // An empty message travels as one byte.
                release(Swift.max(1, message.byteCount))
                return message
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: stream.makeAsyncIterator(), release: release)
        }
    }

    /// The state.
    public var state: State { storage.withLock { $0.state } }
    /// The SCTP stream id, once the DTLS role is known and the channel announced.
    public var id: UInt16? { storage.withLock { $0.id } }

    /// Returns once the channel is open.
    /// - Throws: ``PeerConnectionError/dataChannel(_:)`` when it closed before opening.
    public func opened() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            storage.withLock { s in
                switch s.state {
                case .open: c.resume()
                case .connecting: s.openWaiters.append(c)
                case .closing, .closed: c.resume(throwing: PeerConnectionError.dataChannel(.noSuchChannel(handle)))
                }
            }
        }
    }

    /// Sends a string.
    public func send(_ text: String) async throws { try await send(.text(text)) }

    /// Sends bytes.
    public func send(_ bytes: [UInt8]) async throws { try await send(.binary(bytes)) }

    /// Sends a message once the channel is open, waiting first while more than
    /// ``highWaterMark`` bytes are queued.
    /// - Throws: ``PeerConnectionError/dataChannel(_:)``: too large for the peer (nothing
    ///   sent), or the channel closed.
    public func send(_ message: DataChannelMessage) async throws {
        try await opened()
        let (handle, high, low) = (self.handle, highWaterMark, lowWaterMark)
        while true {
            let drains = storage.withLock { $0.drains }
            let sent = try await driver.perform { pc, now -> Bool in
                pc.setBufferedAmountLowThreshold(low, dataChannel: handle)
                guard pc.bufferedAmount(dataChannel: handle) <= high else { return false }
                try pc.sendData(message, channel: handle, now: now)
                return true
            }
            if sent { return }
            try await drained(after: drains)
        }
    }

    /// Bytes queued on the channel and not yet sent.
    public func bufferedAmount() async throws -> Int {
        let handle = self.handle
        return try await driver.perform { pc, _ in pc.bufferedAmount(dataChannel: handle) }
    }

    /// Closes the channel: what is queued still goes, then the peer is told; ``messages``
    /// ends once both directions are closed.
    public func close() async {
        let handle = self.handle
        storage.withLock { if $0.state != .closed { $0.state = .closing } }
        _ = try? await driver.perform { pc, now in pc.closeDataChannel(handle, now: now) }
    }

    private func drained(after count: Int) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            storage.withLock { s in
                if s.drains > count {
                    c.resume()
                } else if s.state == .closed {
                    c.resume(throwing: PeerConnectionError.dataChannel(.noSuchChannel(handle)))
                } else {
                    s.drainWaiters.append((count, c))
                }
            }
        }
    }

    // MARK: events, on the connection's event loop

    func didOpen(id: UInt16) {
        let waiters = storage.withLock { s in
            s.id = id
            if s.state == .connecting { s.state = .open }
            defer { s.openWaiters = [] }
            return s.openWaiters
        }
        for w in waiters { w.resume() }
    }

    func deliver(_ message: DataChannelMessage) { sink.yield(message) }

    func didDrain() {
        let waiters = storage.withLock { s in
            s.drains += 1
            defer { s.drainWaiters = [] }
            return s.drainWaiters.map(\.1)
        }
        for w in waiters { w.resume() }
    }

    func didClose() {
        let (open, drain) = storage.withLock { s in
            s.state = .closed
            defer {
                s.openWaiters = []
                s.drainWaiters = []
            }
            return (s.openWaiters, s.drainWaiters.map(\.1))
        }
        let error = PeerConnectionError.dataChannel(.noSuchChannel(handle))
        for w in open { w.resume(throwing: error) }
        for w in drain { w.resume(throwing: error) }
        sink.finish()
    }
}

/// The data channels of one PeerConnection, fed its events on the event loop.
final class DataChannelRegistry: Sendable {
    private let channels = Mutex<[Int: DataChannel]>([:])
    /// Channels the peer opened.
    let remote: AsyncStream<DataChannel>
    private let remoteSink: AsyncStream<DataChannel>.Continuation
    private let driver: Mutex<UDPDriver<PeerConnectionCore>?> = Mutex(nil)

    init() { (remote, remoteSink) = AsyncStream.makeStream(of: DataChannel.self) }

    func attach(_ driver: UDPDriver<PeerConnectionCore>) { self.driver.withLock { $0 = driver } }

    func add(_ channel: DataChannel) { channels.withLock { $0[channel.handle] = channel } }

    func route(_ event: PeerConnectionCore.Event) {
        guard case .dataChannel(let e) = event else { return }
        switch e {
        case .opened(let handle, let id, let label, let options, let remote):
            if remote {
                guard let driver = driver.withLock({ $0 }) else { return }
                let channel = DataChannel(handle: handle, label: label, options: options, driver: driver)
                add(channel)
                channel.didOpen(id: id)
                remoteSink.yield(channel)
            } else {
                channels.withLock { $0[handle] }?.didOpen(id: id)
            }
        case .message(let handle, let message):
            channels.withLock { $0[handle] }?.deliver(message)
        case .bufferedAmountLow(let handle):
            channels.withLock { $0[handle] }?.didDrain()
        case .closed(let handle):
            channels.withLock { $0.removeValue(forKey: handle) }?.didClose()
        case .failed:
            closeAll()
        case .connected:
            break
        }
    }

    /// Closes every channel and lets go of them (and of the driver).
    func closeAll() {
        let all = channels.withLock { c in
            defer { c = [:] }
            return Array(c.values)
        }
        for c in all { c.didClose() }
        driver.withLock { $0 = nil }
        remoteSink.finish()
    }
}
