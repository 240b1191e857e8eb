/// Reassembles VP8 frames from RTP packets that may arrive out of order, duplicated or
/// not at all (RFC 7741 §4.5). Sans-IO: every call takes the current time; nothing reads
/// a clock.
///
/// Frames come out in RTP timestamp order. A frame is whole when its first packet (S=1,
/// partition 0), its last packet (marker bit) and every sequence number between them have
/// arrived. A frame that cannot be completed — a packet is missing and the wait is over —
/// comes out as ``Output/incomplete(_:)``, never as a frame: a decoder must not be fed it.
///
/// ```swift
/// var assembler = VP8FrameAssembler()
/// for output in try assembler.insert(packet, now: clock.now) {
///     switch output {
///     case .frame(let f): try decoder.decode(f.encoded)
///     case .incomplete: decoder.frameLost(); requestKeyframe()
///     }
/// }
/// ```
public struct VP8FrameAssembler: Sendable {
    /// Waiting limits.
    public struct Configuration: Sendable, Equatable {
        /// How long a frame waits for a missing packet, counted from the last packet it
        /// received, once a later frame is complete.
        public var reorderWindow: Duration = .milliseconds(40)
        /// How long a frame waits for its packets at most.
        public var maxDelay: Duration = .milliseconds(400)
        /// Largest frame accepted, in bytes; larger frames are dropped as incomplete.
        public var maxFrameSize: Int = 4 << 20
        /// Most packets held; past this the oldest frames are given up.
        public var maxBufferedPackets: Int = 2048

        /// The defaults.
        public init() {}
    }

    /// A whole frame.
    public struct Frame: Sendable, Equatable {
        /// The VP8 frame, with `timestamp` the extended RTP timestamp at 90 kHz.
        public var encoded: EncodedFrame
        /// The RTP timestamp as received.
        public var rtpTimestamp: UInt32
        /// PictureID from the descriptor, when sent.
        public var pictureID: UInt16?
        /// Sequence number of the first packet.
        public var firstSequenceNumber: UInt16
        /// Packets the frame came in.
        public var packetCount: Int
    }

    /// A frame that could not be completed.
    public struct LostFrame: Sendable, Equatable {
        /// Its RTP timestamp, or nil when none of its packets arrived (a whole frame
        /// missing, seen as a gap in sequence numbers).
        public var rtpTimestamp: UInt32?
        /// PictureID, when a packet carrying it arrived.
        public var pictureID: UInt16?
        /// Packets of the frame that did arrive.
        public var packetsReceived: Int
        /// Packets known to be missing, when the frame's extent is known.
        public var packetsMissing: Int?
    }

    /// What the assembler hands out.
    public enum Output: Sendable, Equatable {
        /// A whole frame, ready to decode.
        case frame(Frame)
        /// A frame given up: request a keyframe and tell the decoder.
        case incomplete(LostFrame)
    }

    /// Counters.
    public struct Statistics: Sendable, Equatable {
        /// Packets accepted.
        public var packetsReceived = 0
        /// Packets that arrived after their frame was handed out or given up.
        public var packetsLate = 0
        /// Packets received twice.
        public var packetsDuplicate = 0
        /// Payloads whose descriptor could not be parsed.
        public var packetsMalformed = 0
        /// Whole frames handed out.
        public var framesAssembled = 0
        /// Frames given up.
        public var framesIncomplete = 0
    }

    private struct Piece: Sendable {
        var payload: [UInt8]
        var mediaOffset: Int
    }

    private struct Slot: Sendable {
        var rtpTimestamp: UInt32
        var firstArrival: Duration
        var lastArrival: Duration
        var pieces: [Int64: Piece] = [:]
        var start: Int64?
        var end: Int64?
        var bytes = 0
        var pictureID: UInt16?
        var oversized = false

        /// Whether its first packet (when it came) starts a VP8 keyframe.
        var startsWithKeyframe: Bool {
            guard let start, let first = pieces[start], first.mediaOffset < first.payload.count else { return false }
            return VP8FrameHeader.isKeyframe(firstByte: first.payload[first.mediaOffset])
        }

        var isComplete: Bool {
            guard !oversized, let start, let end, end >= start else { return false }
            return (start...end).allSatisfy { pieces[$0] != nil }
        }
    }

    /// The limits in force.
    public let configuration: Configuration
    /// Counters since creation.
    public private(set) var statistics = Statistics()
    private var sequence = SequenceUnwrapper(bits: 16)
    private var timestamps = SequenceUnwrapper(bits: 32)
    private var slots: [Int64: Slot] = [:]
    private var bufferedPackets = 0
    private var handedOutThroughSequence: Int64?
    private var handedOutThroughTimestamp: Int64?

    /// An assembler with the given limits.
    public init(configuration: Configuration = .init()) { self.configuration = configuration }

    /// Adds a received packet and returns whatever frames it completes or gives up.
    /// - Throws: ``RTPPayloadError`` for a payload whose descriptor is malformed; the packet
    ///   is dropped and counted, the assembler's state is unchanged.
    public mutating func insert(_ packet: RTPPayloadPacket, now: Duration) throws(RTPPayloadError) -> [Output] {
        let descriptor: VP8PayloadDescriptor
        let length: Int
        do {
            (descriptor, length) = try VP8PayloadDescriptor.parse(packet.payload)
        } catch {
            statistics.packetsMalformed += 1
            throw error
        }
        let seq = sequence.unwrap(UInt64(packet.sequenceNumber))
        let ts = timestamps.unwrap(UInt64(packet.timestamp))
        if let done = handedOutThroughTimestamp, ts <= done {
            statistics.packetsLate += 1
            return drain(now: now, flushing: false)
        }
        if let done = handedOutThroughSequence, seq <= done {
            statistics.packetsLate += 1
            return drain(now: now, flushing: false)
        }
        var slot = slots[ts] ?? Slot(rtpTimestamp: packet.timestamp, firstArrival: now, lastArrival: now)
        guard slot.pieces[seq] == nil else {
            statistics.packetsDuplicate += 1
            return drain(now: now, flushing: false)
        }
        statistics.packetsReceived += 1
        slot.lastArrival = max(slot.lastArrival, now)
        if !slot.oversized {
            slot.pieces[seq] = Piece(payload: packet.payload, mediaOffset: length)
            bufferedPackets += 1
            slot.bytes += packet.payload.count - length
            if slot.bytes > configuration.maxFrameSize {
                bufferedPackets -= slot.pieces.count
                slot.pieces.removeAll()
                slot.oversized = true
            }
        }
        if descriptor.startsFrame { slot.start = seq }
        if packet.marker { slot.end = seq }
        if let id = descriptor.pictureID { slot.pictureID = id }
        slots[ts] = slot
        var outputs: [Output] = []
        while bufferedPackets > configuration.maxBufferedPackets, let head = slots.keys.min() {
            outputs.append(giveUp(head))
        }
        outputs += drain(now: now, flushing: false)
        return outputs
    }

    /// Returns frames whose wait is over at `now`. Call it when the deadline passes even
    /// if no packet arrives.
    public mutating func poll(now: Duration) -> [Output] { drain(now: now, flushing: false) }

    /// Hands out everything held: whole frames, and the rest as incomplete. Use at the
    /// end of a stream.
    public mutating func flush() -> [Output] { drain(now: .zero, flushing: true) }

    /// When the next wait ends, if anything is waiting: call ``poll(now:)`` then.
    public var nextDeadline: Duration? {
        guard let head = slots.keys.min(), let slot = slots[head] else { return nil }
        return releaseTime(head, slot)
    }

    /// When the head frame stops waiting, or nil when it may leave at once. ``drain`` and
    /// ``nextDeadline`` both use this, so a deadline always changes something when it passes.
    private func releaseTime(_ head: Int64, _ slot: Slot) -> Duration? {
        // A keyframe needs nothing older: once one is whole, nothing before it is waited for
        // (what comes later is late, and no longer needed).
        let laterKeyframe = slots.contains { $0.key > head && $0.value.isComplete && $0.value.startsWithKeyframe }
        if slot.isComplete {
            // Wait a little when there is nothing to continue from (start of stream, after a
            // loss) or when packets between the previous frame and this one never came: an
            // older frame may still be on its way.
            let gap = handedOutThroughSequence.map { slot.start! > $0 + 1 } ?? true
            let wait = gap && !slot.startsWithKeyframe && !laterKeyframe
            return wait ? slot.lastArrival + configuration.reorderWindow : nil
        }
        if slot.oversized || laterKeyframe { return nil }
        // An incomplete frame waits for the reorder window once a later frame is whole, else
        // for the longest delay.
        let giveUp = slot.firstArrival + configuration.maxDelay
        let laterComplete = slots.contains { $0.key > head && $0.value.isComplete }
        return laterComplete ? min(slot.lastArrival + configuration.reorderWindow, giveUp) : giveUp
    }

    private mutating func drain(now: Duration, flushing: Bool) -> [Output] {
        var outputs: [Output] = []
        while let head = slots.keys.min(), let slot = slots[head] {
            if !flushing, let release = releaseTime(head, slot), now < release { break }
            guard slot.isComplete, let start = slot.start else {
                outputs.append(giveUp(head))
                continue
            }
            if let done = handedOutThroughSequence, start > done + 1 {
                // A whole frame (or its first packets) never came.
                statistics.framesIncomplete += 1
                outputs.append(
                    .incomplete(
                        LostFrame(
                            rtpTimestamp: nil, pictureID: nil, packetsReceived: 0, packetsMissing: Int(start - done - 1)
                        )))
            }
            outputs.append(.frame(handOut(head, slot)))
        }
        return outputs
    }

    private mutating func handOut(_ key: Int64, _ slot: Slot) -> Frame {
        let start = slot.start!
        let end = slot.end!
        var data: [UInt8] = []
        data.reserveCapacity(slot.bytes)
        for seq in start...end {
            let piece = slot.pieces[seq]!
            data.append(contentsOf: piece.payload[piece.mediaOffset...])
        }
        slots[key] = nil
        bufferedPackets -= slot.pieces.count
        handedOutThroughSequence = end
        handedOutThroughTimestamp = key
        statistics.framesAssembled += 1
        let keyframe = VP8FrameHeader.isKeyframe(firstByte: data[0])
        return Frame(
            encoded: EncodedFrame(
                codec: .vp8, data: data, timestamp: MediaTime(value: key, timescale: 90_000), isKeyframe: keyframe),
            rtpTimestamp: slot.rtpTimestamp, pictureID: slot.pictureID,
            firstSequenceNumber: UInt16(truncatingIfNeeded: start), packetCount: Int(end - start + 1))
    }

    private mutating func giveUp(_ key: Int64) -> Output {
        let slot = slots.removeValue(forKey: key)!
        bufferedPackets -= slot.pieces.count
        var missing: Int?
        if let start = slot.start, let end = slot.end, end >= start, !slot.oversized {
            missing = Int(end - start + 1) - slot.pieces.count
        }
        // The lost frame's own missing packets would look like a further gap: skip the
        // gap check for the next frame. Its late packets are still dropped by timestamp.
        handedOutThroughSequence = nil
        handedOutThroughTimestamp = max(handedOutThroughTimestamp ?? key, key)
        statistics.framesIncomplete += 1
        return .incomplete(
            LostFrame(
                rtpTimestamp: slot.rtpTimestamp, pictureID: slot.pictureID, packetsReceived: slot.pieces.count,
                packetsMissing: missing))
    }
}
