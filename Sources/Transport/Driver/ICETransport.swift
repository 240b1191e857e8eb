import NIOCore
import NIOPosix

/// An ICE agent running over real UDP sockets: ``ICEAgent`` on a ``UDPDriver``.
///
/// STUN goes to the agent; other datagrams (DTLS, RTP — RFC 7983) come out of
/// ``incoming``. All of it runs on one event loop, so the agent needs no locks.
/// ``close()`` releases every socket.
///
/// ```swift
/// let ice = try await ICETransport.start(localAddresses: [IPAddress("127.0.0.1")!])
/// // signal ice.localCredentials and the candidates from ice.events to the peer, then:
/// try await ice.setRemote(credentials: remote, candidates: candidates, endOfCandidates: true)
/// for await event in ice.events { if case .stateChanged(.connected) = event { break } }
/// try await ice.send([0x80, 0x01])
/// ```
public final class ICETransport: Sendable {
    /// A datagram that is not STUN, with the pair it came on.
    public struct Received: Sendable {
        /// The bytes.
        public var data: [UInt8]
        /// Who sent it.
        public var source: TransportAddress
        /// The local socket it arrived on.
        public var local: TransportAddress
    }

    /// Errors of the transport (besides its driver's ``UDPDriverError``).
    public enum Failure: Error, Sendable, Equatable {
        /// No pair is selected yet: nothing can be sent.
        case notConnected
    }

    /// The agent as a datagram machine: STUN to the agent, the rest to `incoming`.
    final class Machine: DatagramMachine {
        var agent: ICEAgent
        var appTransmits = OutputQueue<Datagram>()
        let incoming: AsyncStream<Received>.Continuation

        init(agent: ICEAgent, incoming: AsyncStream<Received>.Continuation) {
            self.agent = agent
            self.incoming = incoming
        }

        func handleDatagram(
            _ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
        ) {
            switch DatagramKind(data) {
            case .stun: agent.handleStun(data, from: source, to: local, now: now)
            case .unknown: return
            default:
                agent.noteReceived(from: source, to: local, now: now)
                incoming.yield(Received(data: data, source: source, local: local))
            }
        }

        func handleTimeout(now: Duration) { agent.handleTimeout(now: now) }

        func pollOutput() -> MachineOutput<ICEEvent> {
            if let datagram = appTransmits.next() { return .transmit(datagram) }
            return agent.pollOutput()
        }
    }

    /// The agent's events: candidates, gathering complete, state and pair changes.
    public let events: AsyncStream<ICEEvent>
    /// Application datagrams (anything but STUN) received on the sockets.
    public let incoming: AsyncStream<Received>
    /// This side's ICE credentials.
    public let localCredentials: ICECredentials
    private let driver: UDPDriver<Machine>
    private let eventSink: AsyncStream<ICEEvent>.Continuation
    private let incomingSink: AsyncStream<Received>.Continuation

    /// The event loop everything runs on.
    public var eventLoop: any EventLoop { driver.eventLoop }

    private init(
        driver: UDPDriver<Machine>, credentials: ICECredentials, events: AsyncStream<ICEEvent>,
        eventSink: AsyncStream<ICEEvent>.Continuation, incoming: AsyncStream<Received>,
        incomingSink: AsyncStream<Received>.Continuation
    ) {
        self.driver = driver
        localCredentials = credentials
        self.events = events
        self.eventSink = eventSink
        self.incoming = incoming
        self.incomingSink = incomingSink
    }

    /// Binds a UDP socket on each of `localAddresses` (port 0: any free port) and starts
    /// gathering. Loopback addresses are allowed, which tests use.
    public static func start(
        configuration: ICEConfiguration = .init(), localAddresses: [IPAddress], port: UInt16 = 0,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ICETransport {
        let (events, eventSink) = AsyncStream.makeStream(of: ICEEvent.self)
        let (incoming, incomingSink) = AsyncStream.makeStream(
            of: Received.self, bufferingPolicy: .bufferingNewest(4096))
        let agent = ICEAgent(configuration: configuration)
        do {
            let driver = try await UDPDriver<Machine>.start(
                localAddresses: localAddresses, port: port, group: group,
                onEvent: { eventSink.yield($0) },
                started: { machine, addresses, now in machine.agent.startGathering(localAddresses: addresses, now: now)
                },
                makeMachine: { Machine(agent: agent, incoming: incomingSink) })
            return ICETransport(
                driver: driver, credentials: agent.localCredentials, events: events, eventSink: eventSink,
                incoming: incoming, incomingSink: incomingSink)
        } catch {
            eventSink.finish()
            incomingSink.finish()
            throw error
        }
    }

    private func onAgent<R: Sendable>(_ body: @escaping @Sendable (inout ICEAgent, Duration) throws -> R) async throws
        -> R
    {
        try await driver.perform { machine, now in try body(&machine.agent, now) }
    }

    /// Candidates gathered so far.
    public func localCandidates() async throws -> [ICECandidate] {
        try await onAgent { agent, _ in agent.localCandidates }
    }

    /// The current connection state.
    public func state() async throws -> ICEConnectionState { try await onAgent { agent, _ in agent.state } }

    /// The selected pair, if any.
    public func selectedPair() async throws -> (local: TransportAddress, remote: TransportAddress)? {
        try await onAgent { agent, _ in agent.selectedPair }
    }

    /// The agent's drop counters.
    public func statistics() async throws -> ICEAgent.Statistics { try await onAgent { agent, _ in agent.statistics } }

    /// Gives the agent what the peer signalled.
    public func setRemote(
        credentials: ICECredentials, isLite: Bool = false, candidates: [ICECandidate] = [],
        endOfCandidates: Bool = false
    ) async throws {
        try await onAgent { agent, now in
            agent.setRemoteCredentials(credentials, isLite: isLite, now: now)
            for c in candidates { agent.addRemoteCandidate(c, now: now) }
            if endOfCandidates { agent.setRemoteEndOfCandidates(now: now) }
        }
    }

    /// Adds a trickled remote candidate.
    public func addRemoteCandidate(_ candidate: ICECandidate) async throws {
        try await onAgent { agent, now in agent.addRemoteCandidate(candidate, now: now) }
    }

    /// The peer signalled end-of-candidates.
    public func setRemoteEndOfCandidates() async throws {
        try await onAgent { agent, now in agent.setRemoteEndOfCandidates(now: now) }
    }

    /// Sends an application datagram on the selected pair.
    /// - Throws: ``Failure/notConnected`` before a pair is selected, ``UDPDriverError/closed``
    ///   after close.
    public func send(_ data: [UInt8]) async throws {
        try await driver.perform { machine, _ in
            guard let pair = machine.agent.selectedPair else { throw Failure.notConnected }
            machine.appTransmits.append(Datagram(from: pair.local, to: pair.remote, data: data))
        }
    }

    /// Stops the agent, closes every socket, and ends both streams.
    public func close() async {
        await driver.close { machine, _ in machine.agent.close() }
        eventSink.finish()
        incomingSink.finish()
    }
}

extension TransportAddress {
    /// The address of a NIO socket address; nil for Unix sockets.
    init?(nio address: SocketAddress) {
        // From the socket address's bytes: every received datagram comes through here
        // (formatting and parsing its text cost more than routing the packet).
        switch address {
        case .v4(let a): self.init(a.address)
        case .v6(let a): self.init(a.address)
        case .unixDomainSocket: return nil
        }
    }

    func nioAddress() throws -> SocketAddress { try SocketAddress(ipAddress: ip.description, port: Int(port)) }
}
