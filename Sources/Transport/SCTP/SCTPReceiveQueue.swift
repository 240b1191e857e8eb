/// The receiver's side of an association (RFC 9260 §6.2, §6.5, §6.9): which TSNs arrived,
/// fragments waiting for the rest of their message, ordered messages waiting for their
/// turn, and the duplicates to report. Everything it holds counts against the receive
/// buffer, so a peer can never make it grow past that.
struct SCTPReceiveQueue {
    /// A message ready for the user.
    struct Message {
        var stream: UInt16
        var protocolIdentifier: UInt32
        var data: [UInt8]
        var unordered: Bool
    }

    private struct Fragment {
        var data: SCTPDataChunk
        var bytes: [UInt8]
    }

    private struct OrderedStream {
        var nextSSN: UInt16 = 0
        var waiting: [UInt16: Message] = [:]
    }

    /// Every TSN up to this one has arrived.
    private(set) var cumulativeTSN: UInt32
    /// TSNs that arrived beyond ``cumulativeTSN``.
    private var received = Set<UInt32>()
    /// TSNs that arrived again since the last SACK (at most 16 reported).
    private var duplicates: [UInt32] = []
    private var fragments: [UInt32: Fragment] = [:]
    private var streams: [UInt16: OrderedStream] = [:]
    /// Bytes held: fragments and ordered messages waiting.
    private(set) var bufferedBytes = 0
    /// Bytes delivered and not yet released by the application (when it holds them).
    var deliveredHeld = 0
    let capacity: Int
    /// The largest message taken: a longer one is dropped as its fragments add up, and its
    /// stream reported (see ``takeOversized()``).
    let maxMessageSize: Int
    /// Streams whose message grew past ``maxMessageSize``, not yet reported.
    private var oversized: [UInt16] = []
    /// Streams whose oversized message's remaining fragments are dropped as they come, with
    /// the TSN of its last fragment once known.
    private var discarding: [UInt16: UInt32?] = [:]
    /// How far past the cumulative TSN a chunk may be (more is refused).
    private let maxSpan: UInt32

    init(peerInitialTSN: UInt32, capacity: Int, maxMessageSize: Int = .max) {
        cumulativeTSN = peerInitialTSN &- 1
        self.capacity = capacity
        self.maxMessageSize = maxMessageSize
        // Gap blocks count in 16 bits from the cumulative TSN.
        maxSpan = UInt32(min(65_535, max(1024, capacity / 64)))
    }

    enum Arrival {
        case accepted
        case duplicate
        case refused
    }

    /// Takes one DATA chunk; complete messages go to `deliver` in the order they may be
    /// delivered.
    mutating func receive(_ chunk: SCTPDataChunk, deliver: (Message) -> Void) -> Arrival {
        let tsn = chunk.tsn
        if tsn.precedesOrEquals(cumulativeTSN) || received.contains(tsn) {
            if duplicates.count < 16 { duplicates.append(tsn) }
            return .duplicate
        }
        guard tsn &- cumulativeTSN <= maxSpan else { return .refused }
        // A buffer full of fragments still takes the very next TSN: it may be what they all
        // wait for. Messages the application has not taken yet get no such exception.
        let size = chunk.userData.count
        guard
            bufferedBytes + deliveredHeld + size <= capacity
                || (tsn == cumulativeTSN &+ 1 && deliveredHeld + size <= capacity)
        else { return .refused }
        received.insert(tsn)
        while received.remove(cumulativeTSN &+ 1) != nil { cumulativeTSN &+= 1 }
        if chunk.beginning && chunk.ending {
            accept(
                Message(
                    stream: chunk.streamIdentifier, protocolIdentifier: chunk.payloadProtocolIdentifier,
                    data: Array(chunk.userData), unordered: chunk.unordered), ssn: chunk.streamSequenceNumber,
                deliver: deliver)
        } else if !chunk.beginning, let end = discarding[chunk.streamIdentifier],
            end.map({ tsn.precedesOrEquals($0) }) ?? true
        {
            // The rest of a message already refused as too large.
            if chunk.ending { discarding[chunk.streamIdentifier] = .some(tsn) }
        } else {
            fragments[tsn] = Fragment(data: chunk, bytes: Array(chunk.userData))
            bufferedBytes += chunk.userData.count
            assemble(around: tsn, deliver: deliver)
        }
        if !discarding.isEmpty {
            // Done discarding once every TSN up to the dropped message's last has arrived.
            discarding = discarding.filter { $0.value.map { cumulativeTSN.precedes($0) } ?? true }
        }
        return .accepted
    }

    /// Streams on which a message longer than ``maxMessageSize`` was dropped since the last
    /// call.
    mutating func takeOversized() -> [UInt16] {
        defer { oversized = [] }
        return oversized
    }

    /// Joins the fragments of the message `tsn` belongs to when all have arrived (they
    /// carry consecutive TSNs, the first with B, the last with E).
    private mutating func assemble(around tsn: UInt32, deliver: (Message) -> Void) {
        guard let middle = fragments[tsn] else { return }
        func sameMessage(_ f: Fragment) -> Bool {
            f.data.streamIdentifier == middle.data.streamIdentifier && f.data.unordered == middle.data.unordered
                && (f.data.unordered || f.data.streamSequenceNumber == middle.data.streamSequenceNumber)
        }
        var first = tsn
        while !fragments[first]!.data.beginning {
            guard let previous = fragments[first &- 1], sameMessage(previous), !previous.data.ending else { return }
            first &-= 1
        }
        // Forward from the first fragment: the message is complete at E, or too large once
        // what has arrived of it passes the limit.
        var last = first
        var size = fragments[first]!.bytes.count
        while !fragments[last]!.data.ending {
            guard size <= maxMessageSize else {
                dropMessage(from: first, through: last, stream: middle.data.streamIdentifier)
                return
            }
            guard let next = fragments[last &+ 1], sameMessage(next), !next.data.beginning else { return }
            last &+= 1
            size += next.bytes.count
        }
        guard size <= maxMessageSize else {
            dropMessage(from: first, through: last, stream: middle.data.streamIdentifier)
            return
        }
        var bytes: [UInt8] = []
        var t = first
        while true {
            let f = fragments.removeValue(forKey: t)!
            bufferedBytes -= f.bytes.count
            bytes += f.bytes
            if t == last { break }
            t &+= 1
        }
        accept(
            Message(
                stream: middle.data.streamIdentifier, protocolIdentifier: middle.data.payloadProtocolIdentifier,
                data: bytes, unordered: middle.data.unordered), ssn: middle.data.streamSequenceNumber, deliver: deliver)
    }

    /// Drops a message that grew past the limit: the fragments from its first through
    /// `last`, those of it already stored beyond a gap, and (until its E fragment) those
    /// still to come.
    private mutating func dropMessage(from first: UInt32, through last: UInt32, stream: UInt16) {
        guard let model = fragments[first]?.data else { return }
        var end: UInt32?
        var t = first
        while true {
            if let f = fragments.removeValue(forKey: t) {
                bufferedBytes -= f.bytes.count
                if f.data.ending { end = t }
            }
            if t == last { break }
            t &+= 1
        }
        for (tsn, f) in fragments
        where last.precedes(tsn) && f.data.streamIdentifier == stream && f.data.unordered == model.unordered
            && (model.unordered || f.data.streamSequenceNumber == model.streamSequenceNumber)
        {
            fragments[tsn] = nil
            bufferedBytes -= f.bytes.count
            if f.data.ending { end = tsn }
        }
        // Fragments in the gaps still to come are dropped too (up to E once known).
        if end.map({ cumulativeTSN.precedes($0) }) ?? true { discarding[stream] = .some(end) }
        oversized.append(stream)
    }

    /// A complete message: out at once when unordered or its turn, else kept for its turn.
    private mutating func accept(_ message: Message, ssn: UInt16, deliver: (Message) -> Void) {
        if message.unordered {
            deliver(message)
            return
        }
        var stream = streams[message.stream, default: OrderedStream()]
        if ssn == stream.nextSSN {
            deliver(message)
            stream.nextSSN &+= 1
            while let next = stream.waiting.removeValue(forKey: stream.nextSSN) {
                bufferedBytes -= next.data.count
                deliver(next)
                stream.nextSSN &+= 1
            }
        } else if stream.nextSSN.precedes(ssn), stream.waiting[ssn] == nil {
            stream.waiting[ssn] = message
            bufferedBytes += message.data.count
        }
        streams[message.stream] = stream
    }

    /// FORWARD TSN (RFC 3758 §3.6): the peer gave up everything up to `newCumulative`.
    /// Partial messages there are dropped; the listed ordered streams skip past the given
    /// sequence numbers and deliver what waited behind them.
    mutating func forward(
        to newCumulative: UInt32, streams skipped: [SCTPForwardTSNChunk.SkippedStream], deliver: (Message) -> Void
    ) {
        guard cumulativeTSN.precedes(newCumulative), newCumulative &- cumulativeTSN <= maxSpan &* 4 else { return }
        for t in received where t.precedesOrEquals(newCumulative) { received.remove(t) }
        cumulativeTSN = newCumulative
        while received.remove(cumulativeTSN &+ 1) != nil { cumulativeTSN &+= 1 }
        for (t, f) in fragments where t.precedesOrEquals(newCumulative) {
            fragments[t] = nil
            bufferedBytes -= f.bytes.count
        }
        for s in skipped {
            var stream = streams[s.streamIdentifier, default: OrderedStream()]
            guard stream.nextSSN.precedes(s.streamSequenceNumber &+ 1) else { continue }
            for (ssn, m) in stream.waiting where ssn.precedes(s.streamSequenceNumber &+ 1) {
                stream.waiting[ssn] = nil
                bufferedBytes -= m.data.count
            }
            stream.nextSSN = s.streamSequenceNumber &+ 1
            while let next = stream.waiting.removeValue(forKey: stream.nextSSN) {
                bufferedBytes -= next.data.count
                deliver(next)
                stream.nextSSN &+= 1
            }
            streams[s.streamIdentifier] = stream
        }
    }

    /// Resets the sequence numbers of incoming streams (all when empty), RFC 6525 §5.2.2.
    mutating func resetStreams(_ ids: [UInt16]) {
        for id in ids.isEmpty ? Array(streams.keys) : ids {
            if let stream = streams.removeValue(forKey: id) {
                bufferedBytes -= stream.waiting.values.reduce(0) { $0 + $1.data.count }
            }
        }
    }

    /// The SACK for what arrived: gap blocks (at most `maxGapBlocks`) and the duplicates
    /// since the last one, which it forgets.
    mutating func makeSack(maxGapBlocks: Int) -> SCTPSackChunk {
        var blocks: [SCTPSackChunk.GapBlock] = []
        if !received.isEmpty {
            let offsets = received.map { $0 &- cumulativeTSN }.sorted()
            var start = offsets[0]
            var end = start
            for o in offsets.dropFirst() {
                if o == end + 1 {
                    end = o
                    continue
                }
                blocks.append(.init(start: UInt16(truncatingIfNeeded: start), end: UInt16(truncatingIfNeeded: end)))
                start = o
                end = o
            }
            blocks.append(.init(start: UInt16(truncatingIfNeeded: start), end: UInt16(truncatingIfNeeded: end)))
            if blocks.count > maxGapBlocks { blocks.removeLast(blocks.count - maxGapBlocks) }
        }
        defer { duplicates.removeAll() }
        return SCTPSackChunk(
            cumulativeTSNAck: cumulativeTSN, advertisedReceiverWindow: UInt32(max(0, window)),
            gapBlocks: blocks, duplicateTSNs: duplicates)
    }

    /// The free receive buffer.
    var window: Int { capacity - bufferedBytes - deliveredHeld }

    /// Whether TSNs are missing below some that arrived.
    var hasGaps: Bool { !received.isEmpty }
}
