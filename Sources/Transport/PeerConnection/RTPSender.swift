import Codec

/// The sending half of a transceiver: one outgoing RTP stream (RFC 3550) — numbering and
/// timestamping its packets, packetizing frames through Codec's payload formats, the send
/// history NACKs are answered from (over RTX when negotiated, RFC 4588), the counters its
/// sender reports carry, and the built-in encoders of a track fed raw frames.
final class RTPSender {
    /// The stream's SSRC.
    let ssrc: UInt32
    /// The next sequence number.
    var sequence = UInt16.random(in: 0...UInt16.max)
    /// Added to every media timestamp (RFC 3550 §5.1: a random start).
    let timestampOffset = UInt32.random(in: 0...UInt32.max)
    var history = RTPSendHistory(capacity: 1024)
    var rtx: RTXStream?
    var vp8Packetizer = try! VP8RTPPacketizer(maxPayloadSize: 1100)
    /// DTX packets are sent as given (a frame source may rely on them).
    var opusPacketizer = OpusRTPPacketizer(suppressDTX: false)
    var audioEncoder: OpusStreamEncoder?
    var videoEncoder: VP8Encoder?
    /// Video frames were discarded before the connection could carry them: the peer has
    /// not had the keyframe it needs.
    var owesKeyframe = false
    private(set) var lastSentTimestamp: UInt32 = 0
    /// When the packet with `lastSentTimestamp` went out.
    private(set) var lastSentAt: Duration = .zero
    private(set) var packetCount: UInt32 = 0
    private(set) var octetCount: UInt32 = 0
    /// The RTP clock of what is packetized (48 kHz Opus, 90 kHz VP8).
    private(set) var clockRate = 90_000

    init(ssrc: UInt32) { self.ssrc = ssrc }

    /// The RTP packets of one frame, numbered and stamped with the negotiated payload type
    /// and header extensions; kept for retransmission when `keepHistory`.
    func packets(
        for frame: EncodedFrame, payloadType: UInt8, mid: (id: UInt8, value: String)?,
        audioLevel: (id: UInt8, level: AudioLevel)?, keepHistory: Bool
    ) -> [RTPPacket] {
        clockRate = Int(frame.codec.rtpClockRate)
        let timestamp =
            timestampOffset &+ UInt32(truncatingIfNeeded: frame.timestamp.converted(to: frame.codec.rtpClockRate).value)
        let fragments: [RTPPayloadFragment]
        switch frame.codec {
        case .opus: fragments = opusPacketizer.packetize(frame).map { [$0] } ?? []
        case .vp8: fragments = (try? vp8Packetizer.packetize(frame)) ?? []
        }
        return fragments.map { f in
            var header = RTPHeader(
                payloadType: payloadType, sequenceNumber: sequence, timestamp: timestamp, ssrc: ssrc, marker: f.marker)
            if let mid { header.setMid(id: mid.id, mid.value) }
            if let audioLevel {
                header.setAudioLevel(
                    id: audioLevel.id, voiceActivity: audioLevel.level.voiceActivity, level: audioLevel.level.level)
            }
            sequence &+= 1
            let packet = RTPPacket(header: header, payload: f.payload[...])
            if keepHistory { history.store(packet) }
            return packet
        }
    }

    /// How relayed packets map onto this stream: the source they come from, and what is
    /// added to its sequence numbers and timestamps.
    private struct Relay {
        var sourceSSRC: UInt32
        var sequenceDelta: UInt16
        var timestampDelta: UInt32
    }
    private var relaying: Relay?
    /// The last sequence number sent (for relays: a new source continues after it).
    private var lastSequenceSent: UInt16?

    /// A relayed packet made part of this stream: same payload, this stream's SSRC and
    /// payload type; numbered and timed in its source's order, continuing this stream's
    /// numbering and clock when the source changes.
    func relay(
        _ source: RTPPacket, payloadType: UInt8, clockRate: Int, mid: (id: UInt8, value: String)?,
        audioLevel: (id: UInt8, voiceActivity: Bool, level: UInt8)?, keepHistory: Bool, now: Duration
    ) -> RTPPacket {
        self.clockRate = clockRate
        let h = source.header
        if relaying?.sourceSSRC != h.ssrc {
            // A new source: its next packet follows the last one sent, in sequence and time.
            let next = lastSequenceSent.map { $0 &+ 1 } ?? sequence
            let elapsed = packetCount == 0 ? 0 : Int64(((now - lastSentAt).seconds * Double(clockRate)).rounded())
            let time =
                (packetCount == 0 ? timestampOffset : lastSentTimestamp) &+ UInt32(truncatingIfNeeded: max(1, elapsed))
            relaying = Relay(
                sourceSSRC: h.ssrc, sequenceDelta: next &- h.sequenceNumber, timestampDelta: time &- h.timestamp)
        }
        let map = relaying!
        var header = RTPHeader(
            payloadType: payloadType, sequenceNumber: h.sequenceNumber &+ map.sequenceDelta,
            timestamp: h.timestamp &+ map.timestampDelta, ssrc: ssrc, marker: h.marker)
        if let mid { header.setMid(id: mid.id, mid.value) }
        if let audioLevel {
            header.setAudioLevel(id: audioLevel.id, voiceActivity: audioLevel.voiceActivity, level: audioLevel.level)
        }
        if let last = lastSequenceSent {
            if Int16(bitPattern: header.sequenceNumber &- last) > 0 { lastSequenceSent = header.sequenceNumber }
        } else {
            lastSequenceSent = header.sequenceNumber
        }
        sequence = lastSequenceSent! &+ 1
        let packet = RTPPacket(header: header, payload: source.payload)
        // The history outlives the source's buffer: it keeps a copy.
        if keepHistory { history.store(RTPPacket(header: header, payload: ArraySlice(Array(source.payload)))) }
        return packet
    }

    /// Counts a packet that went out (for sender reports).
    func didSend(_ packet: RTPPacket, now: Duration) {
        packetCount &+= 1
        octetCount &+= UInt32(truncatingIfNeeded: packet.payload.count)
        lastSentTimestamp = packet.header.timestamp
        lastSentAt = now
    }

    /// The resend of packet `sequenceNumber` (wrapped for RTX when negotiated), if the
    /// history still has it.
    func retransmission(of sequenceNumber: UInt16) -> RTPPacket? {
        guard let original = history.packet(sequenceNumber: sequenceNumber) else { return nil }
        return rtx.map { _ in rtx!.wrap(original) } ?? original
    }

    /// This stream's sender report at `now` (RFC 3550 §6.4.1): the RTP time of this
    /// instant, moved on from the last packet by the time since it went out, so receivers
    /// can map media time to the sender's clock.
    func senderReport(now: Duration, reports: [RTCPReportBlock]) -> RTCPPacket {
        let since = Int64(((now - lastSentAt).seconds * Double(clockRate)).rounded())
        let rtpNow = lastSentTimestamp &+ UInt32(truncatingIfNeeded: max(0, since))
        return .senderReport(
            ssrc: ssrc, ntpTimestamp: RTCPTime.ntp(now), rtpTimestamp: rtpNow, packetCount: packetCount,
            octetCount: octetCount, reports: reports)
    }
}
