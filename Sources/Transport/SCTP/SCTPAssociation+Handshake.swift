/// The association's life: the four-way handshake with a state cookie (RFC 9260 §5),
/// heartbeats (§8.3), SHUTDOWN (§9.2) and ABORT (§9.1).
extension SCTPAssociation {
    /// This endpoint's INIT or INIT ACK value.
    func localInit(cookie: [UInt8]?) -> SCTPInitChunk {
        var parameters: [SCTPParameter] = []
        if let cookie { parameters.append(SCTPParameter(.stateCookie, value: cookie)) }
        parameters.append(SCTPParameter(.forwardTSNSupported))
        parameters.append(
            SCTPParameter(.supportedExtensions, value: [SCTPChunk.forwardTSNType, SCTPChunk.reconfigType]))
        return SCTPInitChunk(
            initiateTag: localTag, advertisedReceiverWindow: UInt32(configuration.receiveBufferSize),
            outboundStreams: configuration.streams, inboundStreams: configuration.streams,
            initialTSN: localInitialTSN, parameters: parameters)
    }

    /// Sends the INIT or COOKIE ECHO and arms T1 (RFC 9260 §5.1).
    func sendHandshakeChunk(verificationTag: UInt32) {
        guard let chunk = handshakeChunk else { return }
        outgoing.append(packet([chunk], verificationTag: verificationTag))
        let backoff = configuration.initialRTO * (1 << min(t1Retransmits, 16))
        t1Deadline = now + min(backoff, configuration.maxRTO)
    }

    func t1Expired() {
        t1Deadline = nil
        guard let chunk = handshakeChunk else { return }
        t1Retransmits += 1
        guard t1Retransmits <= configuration.maxInitRetransmits else {
            finish(.timedOut)
            return
        }
        if case .initiation = chunk {
            sendHandshakeChunk(verificationTag: 0)
        } else {
            sendHandshakeChunk(verificationTag: peerTag)
        }
    }

    /// Takes the peer's INIT or INIT ACK values: its tag, window, streams and first TSN.
    func adoptPeer(_ peer: SCTPInitChunk) {
        peerTag = peer.initiateTag
        outboundStreams = min(configuration.streams, peer.inboundStreams)
        receiver = SCTPReceiveQueue(
            peerInitialTSN: peer.initialTSN, capacity: configuration.receiveBufferSize,
            maxMessageSize: configuration.maxReceivedMessageSize)
        peerWindow = Int(peer.advertisedReceiverWindow)
        congestion = SCTPCongestionControl(
            mtu: congestion.mtu, peerWindow: peerWindow, configuration: configuration)
        peerSupportsForwardTSN = peer.supports(chunkType: SCTPChunk.forwardTSNType)
        peerSupportsReconfig = peer.supports(chunkType: SCTPChunk.reconfigType)
        reset.expectedPeerRequest = peer.initialTSN
    }

    /// A valid INIT value: a non-zero tag and streams both ways (RFC 9260 §3.3.2).
    private func isValid(_ i: SCTPInitChunk) -> Bool {
        i.initiateTag != 0 && i.outboundStreams > 0 && i.inboundStreams > 0
    }

    /// INIT: answered with an INIT ACK carrying a state cookie, also when this side sent
    /// its own INIT (a collision, §5.2.1: same tag and TSN as that INIT). The cookie is a
    /// random nonce this association remembers with the INIT it answers: one association
    /// per DTLS connection, whose peer is authenticated, needs no signed stateless cookie.
    func handleInit(_ i: SCTPInitChunk) {
        guard isValid(i) else {
            statistics.packetsDropped += 1
            return
        }
        switch state {
        case .closed, .cookieWait, .cookieEchoed:
            let cookie = (0..<4).flatMap { _ in
                withUnsafeBytes(of: UInt64.random(in: 0...UInt64.max, using: &random)) { Array($0) }
            }
            issuedCookie = (cookie, i)
            outgoing.append(packet([.initiationAck(localInit(cookie: cookie))], verificationTag: i.initiateTag))
        default:
            // A restart (§5.2.2) is not something a WebRTC peer does: dropped.
            statistics.packetsDropped += 1
        }
    }

    /// INIT ACK: echo the cookie (§5.1 C).
    func handleInitAck(_ i: SCTPInitChunk) {
        guard state == .cookieWait, isValid(i), let cookie = i.parameter(.stateCookie)?.value else {
            statistics.packetsDropped += 1
            return
        }
        adoptPeer(i)
        state = .cookieEchoed
        t1Retransmits = 0
        handshakeChunk = .cookieEcho(cookie: cookie)
        sendHandshakeChunk(verificationTag: peerTag)
    }

    /// COOKIE ECHO: the cookie this side issued comes back — established (§5.1 D; again
    /// only a COOKIE ACK when already so).
    func handleCookieEcho(_ cookie: [UInt8]) {
        guard let issued = issuedCookie, issued.cookie == cookie else {
            statistics.packetsDropped += 1
            return
        }
        switch state {
        case .closed:
            adoptPeer(issued.peerInit)
            established()
        case .cookieWait, .cookieEchoed:
            // A collision: the peer's INIT ACK (if any came) carried the same tag as its INIT.
            if peerTag == 0 { adoptPeer(issued.peerInit) }
            established()
        default:
            break
        }
        control.append(.cookieAck)
    }

    /// COOKIE ACK: established (§5.1 E).
    func handleCookieAck() {
        guard state == .cookieEchoed else { return }
        established()
    }

    private func established() {
        state = .established
        handshakeChunk = nil
        t1Deadline = nil
        t1Retransmits = 0
        heartbeatDeadline = now + configuration.heartbeatInterval
        events.append(.established)
    }

    // MARK: heartbeat

    /// An idle association checks its peer (§8.3); unanswered checks count as timeouts.
    func heartbeatDue() {
        heartbeatDeadline = nil
        guard state == .established else { return }
        if heartbeatOutstanding != nil {
            errorCount += 1
            heartbeatOutstanding = nil
            guard errorCount <= configuration.maxAssociationRetransmits else {
                finish(.timedOut)
                return
            }
        } else if now - lastPacketAt < configuration.heartbeatInterval {
            heartbeatDeadline = lastPacketAt + configuration.heartbeatInterval
            return
        }
        let nonce = UInt64.random(in: 0...UInt64.max, using: &random)
        heartbeatOutstanding = (nonce, now)
        control.append(.heartbeat(info: withUnsafeBytes(of: nonce) { Array($0) }))
        heartbeatDeadline = now + congestion.rto
    }

    func handleHeartbeatAck(_ info: [UInt8]) {
        guard let outstanding = heartbeatOutstanding, info == withUnsafeBytes(of: outstanding.nonce, { Array($0) })
        else { return }
        congestion.measured(rtt: now - outstanding.sentAt)
        heartbeatOutstanding = nil
        errorCount = 0
        heartbeatDeadline = now + configuration.heartbeatInterval
    }

    // MARK: shutdown and abort

    /// Closes gracefully once everything queued has been acknowledged (§9.2).
    public func shutdown(now: Duration) {
        self.now = now
        switch state {
        case .established:
            state = .shutdownPending
            proceedWithShutdown()
        case .closed, .cookieWait, .cookieEchoed:
            finish(.shutdown)
        default:
            break
        }
    }

    /// Ends the association at once, telling the peer (§9.1).
    public func abort(now: Duration) {
        self.now = now
        guard !ended else { return }
        if peerTag != 0 {
            outgoing.append(
                packet([.abort(reflected: false, causes: [SCTPErrorCause(code: SCTPErrorCause.userInitiatedAbort)])]))
        }
        finish(.aborted)
    }

    /// The next shutdown step once nothing is outstanding.
    func proceedWithShutdown() {
        guard sender.isEmpty else { return }
        switch state {
        case .shutdownPending:
            state = .shutdownSent
            sendShutdownChunk()
        case .shutdownReceived:
            state = .shutdownAckSent
            sendShutdownChunk()
        default:
            break
        }
    }

    private func sendShutdownChunk() {
        let chunk: SCTPChunk =
            state == .shutdownSent ? .shutdown(cumulativeTSNAck: receiver.cumulativeTSN) : .shutdownAck
        outgoing.append(packet([chunk]))
        t2Deadline = now + congestion.rto
    }

    func t2Expired() {
        t2Deadline = nil
        guard state == .shutdownSent || state == .shutdownAckSent else { return }
        errorCount += 1
        guard errorCount <= configuration.maxAssociationRetransmits else {
            finish(.timedOut)
            return
        }
        sendShutdownChunk()
    }

    func handleShutdown(cumulativeTSNAck: UInt32) {
        // SHUTDOWN acknowledges cumulatively like a SACK without gaps (§9.2).
        handleSack(
            SCTPSackChunk(
                cumulativeTSNAck: cumulativeTSNAck,
                advertisedReceiverWindow: UInt32(clamping: peerWindow + congestion.flightSize)))
        switch state {
        case .established, .shutdownPending:
            state = .shutdownReceived
            proceedWithShutdown()
        case .shutdownSent:
            // Both sides shut down at once (§9.2): acknowledge.
            state = .shutdownAckSent
            sendShutdownChunk()
        default:
            break
        }
    }

    func handleShutdownAck() {
        guard state == .shutdownSent || state == .shutdownAckSent else { return }
        outgoing.append(packet([.shutdownComplete(reflected: false)]))
        finish(.shutdown)
    }

    func handleShutdownComplete() {
        guard state == .shutdownAckSent else { return }
        finish(.shutdown)
    }
}
