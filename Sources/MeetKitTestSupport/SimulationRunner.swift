import Transport

/// A sans-IO machine attached to a ``SimulatedNetwork`` at one IP address.
public protocol SimulatedEndpoint: AnyObject {
    /// The endpoint's IP address (its host in the network).
    var ip: IPAddress { get }
    /// When the endpoint next needs ``handleTimeout(now:)``.
    var nextDeadline: Duration? { get }
    /// A datagram addressed to this endpoint arrived.
    func handle(_ datagram: SimulatedNetwork.Datagram, now: Duration)
    /// The deadline passed.
    func handleTimeout(now: Duration)
    /// Datagrams the endpoint wants sent now.
    func drainTransmits() -> [SimulatedNetwork.Datagram]
}

extension SimulatedNetwork {
    /// Runs endpoints in virtual time until `stop` returns true (→ true) or the clock
    /// reaches `limit` (→ false). Deliveries and timers are processed in time order.
    ///
    /// An endpoint whose deadline stays in the past without anything happening would spin
    /// forever; after 10 000 timer calls at one instant the run stops, returns false and
    /// records the instant in ``stalledAt``: a bug in that endpoint.
    @discardableResult
    public func run(_ endpoints: [any SimulatedEndpoint], until limit: Duration, stop: () -> Bool = { false }) -> Bool {
        var byIP: [IPAddress: any SimulatedEndpoint] = [:]
        for e in endpoints { byIP[e.ip] = e }
        var spinning = 0
        var lastTimer: Duration?
        while true {
            for e in endpoints { for d in e.drainTransmits() { send(d) } }
            if stop() { return true }
            let deadline = endpoints.compactMap(\.nextDeadline).min()
            let network = nextEventTime
            let next = [deadline, network].compactMap { $0 }.min()
            guard let next, next <= limit else {
                advance(to: limit)
                return stop()
            }
            if let network, network <= (deadline ?? .seconds(Int64.max / 2)) {
                if let (time, datagram) = receive(until: network) { byIP[datagram.to.ip]?.handle(datagram, now: time) }
            } else {
                spinning = lastTimer == next ? spinning + 1 : 0
                lastTimer = next
                if spinning > 10_000 {
                    stalledAt = next
                    return false
                }
                advance(to: next)
                for e in endpoints where (e.nextDeadline ?? .seconds(Int64.max / 2)) <= next {
                    e.handleTimeout(now: next)
                }
            }
        }
    }
}

/// A STUN server on the simulated network: answers Binding requests with the source
/// address it saw (XOR-MAPPED-ADDRESS), as a real one does for server-reflexive discovery.
public final class SimulatedSTUNServer: SimulatedEndpoint {
    /// The server's address.
    public let address: TransportAddress
    /// Requests answered.
    public private(set) var answered = 0
    private var out: [SimulatedNetwork.Datagram] = []

    /// A server listening at `address`.
    public init(address: TransportAddress) { self.address = address }

    public var ip: IPAddress { address.ip }
    public var nextDeadline: Duration? { nil }
    public func handleTimeout(now: Duration) {}

    public func handle(_ datagram: SimulatedNetwork.Datagram, now: Duration) {
        guard datagram.to == address, let request = try? STUNMessage(parsing: datagram.data),
            request.messageClass == .request, request.method == STUNMethod.binding
        else { return }
        var response = STUNMessage(
            class: .successResponse, method: STUNMethod.binding, transactionID: request.transactionID)
        response.xorMappedAddress = datagram.from
        out.append(.init(from: address, to: datagram.from, data: response.encoded(fingerprint: true)))
        answered += 1
    }

    public func drainTransmits() -> [SimulatedNetwork.Datagram] {
        defer { out = [] }
        return out
    }
}

/// An ICE agent on the simulated network, with a record of what it reported and the
/// application datagrams it received.
public final class SimulatedICEPeer: SimulatedEndpoint {
    /// The agent.
    public var agent: ICEAgent
    /// The socket's address.
    public let address: TransportAddress
    /// Events in order.
    public private(set) var events: [ICEEvent] = []
    /// States in order.
    public var states: [ICEConnectionState] {
        events.compactMap { if case .stateChanged(let s) = $0 { s } else { nil } }
    }
    /// Local candidates reported.
    public var candidates: [ICECandidate] {
        events.compactMap { if case .localCandidate(let c) = $0 { c } else { nil } }
    }
    /// Non-STUN datagrams received.
    public private(set) var received: [[UInt8]] = []
    /// When the state first became connected.
    public private(set) var connectedAt: Duration?
    private var out: [SimulatedNetwork.Datagram] = []
    private var now: Duration = .zero

    /// A peer bound to `address` running an agent with `configuration`.
    public init(address: TransportAddress, configuration: ICEConfiguration) {
        self.address = address
        agent = ICEAgent(configuration: configuration)
    }

    public var ip: IPAddress { address.ip }
    public var nextDeadline: Duration? { agent.nextDeadline }

    /// Gathers on the peer's single address.
    public func start(now: Duration) {
        agent.startGathering(localAddresses: [address], now: now)
        collect(now: now)
    }

    /// Sends application data on the selected pair; false when none is selected.
    @discardableResult
    public func sendData(_ bytes: [UInt8]) -> Bool {
        guard let pair = agent.selectedPair else { return false }
        out.append(.init(from: pair.local, to: pair.remote, data: bytes))
        return true
    }

    public func handle(_ datagram: SimulatedNetwork.Datagram, now: Duration) {
        if let first = datagram.data.first, STUNMessage.mightBeStun(firstByte: first) {
            agent.handleStun(datagram.data, from: datagram.from, to: datagram.to, now: now)
        } else {
            agent.noteReceived(from: datagram.from, to: datagram.to, now: now)
            received.append(datagram.data)
        }
        collect(now: now)
    }

    public func handleTimeout(now: Duration) {
        agent.handleTimeout(now: now)
        collect(now: now)
    }

    public func drainTransmits() -> [SimulatedNetwork.Datagram] {
        collect(now: now)
        defer { out = [] }
        return out
    }

    private func collect(now: Duration) {
        self.now = now
        while true {
            switch agent.pollOutput() {
            case .transmit(let t): out.append(t)
            case .event(let e):
                events.append(e)
                if case .stateChanged(.connected) = e, connectedAt == nil { connectedAt = now }
            case .wait: return
            }
        }
    }

    /// Tells this peer everything about `other` that signalling would carry: credentials,
    /// candidates gathered so far and, if `endOfCandidates`, that there are no more.
    public func learn(from other: SimulatedICEPeer, now: Duration, endOfCandidates: Bool = true) {
        agent.setRemoteCredentials(other.agent.localCredentials, now: now)
        for c in other.candidates { agent.addRemoteCandidate(c, now: now) }
        if endOfCandidates { agent.setRemoteEndOfCandidates(now: now) }
        collect(now: now)
    }
}

/// Any ``DatagramMachine`` (an ICE agent's transport, a secure media core, a
/// PeerConnection) on the simulated network at one address, driven only through its one
/// output call: after every input (and whenever the network asks for datagrams) it polls
/// the machine until it says to wait, handing events to `onEvent` with the time of the
/// latest input.
public final class SimulatedMachine<Machine: DatagramMachine>: SimulatedEndpoint {
    /// The machine.
    public let machine: Machine
    /// Its socket's address.
    public let address: TransportAddress
    /// Called with each event the machine hands out and the time of the latest input.
    public var onEvent: (Machine.Event, Duration) -> Void
    /// An extra deadline the test wants (e.g. to produce media), and what to do then.
    public var timer: (at: Duration, action: (Duration) -> Void)?
    /// Every event, in order, when `recordEvents` is set.
    public private(set) var events: [Machine.Event] = []
    /// Whether to keep every event in ``events``.
    public var recordEvents = false
    private var out: [SimulatedNetwork.Datagram] = []
    private var machineDeadline: Duration?
    private var now: Duration = .zero

    /// Wraps `machine` bound at `address`.
    public init(
        _ machine: Machine, address: TransportAddress,
        onEvent: @escaping (Machine.Event, Duration) -> Void = { _, _ in }
    ) {
        self.machine = machine
        self.address = address
        self.onEvent = onEvent
    }

    public var ip: IPAddress { address.ip }

    public var nextDeadline: Duration? { [machineDeadline, timer?.at].compactMap { $0 }.min() }

    public func handle(_ datagram: SimulatedNetwork.Datagram, now: Duration) {
        self.now = now
        machine.handleDatagram(datagram.data, from: datagram.from, to: datagram.to, now: now)
        poll()
    }

    public func handleTimeout(now: Duration) {
        self.now = now
        if let t = timer, now >= t.at {
            timer = nil
            t.action(now)
        }
        machine.handleTimeout(now: now)
        poll()
    }

    public func drainTransmits() -> [SimulatedNetwork.Datagram] {
        poll()
        defer { out.removeAll(keepingCapacity: true) }
        return out
    }

    /// Takes the machine's outputs until it says to wait. Also call it after driving the
    /// machine's API directly, to see the events at once (the network polls before it
    /// delivers anything anyway).
    public func poll() {
        machineDeadline = machine.drainOutputs(
            transmit: { out.append($0) },
            event: { event in
                if recordEvents { events.append(event) }
                onEvent(event, now)
            })
    }
}
