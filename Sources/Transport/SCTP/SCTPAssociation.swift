import DequeModule
import MeetKitNet

/// An SCTP association as WebRTC runs it over DTLS (RFC 8261), sans-IO: packets in with
/// the time, packets out, events, and the next deadline — driven by whatever carries the
/// DTLS records, with no clock, socket or task of its own.
///
/// It implements what data channels need: the four-way handshake with a state cookie
/// (RFC 9260 §5), DATA and SACK with gap blocks, retransmission on timeout and fast
/// retransmit, congestion control, fragmentation and reassembly, ordered and unordered
/// delivery, partial reliability with FORWARD TSN (RFC 3758), stream resets (RFC 6525),
/// heartbeats, SHUTDOWN and ABORT.
///
/// ```swift
/// let sctp = SCTPAssociation()
/// sctp.connect(now: now)                              // one side; the other waits
/// sctp.handlePacket(bytesFromDTLS, now: now)
/// try sctp.send(Array("hi".utf8), stream: 0, protocolIdentifier: 51, now: now)
/// loop: while true {
///     switch sctp.pollOutput() {
///     case .transmit(let packet): try dtls.send(packet)
///     case .event(.message(let stream, _, let bytes, _)): handle(stream, bytes)
///     case .event: continue
///     case .wait(let deadline): wakeUp(at: deadline); break loop
///     }
/// }
/// ```
public final class SCTPAssociation {
    /// The association's state (RFC 9260 §4).
    public enum State: Sendable, Equatable {
        case closed, cookieWait, cookieEchoed, established
        case shutdownPending, shutdownSent, shutdownReceived, shutdownAckSent
    }

    /// What the association reports.
    public enum Event: Sendable, Equatable {
        /// The handshake completed: messages may be sent.
        case established
        /// A complete message on a stream.
        case message(stream: UInt16, protocolIdentifier: UInt32, data: [UInt8], unordered: Bool)
        /// The peer reset these streams of its own (RFC 6525): nothing more arrives on them.
        case incomingStreamsReset([UInt16])
        /// A reset this side asked for is done: the streams may be used afresh.
        case outgoingStreamsReset([UInt16])
        /// A stream's queued bytes fell to its low-water mark.
        case bufferedAmountLow(stream: UInt16)
        /// The peer sent a message longer than ``SCTPConfiguration/maxReceivedMessageSize``
        /// on this stream: it was dropped.
        case oversizedMessage(stream: UInt16)
        /// The association ended.
        case closed(SCTPCloseReason)
    }

    /// The next thing to do.
    public typealias Output = SCTPOutput<Event>

    private(set) var configuration: SCTPConfiguration
    /// The state.
    public internal(set) var state: State = .closed
    /// Counters.
    public internal(set) var statistics = SCTPStatistics()
    var random: any RandomNumberGenerator
    var now: Duration = .zero

    // MARK: handshake
    var localTag: UInt32 = 0
    var peerTag: UInt32 = 0
    var localInitialTSN: UInt32 = 0
    /// The INIT or COOKIE ECHO being retransmitted until answered.
    var handshakeChunk: SCTPChunk?
    /// The state cookie this side gave in its INIT ACK, and the INIT it answered.
    var issuedCookie: (cookie: [UInt8], peerInit: SCTPInitChunk)?
    var t1Deadline: Duration?
    var t1Retransmits = 0
    var peerSupportsForwardTSN = false
    var peerSupportsReconfig = false
    /// Streams this side may send on.
    var outboundStreams: UInt16 = 0

    // MARK: sending
    var sender = SCTPSendQueue(initialTSN: 0)
    var congestion: SCTPCongestionControl
    var peerWindow = 0
    var t3Deadline: Duration?
    /// The TSN timed for a round-trip measurement and when it went (Karn: first sends only).
    var rttProbe: (tsn: UInt32, sentAt: Duration)?
    var forwardTSNPending = false
    /// Low-water marks of streams whose senders wait.
    var lowWaterMarks: [UInt16: Int] = [:]
    /// Consecutive timeouts without an acknowledgement.
    var errorCount = 0

    // MARK: receiving
    var receiver = SCTPReceiveQueue(peerInitialTSN: 0, capacity: 0)
    var sackNeeded = false
    var delayedAckDeadline: Duration?
    var packetsSinceSack = 0
    var lastPacketAt: Duration = .zero

    // MARK: stream reset, heartbeat, shutdown
    var reset = SCTPStreamResets()
    var heartbeatDeadline: Duration?
    var heartbeatOutstanding: (nonce: UInt64, sentAt: Duration)?
    var t2Deadline: Duration?
    /// The association ended (closed after having started, or aborted).
    package internal(set) var ended = false

    /// Control chunks waiting for the next packet.
    var control = Deque<SCTPChunk>()
    /// Packets built outside a `pollOutput` call (handshake, aborts), in order.
    var outgoing = Deque<[UInt8]>()
    var events = Deque<Event>()

    /// An association with `configuration`; `random` makes tags and TSNs (seeded in tests).
    public init(
        configuration: SCTPConfiguration = .init(), random: any RandomNumberGenerator = SystemRandomNumberGenerator()
    ) {
        self.configuration = configuration
        self.random = random
        congestion = SCTPCongestionControl(
            mtu: configuration.maxPacketSize - SCTPPacket.headerLength - 4 - SCTPDataChunk.headerLength,
            peerWindow: configuration.receiveBufferSize, configuration: configuration)
        localTag = nonZeroRandom()
        localInitialTSN = UInt32.random(in: 0...UInt32.max, using: &self.random)
        sender = SCTPSendQueue(initialTSN: localInitialTSN)
        reset = SCTPStreamResets(localInitialTSN: localInitialTSN)
    }

    /// Sets the peer's port (its `a=sctp-port`) before the association starts.
    public func setRemotePort(_ port: UInt16) {
        guard state == .closed, !ended else { return }
        configuration.remotePort = port
    }

    func nonZeroRandom() -> UInt32 { UInt32.random(in: 1...UInt32.max, using: &random) }

    /// The largest user data of one DATA chunk.
    var fragmentSize: Int { congestion.mtu }

    // MARK: inputs

    /// Starts the handshake (the side that initiates; the other side only answers).
    public func connect(now: Duration) {
        self.now = now
        guard state == .closed else { return }
        state = .cookieWait
        handshakeChunk = .initiation(localInit(cookie: nil))
        sendHandshakeChunk(verificationTag: 0)
    }

    /// A packet from the peer (the payload of one DTLS record).
    public func handlePacket(_ bytes: [UInt8], now: Duration) {
        self.now = now
        guard !ended else { return }
        let packet: SCTPPacket
        do {
            packet = try SCTPPacket(parsing: bytes)
        } catch {
            statistics.packetsDropped += 1
            return
        }
        guard packet.destinationPort == configuration.localPort, packet.sourcePort == configuration.remotePort,
            acceptsTag(of: packet)
        else {
            statistics.packetsDropped += 1
            return
        }
        statistics.packetsReceived += 1
        lastPacketAt = now
        var receivedData = false
        chunks: for chunk in packet.chunks {
            switch chunk {
            case .data(let d):
                receivedData = true
                handleData(d)
            case .initiation(let i): handleInit(i)
            case .initiationAck(let i): handleInitAck(i)
            case .cookieEcho(let cookie): handleCookieEcho(cookie)
            case .cookieAck: handleCookieAck()
            case .sack(let s): handleSack(s)
            case .heartbeat(let info): control.append(.heartbeatAck(info: info))
            case .heartbeatAck(let info): handleHeartbeatAck(info)
            case .forwardTSN(let f): handleForwardTSN(f)
            case .reconfig(let parameters): handleReconfig(parameters)
            case .shutdown(let ack): handleShutdown(cumulativeTSNAck: ack)
            case .shutdownAck: handleShutdownAck()
            case .shutdownComplete: handleShutdownComplete()
            case .abort(_, let causes): finish(.abortedByPeer(causes))
            case .error: break
            case .unknown(let type, _, _):
                // RFC 9260 §3.2: the two highest bits say whether to go on and whether to report.
                if type & 0x40 != 0 {
                    control.append(.error(causes: [SCTPErrorCause(code: SCTPErrorCause.unrecognizedChunkType)]))
                }
                if type & 0x80 == 0 { break chunks }
            }
            if state == .closed { return }
        }
        if receivedData { scheduleSack() }
    }

    /// Whether the packet's verification tag is the one its chunks require (RFC 9260 §8.5).
    private func acceptsTag(of packet: SCTPPacket) -> Bool {
        switch packet.chunks.first {
        case .initiation:
            // An INIT travels alone with tag 0 (§8.5.1 A).
            return packet.verificationTag == 0 && packet.chunks.count == 1
        case .abort(let reflected, _), .shutdownComplete(let reflected):
            return packet.verificationTag == (reflected ? peerTag : localTag)
        default:
            return packet.verificationTag == localTag
        }
    }

    /// Time passed: retransmissions, delayed acknowledgements, heartbeats.
    public func handleTimeout(now: Duration) {
        self.now = now
        if let d = t1Deadline, d <= now { t1Expired() }
        if let d = t3Deadline, d <= now { t3Expired() }
        if let d = delayedAckDeadline, d <= now {
            delayedAckDeadline = nil
            sackNeeded = true
        }
        if let d = t2Deadline, d <= now { t2Expired() }
        if let d = heartbeatDeadline, d <= now { heartbeatDue() }
        if let d = reset.deadline, d <= now {
            reset.deadline = nil
            reset.retransmit = true
        }
    }

    // MARK: output

    /// The next output: a packet to send, an event, or when to call again.
    public func pollOutput() -> Output {
        if let e = events.popFirst() { return .event(e) }
        if let p = outgoing.popFirst() { return .transmit(p) }
        if let p = nextPacket() {
            statistics.packetsSent += 1
            return .transmit(p)
        }
        if let e = events.popFirst() { return .event(e) }
        return .wait(until: nextDeadline)
    }

    /// The earliest timer (asked after every input: no array built for it).
    var nextDeadline: Duration? {
        earliest(
            earliest(earliest(t1Deadline, t3Deadline), earliest(delayedAckDeadline, t2Deadline)),
            earliest(heartbeatDeadline, reset.deadline))
    }

    /// Serializes a packet to the peer with the current tag.
    func packet(_ chunks: [SCTPChunk], verificationTag: UInt32? = nil) -> [UInt8] {
        SCTPPacket(
            sourcePort: configuration.localPort, destinationPort: configuration.remotePort,
            verificationTag: verificationTag ?? peerTag, chunks: chunks
        ).serialized()
    }

    /// Ends the association: everything pending is dropped, the reason reported once.
    func finish(_ reason: SCTPCloseReason) {
        guard !ended else { return }
        state = .closed
        ended = true
        handshakeChunk = nil
        t1Deadline = nil
        t3Deadline = nil
        t2Deadline = nil
        delayedAckDeadline = nil
        heartbeatDeadline = nil
        reset.deadline = nil
        control.removeAll()
        events.append(.closed(reason))
    }
}
