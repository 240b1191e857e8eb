import MeetKitNet
import MeetKitSDP

/// A full ICE agent (RFC 8445) for one data stream with one component (WebRTC's BUNDLE and
/// rtcp-mux), with trickle (RFC 8838) and consent freshness (RFC 7675). Sans-IO: it never
/// touches a socket or a clock. Feed it datagrams, remote candidates and timeouts with the
/// current time; take the datagrams it wants sent and the events it reports.
///
/// ```swift
/// var agent = ICEAgent(configuration: config)
/// agent.startGathering(localAddresses: [TransportAddress("192.0.2.10:50000")!], now: now)
/// agent.setRemoteCredentials(remote, now: now)
/// agent.addRemoteCandidate(candidate, now: now)
/// // After every input, until it says to wait:
/// switch agent.pollOutput() {
/// case .transmit(let t): socket(t.from).send(t.data, to: t.to)
/// case .event(let e): handle(e)
/// case .wait(let deadline): timer.schedule(deadline)
/// }
/// // on a STUN datagram:   agent.handleStun(bytes, from: source, to: localBase, now: now)
/// // at agent.nextDeadline: agent.handleTimeout(now: now)
/// ```
public struct ICEAgent: Sendable {
    /// Most remote candidates an agent keeps; later ones are dropped (a hostile peer can
    /// send thousands, each one a check to run).
    public static let maxRemoteCandidates = 256

    /// Counters of what was dropped and why.
    public struct Statistics: Sendable, Equatable {
        /// STUN datagrams that did not parse.
        public var malformed = 0
        /// Messages with a missing or wrong MESSAGE-INTEGRITY, or a bad USERNAME.
        public var badIntegrity = 0
        /// Messages with a missing or wrong FINGERPRINT.
        public var badFingerprint = 0
        /// Responses matching no outstanding transaction.
        public var unmatchedResponses = 0
        /// Connectivity checks sent (retransmissions included).
        public var checksSent = 0
        /// Connectivity checks answered.
        public var checksReceived = 0
    }

    enum PairState: Sendable, Equatable { case frozen, waiting, inProgress, succeeded, failed }

    struct PairKey: Sendable, Hashable {
        var local: TransportAddress
        var remote: TransportAddress
    }

    struct Pair: Sendable {
        var key: PairKey
        var localPriority: UInt32
        var remotePriority: UInt32
        var foundation: String
        var state: PairState = .frozen
        var nominated = false
        var nominateOnSuccess = false
        var priority: UInt64 = 0
    }

    struct Local: Sendable {
        var candidate: ICECandidate
        var base: TransportAddress
        var localPreference: UInt32
    }

    enum Purpose: Sendable {
        case check(PairKey, useCandidate: Bool, controlling: Bool)
        case gather(server: TransportAddress, base: TransportAddress)
        case consent(PairKey)
    }

    struct Outstanding: Sendable {
        var transaction: STUNClientTransaction
        var purpose: Purpose
        var from: TransportAddress
        var to: TransportAddress
    }

    /// The settings.
    public let configuration: ICEConfiguration
    /// The current role.
    public internal(set) var role: ICERole
    /// This agent's credentials (changed by ``restart(now:)``).
    public internal(set) var localCredentials: ICECredentials
    /// The peer's credentials, once known.
    public internal(set) var remoteCredentials: ICECredentials?
    /// Whether the peer is an ICE-lite agent.
    public internal(set) var remoteIsLite = false
    /// The connection state.
    public internal(set) var state: ICEConnectionState = .new
    /// Drop counters.
    public internal(set) var statistics = Statistics()
    /// Whether gathering has completed (host candidates, and every STUN server answered or
    /// gave up); an ICE restart gathers again.
    public var gatheringComplete: Bool { gatheringReported }

    /// Local candidates gathered so far.
    public var localCandidates: [ICECandidate] { locals.map(\.candidate) }
    /// Remote candidates known so far (peer-reflexive ones included).
    public internal(set) var remoteCandidates: [ICECandidate] = []

    var rng: ICERandom
    var tieBreaker: UInt64
    var locals: [Local] = []
    var remoteAddresses: Set<TransportAddress> = []
    var remoteEnded = false
    var lastRemoteCandidateAt: Duration = .zero
    var pairs: [PairKey: Pair] = [:]
    var triggered: [PairKey] = []
    var selected: PairKey?
    var nominating: PairKey?
    var firstValidAt: Duration?
    var transactions: [STUNTransactionID: Outstanding] = [:]
    var gatheringPending = 0
    var gatheringStarted = false
    var gatheringReported = false
    var nextCheckAt: Duration?
    var checkingStartedAt: Duration?
    var lastReceived: Duration = .zero
    var lastConsent: Duration = .zero
    var nextConsentAt: Duration?
    var transmits = OutputQueue<Datagram>()
    var events = OutputQueue<ICEEvent>()
    var prflxCounter = 0
    var foundations: [String: String] = [:]

    /// Creates an agent in state `new`.
    public init(configuration: ICEConfiguration = .init()) {
        self.configuration = configuration
        var rng = ICERandom(seed: configuration.seed ?? UInt64.random(in: 0...UInt64.max))
        role = configuration.role
        localCredentials = configuration.credentials ?? .random(using: &rng)
        tieBreaker = rng.next()
        self.rng = rng
    }

    // MARK: outputs

    /// The agent's next output: datagrams to send (oldest first), then events, then the
    /// time ``handleTimeout(now:)`` is due (see ``MachineOutput``).
    public mutating func pollOutput() -> MachineOutput<ICEEvent> {
        if let datagram = transmits.next() { return .transmit(datagram) }
        if let event = events.next() { return .event(event) }
        return .wait(until: nextDeadline)
    }

    /// The pair application data uses: send from `local` (a socket's address) to `remote`.
    public var selectedPair: (local: TransportAddress, remote: TransportAddress)? {
        selected.map { ($0.local, $0.remote) }
    }

    /// When ``handleTimeout(now:)`` must next be called, or nil when nothing is pending.
    public var nextDeadline: Duration? {
        guard state != .closed else { return nil }
        var deadline: Duration? = nil
        func consider(_ t: Duration?) {
            if let t, deadline == nil || t < deadline! { deadline = t }
        }
        for o in transactions.values { consider(o.transaction.nextDeadline) }
        if hasCheckWork { consider(nextCheckAt) }
        if selected != nil, state != .failed {
            consider(nextConsentAt)
            if state != .disconnected { consider(lastReceived + configuration.disconnectedTimeout) }
            consider(lastConsent + configuration.consentTimeout)
        } else if let start = checkingStartedAt, state == .checking {
            // Only deadlines that will change something when they pass: a deadline left in
            // the past would make a driver spin.
            consider(start + configuration.connectTimeout)
            if !remoteEnded, allPairsFailed { consider(lastRemoteCandidateAt + configuration.remoteCandidateGrace) }
            if let first = firstValidAt, role == .controlling, nominating == nil {
                consider(first + configuration.nominationDelay)
            }
        }
        return deadline
    }

    var allPairsFailed: Bool { !pairs.isEmpty && pairs.values.allSatisfy { $0.state == .failed } }

    var hasCheckWork: Bool {
        remoteCredentials != nil
            && (!triggered.isEmpty || pairs.values.contains { $0.state == .waiting || $0.state == .frozen })
    }

    mutating func setState(_ new: ICEConnectionState) {
        guard new != state, state != .closed else { return }
        state = new
        events.append(.stateChanged(new))
    }

}

/// SplitMix64: the agent's own deterministic random numbers.
struct ICERandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
