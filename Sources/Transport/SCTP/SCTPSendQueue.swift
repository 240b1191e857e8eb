import DequeModule

/// The sender's DATA chunks from the first not cumulatively acknowledged to the last queued
/// (RFC 9260 §6.1): first those sent, in TSN order, then those waiting. A chunk gets its
/// TSN when it is first sent; messages go out in order and whole, so a message's fragments
/// get consecutive TSNs as §6.9 requires, and a message given up before it was sent costs
/// no TSN (nothing for a FORWARD TSN to skip). Each fragment's user data is a slice of the
/// message: one copy of the bytes, however many fragments and retransmissions.
struct SCTPSendQueue {
    enum ChunkState: Equatable {
        /// Not sent yet.
        case queued
        /// Sent, not acknowledged, counted in the flight size.
        case inFlight
        /// Sent and taken for lost (timeout or three miss indications): waits to be sent
        /// again, out of the flight size.
        case lost
        /// Acknowledged by a gap block (not yet by the cumulative ack).
        case acked
        /// Given up (partial reliability); a FORWARD TSN moves the peer past it.
        case abandoned
    }

    struct Chunk {
        var data: SCTPDataChunk
        var message: Int
        var reliability: SCTPReliability
        var queuedAt: Duration
        var state: ChunkState = .queued
        /// Counted in the flight size: sent and neither acknowledged nor taken for lost.
        /// An abandoned chunk still in the network stays counted until acknowledged or timed
        /// out (RFC 3758 §3.5), so giving up never opens the window by itself.
        var counted = false
        var sentAt: Duration = .zero
        var transmissions = 0
        var misses = 0
        var fastRetransmitted = false
        var size: Int { data.userData.count }
    }

    var chunks = Deque<Chunk>()
    /// The peer's cumulative TSN ack: `chunks[0]` has the TSN after it.
    private(set) var cumulativeAck: UInt32
    /// The TSN the next chunk sent gets.
    private(set) var nextTSN: UInt32
    /// Index of the first chunk never sent; every chunk after it is unsent too (their TSN
    /// fields are not yet meaningful).
    var firstUnsent = 0
    /// Chunks in the ``ChunkState/lost`` state.
    var lostCount = 0
    /// Bytes queued and not yet sent, per stream (a data channel's `bufferedAmount`).
    private(set) var queuedBytes: [UInt16: Int] = [:]
    private var nextSSN: [UInt16: UInt16] = [:]
    /// The sequence number of the message whose fragments are going out.
    private var messageSSN: UInt16 = 0
    private var messageCount = 0

    init(initialTSN: UInt32) {
        cumulativeAck = initialTSN &- 1
        nextTSN = initialTSN
    }

    /// Index of the sent chunk with `tsn`, if it is there.
    func index(of tsn: UInt32) -> Int? {
        let i = Int(tsn &- (cumulativeAck &+ 1))
        return i >= 0 && i < firstUnsent ? i : nil
    }

    /// Queues a message as fragments of at most `fragmentSize` bytes.
    mutating func enqueue(
        _ message: [UInt8], stream: UInt16, protocolIdentifier: UInt32, unordered: Bool,
        reliability: SCTPReliability, fragmentSize: Int, now: Duration
    ) {
        messageCount += 1
        var offset = 0
        repeat {
            let end = min(offset + fragmentSize, message.count)
            let data = SCTPDataChunk(
                tsn: 0, streamIdentifier: stream, streamSequenceNumber: 0,
                payloadProtocolIdentifier: protocolIdentifier, unordered: unordered, beginning: offset == 0,
                ending: end == message.count, userData: message[offset..<end])
            chunks.append(Chunk(data: data, message: messageCount, reliability: reliability, queuedAt: now))
            offset = end
        } while offset < message.count
        queuedBytes[stream, default: 0] += message.count
    }

    /// The first unsent chunk goes out: it gets its numbers and no longer counts as queued.
    mutating func sendFirstUnsent(now: Duration) -> SCTPDataChunk {
        let i = firstUnsent
        numberFirstUnsent()
        chunks[i].state = .inFlight
        chunks[i].counted = true
        chunks[i].transmissions = 1
        chunks[i].sentAt = now
        return chunks[i].data
    }

    /// A lost chunk goes out again: back in flight, one transmission more.
    mutating func resend(_ i: Int, now: Duration) -> SCTPDataChunk {
        chunks[i].state = .inFlight
        chunks[i].counted = true
        chunks[i].transmissions += 1
        chunks[i].sentAt = now
        chunks[i].fastRetransmitted = false
        lostCount -= 1
        return chunks[i].data
    }

    /// Gives the first unsent chunk its TSN (and, first of an ordered message, the
    /// stream's next sequence number: a message dropped unsent leaves no hole in the
    /// stream), and moves it to the sent part.
    private mutating func numberFirstUnsent() {
        let i = firstUnsent
        chunks[i].data.tsn = nextTSN
        nextTSN &+= 1
        if !chunks[i].data.unordered {
            if chunks[i].data.beginning {
                let stream = chunks[i].data.streamIdentifier
                chunks[i].data.streamSequenceNumber = nextSSN[stream, default: 0]
                nextSSN[stream] = chunks[i].data.streamSequenceNumber &+ 1
                messageSSN = chunks[i].data.streamSequenceNumber
            } else {
                chunks[i].data.streamSequenceNumber = messageSSN
            }
        }
        firstUnsent += 1
        unqueue(chunks[i])
    }

    private mutating func unqueue(_ chunk: Chunk) {
        let stream = chunk.data.streamIdentifier
        queuedBytes[stream, default: 0] -= chunk.size
        if queuedBytes[stream] == 0 { queuedBytes[stream] = nil }
    }

    /// Drops the chunks up to the new cumulative ack (never past what was sent), calling
    /// `each` with every one.
    mutating func removeAcknowledged(through ack: UInt32, _ each: (Chunk) -> Void) {
        while firstUnsent > 0, let first = chunks.first, first.data.tsn.precedesOrEquals(ack) {
            let chunk = chunks.removeFirst()
            if chunk.state == .lost { lostCount -= 1 }
            firstUnsent -= 1
            each(chunk)
        }
        if cumulativeAck.precedes(ack) { cumulativeAck = ack }
    }

    /// The highest TSN sent so far (the cumulative ack when nothing is outstanding).
    var highestSent: UInt32 { cumulativeAck &+ UInt32(firstUnsent) }

    /// Whether nothing is queued or outstanding.
    var isEmpty: Bool { chunks.isEmpty }

    /// The index range of the message chunk `i` belongs to.
    func messageRange(around i: Int) -> Range<Int> {
        let message = chunks[i].message
        var start = i
        while start > 0, chunks[start - 1].message == message { start -= 1 }
        var end = i + 1
        while end < chunks.count, chunks[end].message == message { end += 1 }
        return start..<end
    }

    /// Gives up the message of chunk `i`: its sent fragments are marked abandoned (a
    /// FORWARD TSN moves the peer past them), its unsent ones dropped.
    mutating func abandonMessage(around i: Int) {
        let range = messageRange(around: i)
        for j in range.clamped(to: 0..<firstUnsent) where chunks[j].state != .abandoned {
            if chunks[j].state == .lost { lostCount -= 1 }
            chunks[j].state = .abandoned
        }
        let unsent = range.clamped(to: firstUnsent..<chunks.count)
        if let first = unsent.first, !chunks[first].data.beginning {
            // The peer may hold the first fragments (perhaps acknowledged already): the
            // rest get numbers, unsent, so that a FORWARD TSN moves past the whole message
            // and its sequence number.
            for _ in unsent {
                chunks[firstUnsent].state = .abandoned
                numberFirstUnsent()
            }
        } else {
            for j in unsent { unqueue(chunks[j]) }
            chunks.removeSubrange(unsent)
        }
    }

    /// The TSN up to which every chunk is abandoned or acknowledged, past the cumulative
    /// ack (RFC 3758 §3.5 C1–C2: the Advanced.Peer.Ack.Point), with the ordered streams'
    /// last skipped sequence numbers.
    func advancedAckPoint() -> (tsn: UInt32, streams: [SCTPForwardTSNChunk.SkippedStream])? {
        var point = cumulativeAck
        var skipped: [UInt16: UInt16] = [:]
        for c in chunks {
            guard c.state == .abandoned else { break }
            point = c.data.tsn
            if !c.data.unordered { skipped[c.data.streamIdentifier] = c.data.streamSequenceNumber }
        }
        guard point != cumulativeAck else { return nil }
        return (
            point,
            skipped.sorted { $0.key < $1.key }.map {
                SCTPForwardTSNChunk.SkippedStream(streamIdentifier: $0.key, streamSequenceNumber: $0.value)
            }
        )
    }

    /// Forgets a stream's sequence numbers after its reset (RFC 6525 §5.1.2).
    mutating func resetSequence(of stream: UInt16) { nextSSN[stream] = nil }
}
