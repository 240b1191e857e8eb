/// The receiving side: DATA, delayed SACKs (RFC 9260 §6.2), FORWARD TSN (RFC 3758 §3.6),
/// and stream resets both ways (RFC 6525).
extension SCTPAssociation {
    func handleData(_ d: SCTPDataChunk) {
        guard peerTag != 0, state != .cookieWait else {
            statistics.packetsDropped += 1
            return
        }
        var deliveredBytes = 0
        let arrival = receiver.receive(d) { message in
            deliveredBytes += message.data.count
            deliver(message)
        }
        if configuration.holdsDeliveredUntilReleased { receiver.deliveredHeld += deliveredBytes }
        for stream in receiver.takeOversized() { events.append(.oversizedMessage(stream: stream)) }
        switch arrival {
        case .accepted: break
        case .duplicate:
            statistics.duplicatesReceived += 1
            sackNeeded = true
        case .refused:
            statistics.chunksRefused += 1
            sackNeeded = true
        }
        if d.immediate { sackNeeded = true }
        performDeferredReset()
    }

    /// A complete message for the user (the receive queue is busy: only other state here).
    private func deliver(_ message: SCTPReceiveQueue.Message) {
        statistics.messagesReceived += 1
        events.append(
            .message(
                stream: message.stream, protocolIdentifier: message.protocolIdentifier, data: message.data,
                unordered: message.unordered))
    }

    /// After a packet with DATA: a SACK for every second packet, at once when TSNs are
    /// missing, else after the delayed-ack timeout (§6.2).
    func scheduleSack() {
        packetsSinceSack += 1
        if receiver.hasGaps || packetsSinceSack >= 2 {
            sackNeeded = true
        }
        if sackNeeded {
            delayedAckDeadline = nil
        } else if delayedAckDeadline == nil {
            delayedAckDeadline = now + configuration.delayedAckTimeout
        }
    }

    func handleForwardTSN(_ f: SCTPForwardTSNChunk) {
        guard peerTag != 0 else { return }
        statistics.forwardTSNsReceived += 1
        var deliveredBytes = 0
        receiver.forward(to: f.newCumulativeTSN, streams: f.streams) { message in
            deliveredBytes += message.data.count
            deliver(message)
        }
        if configuration.holdsDeliveredUntilReleased { receiver.deliveredHeld += deliveredBytes }
        sackNeeded = true
        performDeferredReset()
    }

    /// The application took `bytes` of delivered messages (with
    /// ``SCTPConfiguration/holdsDeliveredUntilReleased``): the receive window opens again,
    /// and the peer hears of it at once when it had closed (RFC 9260 §6.2: a window update).
    public func releaseDelivered(_ bytes: Int, now: Duration) {
        self.now = now
        let before = receiver.window
        receiver.deliveredHeld = max(0, receiver.deliveredHeld - bytes)
        if before < congestion.mtu * 4, receiver.window >= congestion.mtu * 4, peerTag != 0 { sackNeeded = true }
    }

    // MARK: stream reset

    /// Resets outgoing streams (closing their data channels): messages already queued on
    /// them still go; nothing new is accepted until ``Event/outgoingStreamsReset(_:)``.
    public func resetStreams(_ streams: [UInt16], now: Duration) {
        self.now = now
        guard state == .established else { return }
        for s in streams where !reset.closing.contains(s) {
            reset.closing.insert(s)
            reset.pending.append(s)
        }
    }

    /// The RE-CONFIG chunk to send now, if any: a new request when none is outstanding, or
    /// the outstanding one again.
    func nextResetRequest() -> SCTPChunk? {
        // A stream resets once everything queued on it has a TSN: the request names the
        // last TSN the peer must have first (RFC 6525 §5.1.2).
        let ready = reset.pending.filter { bufferedAmount(stream: $0) == 0 }
        if reset.outstanding == nil, !ready.isEmpty {
            let streams = ready
            reset.pending.removeAll { ready.contains($0) }
            guard peerSupportsReconfig else {
                // A peer without stream resets: the streams are just forgotten locally.
                for s in streams {
                    sender.resetSequence(of: s)
                    reset.closing.remove(s)
                }
                events.append(.outgoingStreamsReset(streams))
                return nil
            }
            reset.outstanding = (reset.nextRequestSequence, streams, sender.nextTSN &- 1)
            reset.nextRequestSequence &+= 1
            reset.retransmit = true
        }
        guard reset.retransmit, let o = reset.outstanding else { return nil }
        reset.retransmit = false
        reset.deadline = now + congestion.rto
        return .reconfig([
            .outgoingResetRequest(
                requestSequenceNumber: o.sequence, responseSequenceNumber: reset.expectedPeerRequest &- 1,
                senderLastTSN: o.lastTSN, streams: o.streams)
        ])
    }

    func handleReconfig(_ parameters: [SCTPReconfigParameter]) {
        guard peerTag != 0 else { return }
        for p in parameters {
            switch p {
            case .outgoingResetRequest(let request, _, let lastTSN, let streams):
                respond(to: request) {
                    if lastTSN.precedesOrEquals(receiver.cumulativeTSN) {
                        resetIncoming(streams)
                        return .performed
                    }
                    reset.deferred = (request, lastTSN, streams)
                    return .pending
                }
            case .incomingResetRequest(let request, let streams):
                // The peer asks this side to reset its outgoing streams: done as a request
                // of its own.
                respond(to: request) {
                    resetStreams(streams, now: now)
                    return .nothingToDo
                }
            case .response(let sequence, let result):
                guard let o = reset.outstanding, o.sequence == sequence else { continue }
                if result == .pending || result == .inProgress {
                    reset.deadline = now + congestion.rto
                    continue
                }
                reset.outstanding = nil
                reset.deadline = nil
                for s in o.streams {
                    sender.resetSequence(of: s)
                    reset.closing.remove(s)
                }
                events.append(.outgoingStreamsReset(o.streams))
            case .other(let parameter):
                control.append(
                    .reconfig([
                        .response(
                            responseSequenceNumber: parameter.value.count >= 4 ? parameter.value[...].be32(at: 0) : 0,
                            result: .denied)
                    ]))
            }
        }
    }

    /// Answers a peer request: the expected one is acted on, a repeat of the last one gets
    /// the same answer (updated once a deferred reset is done), anything else is refused.
    private func respond(to request: UInt32, _ act: () -> SCTPReconfigResult) {
        let result: SCTPReconfigResult
        if request == reset.expectedPeerRequest {
            reset.expectedPeerRequest &+= 1
            result = act()
        } else if let last = reset.lastResponse, last.sequence == request {
            result = last.result
        } else {
            result = .badSequenceNumber
        }
        reset.lastResponse = (request, result)
        control.append(.reconfig([.response(responseSequenceNumber: request, result: result)]))
    }

    private func resetIncoming(_ streams: [UInt16]) {
        receiver.resetStreams(streams)
        events.append(.incomingStreamsReset(streams))
    }

    /// A peer's reset that waited for missing TSNs happens once they have arrived.
    func performDeferredReset() {
        guard let d = reset.deferred, d.lastTSN.precedesOrEquals(receiver.cumulativeTSN) else { return }
        reset.deferred = nil
        resetIncoming(d.streams)
        if reset.lastResponse?.sequence == d.sequence { reset.lastResponse = (d.sequence, .performed) }
    }
}
