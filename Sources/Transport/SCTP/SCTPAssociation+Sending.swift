/// The sending side: queueing messages, building packets within the congestion and receive
/// windows, SACK processing, retransmission (RFC 9260 §6.1–§6.3, §7) and partial
/// reliability (RFC 3758).
extension SCTPAssociation {
    /// Queues a message on `stream`. It is fragmented to the packet size and sent as the
    /// windows allow; ``bufferedAmount(stream:)`` counts its bytes until they are sent.
    /// - Throws: ``SCTPSendError`` when the association cannot take it.
    public func send(
        _ message: [UInt8], stream: UInt16, protocolIdentifier: UInt32, unordered: Bool = false,
        reliability: SCTPReliability = .reliable, now: Duration
    ) throws(SCTPSendError) {
        self.now = now
        guard state == .established else { throw .notEstablished }
        guard stream < outboundStreams else { throw .invalidStream(stream) }
        guard !reset.closing.contains(stream) else { throw .streamClosing(stream) }
        guard !message.isEmpty else { throw .emptyMessage }
        sender.enqueue(
            message, stream: stream, protocolIdentifier: protocolIdentifier, unordered: unordered,
            reliability: reliability, fragmentSize: fragmentSize, now: now)
        statistics.messagesSent += 1
    }

    /// Bytes queued on `stream` and not yet sent.
    public func bufferedAmount(stream: UInt16) -> Int { sender.queuedBytes[stream] ?? 0 }

    /// Asks for ``Event/bufferedAmountLow(stream:)`` when `stream`'s queued bytes fall to
    /// `bytes` or below (nil: no longer).
    public func setLowWaterMark(_ bytes: Int?, stream: UInt16) { lowWaterMarks[stream] = bytes }

    /// Whether DATA may flow in the current state.
    private var sendsData: Bool {
        state == .established || state == .shutdownPending || state == .shutdownReceived
    }

    /// The next packet: a SACK if one is due, control chunks, then DATA — retransmissions
    /// first, new chunks while the congestion and receive windows allow.
    func nextPacket() -> [UInt8]? {
        guard peerTag != 0, !ended else { return nil }
        var chunks: [SCTPChunk] = []
        var room = configuration.maxPacketSize - SCTPPacket.headerLength
        if sackNeeded {
            let sack = receiver.makeSack(maxGapBlocks: 64)
            chunks.append(.sack(sack))
            room -= 16 + 4 * sack.gapBlocks.count + 4 * sack.duplicateTSNs.count
            sackNeeded = false
            delayedAckDeadline = nil
            packetsSinceSack = 0
        }
        while let c = control.first {
            let length = Self.encodedLength(c)
            guard length <= room else {
                // A control chunk that fits no packet is dropped rather than stalling all.
                if chunks.isEmpty { control.removeFirst() }
                break
            }
            chunks.append(control.removeFirst())
            room -= length
        }
        if forwardTSNPending, let point = sender.advancedAckPoint() {
            let chunk = SCTPChunk.forwardTSN(SCTPForwardTSNChunk(newCumulativeTSN: point.tsn, streams: point.streams))
            let length = Self.encodedLength(chunk)
            if length <= room {
                chunks.append(chunk)
                room -= length
                forwardTSNPending = false
                statistics.forwardTSNsSent += 1
            }
        }
        if let request = nextResetRequest() {
            let length = Self.encodedLength(request)
            if length <= room {
                chunks.append(request)
                room -= length
            } else {
                reset.retransmit = true
            }
        }
        if sendsData { addData(to: &chunks, room: &room) }
        guard !chunks.isEmpty else { return nil }
        return packet(chunks)
    }

    static func encodedLength(_ chunk: SCTPChunk) -> Int {
        var out: [UInt8] = []
        chunk.serialize(into: &out)
        return out.count
    }

    /// Adds DATA chunks: the lost ones again, then new ones.
    private func addData(to chunks: inout [SCTPChunk], room: inout Int) {
        var sentAny = false
        /// A chunk put in the packet: in flight, out of the peer's window.
        func put(_ data: SCTPDataChunk) {
            let size = data.userData.count
            congestion.flightSize += size
            peerWindow = max(0, peerWindow - size)
            chunks.append(.data(data))
            room -= 16 + size
            sentAny = true
        }
        if sender.lostCount > 0 {
            // After a fast retransmit the lost chunks go at once, whatever the window (§7.2.4).
            var i = 0
            while i < sender.firstUnsent, sender.lostCount > 0 {
                defer { i += 1 }
                guard sender.chunks[i].state == .lost else { continue }
                if abandonIfDue(i) { continue }
                let size = sender.chunks[i].size
                guard room >= 16 + size, congestion.allows(size) || sender.chunks[i].fastRetransmitted else { break }
                let data = sender.resend(i, now: now)
                if rttProbe?.tsn == data.tsn { rttProbe = nil }
                put(data)
                statistics.chunksRetransmitted += 1
            }
        }
        while sender.firstUnsent < sender.chunks.count, sender.lostCount == 0 {
            let i = sender.firstUnsent
            if abandonIfDue(i) { continue }
            let size = sender.chunks[i].size
            guard room >= 16 + size, congestion.allows(size), peerWindow >= size || congestion.flightSize == 0
            else { break }
            let data = sender.sendFirstUnsent(now: now)
            if rttProbe == nil { rttProbe = (data.tsn, now) }
            put(data)
            statistics.chunksSent += 1
            reportDrain(of: data.streamIdentifier, from: bufferedAmount(stream: data.streamIdentifier) + size)
        }
        if sentAny, t3Deadline == nil { t3Deadline = now + congestion.rto }
    }

    /// A stream's queued bytes fell from `before` to what they are now: tells a sender that
    /// waits when that crossed its low-water mark.
    private func reportDrain(of stream: UInt16, from before: Int) {
        if let mark = lowWaterMarks[stream], before > mark, bufferedAmount(stream: stream) <= mark {
            events.append(.bufferedAmountLow(stream: stream))
        }
    }

    /// Abandons the message of chunk `i` when its partial reliability says so (RFC 3758
    /// §3.5 A1–A3); returns whether it did.
    @discardableResult
    func abandonIfDue(_ i: Int) -> Bool {
        let c = sender.chunks[i]
        let due: Bool
        switch c.reliability {
        case .reliable: due = false
        case .maxRetransmits(let n): due = c.transmissions > n
        case .lifetime(let d): due = now - c.queuedAt > d
        }
        // A message never sent is simply dropped; one partly sent needs the peer's support.
        let sent = i < sender.firstUnsent || sender.chunks[i].data.beginning == false
        guard due, !sent || peerSupportsForwardTSN else { return false }
        let stream = c.data.streamIdentifier
        let before = bufferedAmount(stream: stream)
        sender.abandonMessage(around: i)
        statistics.messagesAbandoned += 1
        if sent { forwardTSNPending = true }
        reportDrain(of: stream, from: before)
        return true
    }

    /// A SACK (RFC 9260 §6.2.1, §7.2): acknowledged chunks leave the queue, the windows
    /// move, three miss indications start a fast retransmit.
    func handleSack(_ sack: SCTPSackChunk) {
        guard peerTag != 0 else { return }
        let ack = sack.cumulativeTSNAck
        // An older SACK, or one acknowledging what was never sent, changes nothing.
        guard sender.cumulativeAck.precedesOrEquals(ack), ack.precedesOrEquals(sender.highestSent) else {
            if sender.highestSent.precedes(ack) { statistics.packetsDropped += 1 }
            return
        }
        let windowWasFull = congestion.flightSize + congestion.mtu > congestion.cwnd
        let advanced = sender.cumulativeAck.precedes(ack)
        var newlyAcked = 0
        var highestNewlyAcked: UInt32?
        var measured: Duration?
        sender.removeAcknowledged(through: ack) { c in
            if c.counted {
                congestion.flightSize -= c.size
                newlyAcked += c.size
                highestNewlyAcked = c.data.tsn
            } else if c.state == .lost {
                newlyAcked += c.size
            }
            if rttProbe?.tsn == c.data.tsn, c.transmissions == 1 { measured = now - c.sentAt }
        }
        for block in sack.gapBlocks {
            var offset = UInt32(block.start)
            while offset <= UInt32(block.end), let i = sender.index(of: ack &+ offset) {
                let c = sender.chunks[i]
                if c.counted {
                    congestion.flightSize -= c.size
                    newlyAcked += c.size
                    highestNewlyAcked = c.data.tsn
                    sender.chunks[i].counted = false
                }
                switch c.state {
                case .inFlight: sender.chunks[i].state = .acked
                case .lost:
                    sender.lostCount -= 1
                    sender.chunks[i].state = .acked
                default: break
                }
                if rttProbe?.tsn == c.data.tsn, c.transmissions == 1 { measured = now - c.sentAt }
                offset += 1
            }
        }
        if let rtt = measured {
            congestion.measured(rtt: rtt)
            rttProbe = nil
        }
        if let highest = highestNewlyAcked { countMisses(below: highest) }
        congestion.acknowledged(newlyAcked, cumulativeAck: ack, advanced: advanced, windowWasFull: windowWasFull)
        peerWindow = max(0, Int(sack.advertisedReceiverWindow) - congestion.flightSize)
        if advanced || newlyAcked > 0 { errorCount = 0 }
        if congestion.flightSize == 0 && sender.lostCount == 0 {
            t3Deadline = nil
        } else if advanced {
            t3Deadline = now + congestion.rto
        }
        if let point = sender.advancedAckPoint(), ack.precedes(point.tsn) { forwardTSNPending = true }
        proceedWithShutdown()
    }

    /// Chunks still in flight below the highest TSN a SACK newly acknowledged were missed
    /// once more; the third miss marks them lost for a fast retransmit (§7.2.4).
    private func countMisses(below highest: UInt32) {
        var i = 0
        while i < sender.firstUnsent, sender.chunks[i].data.tsn.precedes(highest) {
            if sender.chunks[i].state == .inFlight {
                sender.chunks[i].misses += 1
                if sender.chunks[i].misses == 3 {
                    sender.chunks[i].state = .lost
                    sender.chunks[i].counted = false
                    sender.chunks[i].fastRetransmitted = true
                    sender.lostCount += 1
                    congestion.flightSize -= sender.chunks[i].size
                    statistics.fastRetransmits += 1
                    congestion.enterFastRecovery(highestOutstanding: sender.highestSent)
                }
            }
            i += 1
        }
    }

    /// T3-rtx expired (§6.3.3): every chunk in flight is taken for lost, the window
    /// collapses, the timeout doubles.
    func t3Expired() {
        t3Deadline = nil
        guard !sender.isEmpty else { return }
        statistics.timeouts += 1
        errorCount += 1
        guard errorCount <= configuration.maxAssociationRetransmits else {
            outgoing.append(
                packet([.abort(reflected: false, causes: [SCTPErrorCause(code: SCTPErrorCause.protocolViolation)])]))
            finish(.timedOut)
            return
        }
        congestion.timedOut()
        for i in 0..<sender.firstUnsent {
            sender.chunks[i].counted = false
            guard sender.chunks[i].state == .inFlight else { continue }
            sender.chunks[i].state = .lost
            sender.chunks[i].fastRetransmitted = false
            sender.lostCount += 1
        }
        congestion.flightSize = 0
        rttProbe = nil
        if sender.advancedAckPoint() != nil { forwardTSNPending = true }
        t3Deadline = now + congestion.rto
    }
}
