import MeetKitNet
import MeetKitSDP

/// The ICE role (RFC 8445 §6.1.1): the controlling agent nominates the pair used.
public enum ICERole: String, Sendable, Hashable {
    case controlling, controlled
}

/// Connection states, as `RTCIceConnectionState` names them (W3C WebRTC §4.3.4).
public enum ICEConnectionState: String, Sendable, Hashable {
    /// Nothing to check yet.
    case new
    /// Checks in progress, no pair selected.
    case checking
    /// A pair is selected and usable; checks may continue.
    case connected
    /// A pair is selected and checking is over.
    case completed
    /// Nothing heard from the peer for a while on the selected pair; may recover.
    case disconnected
    /// No pair works, or consent expired (RFC 7675 §5.1).
    case failed
    /// Closed by the application.
    case closed
}

/// An ufrag and password (RFC 8445 §5.3).
public struct ICECredentials: Sendable, Hashable {
    /// Username fragment: at least 4 characters of ice-char.
    public var ufrag: String
    /// Password: at least 22 characters of ice-char.
    public var pwd: String

    /// Credentials from their parts.
    public init(ufrag: String, pwd: String) {
        self.ufrag = ufrag
        self.pwd = pwd
    }

    /// Random credentials: 8-character ufrag, 24-character password (ALPHA / DIGIT / "+" / "/").
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> ICECredentials {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        func draw(_ n: Int) -> String { String((0..<n).map { _ in alphabet.randomElement(using: &generator)! }) }
        return ICECredentials(ufrag: draw(8), pwd: draw(24))
    }
}

/// What an ICE agent reports.
public enum ICEEvent: Sendable, Hashable {
    /// A new local candidate to signal to the peer (trickle ICE, RFC 8838).
    case localCandidate(ICECandidate)
    /// Local gathering is done: signal end-of-candidates.
    case gatheringComplete
    /// The connection state changed.
    case stateChanged(ICEConnectionState)
    /// The pair application data uses changed: send from `local` to `remote`.
    case selectedPairChanged(local: TransportAddress, remote: TransportAddress)
    /// The role changed after a role conflict (RFC 8445 §7.3.1.1).
    case roleChanged(ICERole)
}

/// Settings of an ``ICEAgent``.
public struct ICEConfiguration: Sendable {
    /// The initial role; a remote ICE-lite agent forces controlling.
    public var role: ICERole = .controlling
    /// Local credentials; random when nil.
    public var credentials: ICECredentials?
    /// STUN servers for server-reflexive candidates. None by default: no traffic leaves
    /// the machine unless a server is configured.
    public var stunServers: [TransportAddress] = []
    /// Pacing of ordinary checks (Ta, RFC 8445 §14.2).
    public var checkInterval: Duration = .milliseconds(50)
    /// Retransmissions of one connectivity check.
    public var checkRetransmission = STUNRetransmissionPolicy(
        initialRTO: .milliseconds(250), maxTransmissions: 6, finalWaitMultiplier: 8)
    /// Retransmissions of server-reflexive gathering requests.
    public var gatheringRetransmission = STUNRetransmissionPolicy(
        initialRTO: .milliseconds(250), maxTransmissions: 5, finalWaitMultiplier: 8)
    /// How long the controlling agent waits, after the first valid pair, for a better pair
    /// to succeed before nominating.
    public var nominationDelay: Duration = .milliseconds(200)
    /// Interval of consent checks on the selected pair (RFC 7675 §5.1: 5 s, randomised ±20 %).
    public var consentInterval: Duration = .seconds(5)
    /// Silence on the selected pair after which the state is `disconnected`.
    public var disconnectedTimeout: Duration = .seconds(8)
    /// Time without a consent response after which the state is `failed` (RFC 7675: 30 s).
    public var consentTimeout: Duration = .seconds(30)
    /// Once every pair has failed, how long to wait for more remote candidates when the
    /// peer has not signalled end-of-candidates.
    public var remoteCandidateGrace: Duration = .seconds(5)
    /// Upper bound from the start of checks to a selected pair.
    public var connectTimeout: Duration = .seconds(30)
    /// Puts USE-CANDIDATE on every check when controlling (RFC 5245 aggressive nomination),
    /// as some older agents do. Off by default: RFC 8445 uses regular nomination.
    public var aggressiveNomination = false
    /// SOFTWARE attribute of outgoing requests; nil sends none.
    public var software: String? = nil
    /// Seed of the agent's random numbers (tie-breaker, transaction IDs, consent jitter);
    /// nil draws from the system.
    public var seed: UInt64? = nil

    /// The defaults.
    public init() {}
}
