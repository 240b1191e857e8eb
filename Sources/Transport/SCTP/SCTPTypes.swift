/// The next thing an SCTP machine (``SCTPAssociation``, ``DataChannelEndpoint``) has to
/// do: its one output call returns this, as the other machines return `MachineOutput`.
public enum SCTPOutput<Event> {
    /// Send this SCTP packet (as one DTLS record).
    case transmit([UInt8])
    case event(Event)
    /// Nothing more until a packet arrives or this time passes (nil: no timer).
    case wait(until: Duration?)
}

/// How a message is delivered when the network loses it (RFC 3758's partial reliability,
/// as WebRTC data channels expose it, RFC 8831 §6.1).
public enum SCTPReliability: Sendable, Equatable {
    /// Retransmitted until acknowledged.
    case reliable
    /// Given up after this many retransmissions (0: sent once).
    case maxRetransmits(Int)
    /// Given up once this long has passed since it was queued.
    case lifetime(Duration)
}

/// Settings of an SCTP association. The defaults are WebRTC's (RFC 8831, RFC 8261).
public struct SCTPConfiguration: Sendable {
    /// This endpoint's port (`a=sctp-port`).
    public var localPort: UInt16 = 5000
    /// The peer's port.
    public var remotePort: UInt16 = 5000
    /// The largest SCTP packet sent, in bytes: what fits one DTLS record in a 1280-byte
    /// IPv6 datagram with room for UDP, DTLS and an ICE relay.
    public var maxPacketSize = 1200
    /// Bytes the receive side holds for messages being reassembled (the advertised window).
    public var receiveBufferSize = 1 << 20
    /// The largest message taken (what `a=max-message-size` announces): a longer one is
    /// dropped as its fragments arrive and reported (``SCTPAssociation/Event/oversizedMessage(stream:)``).
    public var maxReceivedMessageSize = 262_144
    /// Streams offered each way (WebRTC peers ask for 65 535; ids are at most 65 534).
    public var streams: UInt16 = 65535
    /// The first retransmission timeout, before any round trip was measured.
    public var initialRTO: Duration = .seconds(1)
    /// The smallest retransmission timeout (RFC 9260 suggests 1 s; WebRTC stacks use less
    /// on the paths they serve).
    public var minRTO: Duration = .milliseconds(200)
    /// The largest retransmission timeout.
    public var maxRTO: Duration = .seconds(60)
    /// INIT or COOKIE ECHO retransmissions before the association fails (RFC 9260 §15).
    public var maxInitRetransmits = 8
    /// Consecutive timeouts without progress before the association fails (RFC 9260 §15).
    public var maxAssociationRetransmits = 10
    /// How long a SACK may wait for a second packet (RFC 9260 §6.2: under 500 ms).
    public var delayedAckTimeout: Duration = .milliseconds(200)
    /// Idle time after which a HEARTBEAT checks the peer is there.
    public var heartbeatInterval: Duration = .seconds(30)
    /// Delivered messages keep counting against the receive buffer until the application
    /// says it has taken them (``SCTPAssociation/releaseDelivered(_:)``): a reader that
    /// falls behind closes the peer's window instead of letting messages pile up in memory.
    public var holdsDeliveredUntilReleased = false

    public init() {}
}

/// Why an association ended.
public enum SCTPCloseReason: Sendable, Equatable {
    /// SHUTDOWN completed (either side asked).
    case shutdown
    /// The peer sent ABORT, with its causes.
    case abortedByPeer([SCTPErrorCause])
    /// This side aborted.
    case aborted
    /// The peer stopped answering: too many retransmissions (of INIT, COOKIE ECHO, DATA,
    /// HEARTBEAT or SHUTDOWN).
    case timedOut
}

/// What a message send was refused for.
public enum SCTPSendError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The association is not established (or is shutting down).
    case notEstablished
    /// The stream id is not below the number of streams both sides allow.
    case invalidStream(UInt16)
    /// The stream is being reset (its channel is closing).
    case streamClosing(UInt16)
    /// An empty message: SCTP cannot carry one (data channels send a placeholder byte).
    case emptyMessage

    public var description: String {
        switch self {
        case .notEstablished: "the SCTP association is not established"
        case .invalidStream(let s): "stream \(s) is beyond the negotiated streams"
        case .streamClosing(let s): "stream \(s) is closing"
        case .emptyMessage: "SCTP cannot send an empty message"
        }
    }
}

/// Counters of an association, for statistics and for tests.
public struct SCTPStatistics: Sendable, Equatable {
    /// Packets refused (checksum, malformed, wrong verification tag, unexpected).
    public var packetsDropped = 0
    /// DATA chunks sent, first transmissions.
    public var chunksSent = 0
    /// DATA chunks sent again (timeout or fast retransmit).
    public var chunksRetransmitted = 0
    /// Fast retransmissions (three miss indications).
    public var fastRetransmits = 0
    /// Retransmission timer expiries.
    public var timeouts = 0
    /// Messages given up (partial reliability).
    public var messagesAbandoned = 0
    /// FORWARD TSN chunks sent.
    public var forwardTSNsSent = 0
    /// FORWARD TSN chunks received.
    public var forwardTSNsReceived = 0
    /// DATA chunks received more than once.
    public var duplicatesReceived = 0
    /// DATA chunks dropped on arrival (window full, too far ahead).
    public var chunksRefused = 0
    /// Messages delivered.
    public var messagesReceived = 0
    /// Messages sent (queued).
    public var messagesSent = 0
    /// Packets sent.
    public var packetsSent = 0
    /// Packets received and accepted.
    public var packetsReceived = 0

    public init() {}
}
