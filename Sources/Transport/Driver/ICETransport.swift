import NIOCore
import NIOPosix

/// An ICE agent running over real UDP sockets: the SwiftNIO driver of ``ICEAgent``.
///
/// It binds one UDP socket per local address, feeds the agent every datagram with the
/// current time, fires its timers, and sends what it asks. STUN goes to the agent;
/// other datagrams (DTLS, RTP — RFC 7983) come out of ``incoming``. All of it runs on one
/// event loop, so the agent needs no locks. ``close()`` releases every socket.
///
/// ```swift
/// let ice = try await ICETransport.start(localAddresses: [IPAddress("127.0.0.1")!])
/// // signal ice.localCredentials and the candidates from ice.events to the peer, then:
/// await ice.setRemote(credentials: remote, candidates: candidates, endOfCandidates: true)
/// for await event in ice.events { if case .stateChanged(.connected) = event { break } }
/// try await ice.send([0x80, 0x01])
/// ```
public final class ICETransport: Sendable {
    /// A datagram that is not STUN, with the pair it came on.
    public struct Datagram: Sendable {
        /// The bytes.
        public var data: [UInt8]
        /// Who sent it.
        public var source: TransportAddress
        /// The local socket it arrived on.
        public var local: TransportAddress
    }

    /// Errors of the driver.
    public enum Failure: Error, Sendable, Equatable {
        /// No pair is selected yet: nothing can be sent.
        case notConnected
        /// The transport is closed.
        case closed
        /// A local address could not be bound.
        case bindFailed(String)
    }

    private final class Core {
        var agent: ICEAgent
        var channels: [TransportAddress: Channel] = [:]
        var timer: Scheduled<Void>?
        var timerDeadline: Duration?
        var closed = false
        init(agent: ICEAgent) { self.agent = agent }
    }

    /// The agent's events: candidates, gathering complete, state and pair changes.
    public let events: AsyncStream<ICEEvent>
    /// Application datagrams (anything but STUN) received on the sockets.
    public let incoming: AsyncStream<Datagram>
    /// This side's ICE credentials.
    public let localCredentials: ICECredentials
    /// The event loop everything runs on.
    public let eventLoop: any EventLoop

    private let core: NIOLoopBound<Core>
    private let origin: NIODeadline
    private let eventSink: AsyncStream<ICEEvent>.Continuation
    private let incomingSink: AsyncStream<Datagram>.Continuation

    private init(agent: ICEAgent, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        localCredentials = agent.localCredentials
        core = NIOLoopBound(Core(agent: agent), eventLoop: eventLoop)
        origin = .now()
        (events, eventSink) = AsyncStream.makeStream(of: ICEEvent.self)
        (incoming, incomingSink) = AsyncStream.makeStream(of: Datagram.self, bufferingPolicy: .bufferingNewest(4096))
    }

    /// Binds a UDP socket on each of `localAddresses` (port 0: any free port) and starts
    /// gathering. Loopback addresses are allowed, which tests use.
    public static func start(
        configuration: ICEConfiguration = .init(), localAddresses: [IPAddress], port: UInt16 = 0,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ICETransport {
        let loop = group.next()
        let agent = ICEAgent(configuration: configuration)
        // The loop-bound state must be created on its loop.
        let transport = try await loop.submit { ICETransport(agent: agent, eventLoop: loop) }.get()
        var bound: [TransportAddress] = []
        do {
            for ip in localAddresses {
                // Bind from the loop's own thread, so the socket is created there (a loop
                // whose thread entered a network namespace binds inside it).
                let host = ip.description
                let channel = try await loop.flatSubmit {
                    DatagramBootstrap(group: loop)
                        .channelOption(.socketOption(.so_reuseaddr), value: 1)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(DatagramHandler(transport: transport))
                            }
                        }
                        .bind(host: host, port: Int(port))
                }.get()
                guard let local = channel.localAddress.flatMap(TransportAddress.init(nio:)) else {
                    try? await channel.close()
                    throw Failure.bindFailed(ip.description)
                }
                bound.append(local)
                try await loop.submit { transport.core.value.channels[local] = channel }.get()
            }
        } catch {
            await transport.close()
            throw error
        }
        let addresses = bound
        try await loop.submit {
            transport.core.value.agent.startGathering(localAddresses: addresses, now: transport.now())
            transport.pump()
        }.get()
        return transport
    }

    /// Time since the transport started, on the loop's monotonic clock.
    private func now() -> Duration {
        .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds) - Int64(origin.uptimeNanoseconds))
    }

    /// Sends what the agent wants sent, reports its events, and re-arms its timer.
    private func pump() {
        let core = self.core.value
        guard !core.closed else { return }
        for t in core.agent.drainTransmits() { write(t.data, from: t.from, to: t.to) }
        for e in core.agent.drainEvents() { eventSink.yield(e) }
        let deadline = core.agent.nextDeadline
        if deadline != core.timerDeadline {
            core.timer?.cancel()
            core.timerDeadline = deadline
            core.timer = deadline.map { d in
                let nanos = d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
                return eventLoop.scheduleTask(deadline: origin + .nanoseconds(nanos)) { [self] in
                    let core = self.core.value
                    core.timerDeadline = nil
                    core.agent.handleTimeout(now: self.now())
                    self.pump()
                }
            }
        }
    }

    private func write(_ data: [UInt8], from: TransportAddress, to: TransportAddress) {
        guard let channel = core.value.channels[from], let address = try? to.nioAddress() else { return }
        let buffer = channel.allocator.buffer(bytes: data)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    }

    /// Called on the loop by a socket's handler.
    fileprivate func received(_ data: [UInt8], from source: TransportAddress, on local: TransportAddress) {
        let core = self.core.value
        guard !core.closed else { return }
        switch DatagramKind(data) {
        case .stun:
            core.agent.handleStun(data, from: source, to: local, now: now())
        case .unknown:
            return
        default:
            core.agent.noteReceived(from: source, to: local, now: now())
            incomingSink.yield(Datagram(data: data, source: source, local: local))
        }
        pump()
    }

    // MARK: API

    /// Candidates gathered so far.
    public func localCandidates() async throws -> [ICECandidate] {
        try await eventLoop.submit { self.core.value.agent.localCandidates }.get()
    }

    /// The current connection state.
    public func state() async throws -> ICEConnectionState {
        try await eventLoop.submit { self.core.value.agent.state }.get()
    }

    /// The selected pair, if any.
    public func selectedPair() async throws -> (local: TransportAddress, remote: TransportAddress)? {
        try await eventLoop.submit { self.core.value.agent.selectedPair }.get()
    }

    /// The agent's drop counters.
    public func statistics() async throws -> ICEAgent.Statistics {
        try await eventLoop.submit { self.core.value.agent.statistics }.get()
    }

    /// Gives the agent what the peer signalled.
    public func setRemote(
        credentials: ICECredentials, isLite: Bool = false, candidates: [ICECandidate] = [],
        endOfCandidates: Bool = false
    ) async throws {
        try await eventLoop.submit {
            let now = self.now()
            let core = self.core.value
            core.agent.setRemoteCredentials(credentials, isLite: isLite, now: now)
            for c in candidates { core.agent.addRemoteCandidate(c, now: now) }
            if endOfCandidates { core.agent.setRemoteEndOfCandidates(now: now) }
            self.pump()
        }.get()
    }

    /// Adds a trickled remote candidate.
    public func addRemoteCandidate(_ candidate: ICECandidate) async throws {
        try await eventLoop.submit {
            self.core.value.agent.addRemoteCandidate(candidate, now: self.now())
            self.pump()
        }.get()
    }

    /// The peer signalled end-of-candidates.
    public func setRemoteEndOfCandidates() async throws {
        try await eventLoop.submit {
            self.core.value.agent.setRemoteEndOfCandidates(now: self.now())
            self.pump()
        }.get()
    }

    /// Sends an application datagram on the selected pair.
    /// - Throws: ``Failure/notConnected`` before a pair is selected, ``Failure/closed`` after close.
    public func send(_ data: [UInt8]) async throws {
        try await eventLoop.submit {
            let core = self.core.value
            guard !core.closed else { throw Failure.closed }
            guard let pair = core.agent.selectedPair else { throw Failure.notConnected }
            self.write(data, from: pair.local, to: pair.remote)
        }.get()
    }

    /// Stops the agent, closes every socket, and ends both streams.
    public func close() async {
        let channels: [Channel] =
            (try? await eventLoop.submit {
                let core = self.core.value
                core.closed = true
                core.timer?.cancel()
                core.agent.close()
                for e in core.agent.drainEvents() { self.eventSink.yield(e) }
                defer { core.channels = [:] }
                return Array(core.channels.values)
            }.get()) ?? []
        for channel in channels { try? await channel.close() }
        eventSink.finish()
        incomingSink.finish()
    }
}

/// Reads datagrams from one socket into the transport.
private final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let transport: ICETransport
    var local: TransportAddress?

    init(transport: ICETransport) { self.transport = transport }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if local == nil { local = context.channel.localAddress.flatMap(TransportAddress.init(nio:)) }
        guard let local, let source = TransportAddress(nio: envelope.remoteAddress) else { return }
        var buffer = envelope.data
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        transport.received(bytes, from: source, on: local)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP errors (port unreachable) surface here on connected UDP; checks simply fail.
    }
}

extension TransportAddress {
    /// The address of a NIO socket address; nil for Unix sockets.
    init?(nio address: SocketAddress) {
        guard let ip = address.ipAddress.flatMap(IPAddress.init), let port = address.port else { return nil }
        self.init(ip: ip, port: UInt16(port))
    }

    func nioAddress() throws -> SocketAddress { try SocketAddress(ipAddress: ip.description, port: Int(port)) }
}
