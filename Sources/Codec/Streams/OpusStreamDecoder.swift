/// Decodes an incoming Opus RTP stream into continuous PCM: packets are given with their
/// RTP sequence number and timestamp in arrival order; lost packets are rebuilt from the
/// in-band FEC of the next packet when it carries some (RFC 6716 §2.1.7), or concealed
/// (PLC), so the output has no holes; late and duplicate packets are dropped and counted.
///
/// Output frames are at the rate and channel count chosen here (libopus decodes natively
/// at 8, 12, 16, 24 or 48 kHz — 16 kHz mono suits speech engines). Their timestamps count
/// from the stream's first packet, in 48 kHz ticks (RTP time); concealed frames carry the
/// time where they fill in, so a recorder can place every frame by its timestamp.
///
/// This is a no-wait decoder: it decodes each packet as it arrives and never reorders.
/// Recorders and bots, which play nothing out, want exactly that.
///
/// ```swift
/// let stream = try OpusStreamDecoder(sampleRate: 16_000, channels: 1)
/// for pcm in stream.decode(packet.payload, sequenceNumber: seq, rtpTimestamp: ts) { wav.write(pcm) }
/// ```
public final class OpusStreamDecoder {
    /// Counters.
    public struct Statistics: Sendable, Equatable {
        /// Packets decoded.
        public var packetsDecoded = 0
        /// Lost packets rebuilt from FEC or concealed.
        public var packetsConcealed = 0
        /// Packets that arrived after a later one and were dropped (duplicates included).
        public var packetsLate = 0
        /// Packets libopus refused.
        public var packetsInvalid = 0
    }

    /// Output rate.
    public var sampleRate: Int { decoder.sampleRate }
    /// Output channels.
    public var channels: Int { decoder.channels }
    /// Most consecutive lost packets concealed; a longer gap is skipped (the timeline
    /// jumps) rather than filled with synthetic audio.
    public var maxConcealedPackets = 25
    /// Counters.
    public private(set) var statistics = Statistics()
    private let decoder: OpusDecoder
    private var sequence = SequenceUnwrapper(bits: 16)
    private var highestSequence: Int64?
    private var timestamps = SequenceUnwrapper(bits: 32)
    private var firstTimestamp: Int64?
    /// Where the last output ended, in 48 kHz ticks from the first packet: concealed
    /// frames continue from there.
    private var outputEnd: Int64 = 0

    /// A decoder producing `sampleRate` Hz, `channels`-channel PCM.
    public init(sampleRate: Int = 48_000, channels: Int = 1) throws(OpusError) {
        decoder = try OpusDecoder(sampleRate: sampleRate, channels: channels)
    }

    /// Where RTP timestamp `rtpTimestamp` (of this stream, e.g. from a sender report) lies on
    /// the output's timeline; nil before the first packet.
    public func mediaTime(ofRTPTimestamp rtpTimestamp: UInt32) -> MediaTime? {
        guard let firstTimestamp, timestamps.highest != nil else { return nil }
        return MediaTime(value: timestamps.peek(UInt64(rtpTimestamp)) - firstTimestamp, timescale: 48_000)
    }

    /// Decodes one packet; returns the PCM for the packets lost just before it (if any)
    /// followed by its own. Returns nothing for a late, duplicate or invalid packet.
    public func decode(_ packet: [UInt8], sequenceNumber: UInt16, rtpTimestamp: UInt32) -> [AudioFrame<Int16>] {
        var out: [AudioFrame<Int16>] = []
        guard let opus = try? ValidatedOpusPacket(packet[...]) else {
            if isLate(sequenceNumber) { statistics.packetsLate += 1 } else { statistics.packetsInvalid += 1 }
            return out
        }
        decode(opus, sequenceNumber: sequenceNumber, rtpTimestamp: rtpTimestamp) { out.append($0) }
        return out
    }

    /// Decodes one checked packet in place (the receive path's form: no copy of the packet,
    /// no array of results): `body` gets the PCM for the packets lost just before it (if
    /// any), then its own. Gets nothing for a late or duplicate packet.
    public func decode(
        _ packet: ValidatedOpusPacket, sequenceNumber: UInt16, rtpTimestamp: UInt32,
        _ body: (AudioFrame<Int16>) -> Void
    ) {
        decode(
            packet, extendedSequenceNumber: sequence.unwrap(UInt64(sequenceNumber)), rtpTimestamp: rtpTimestamp, body)
    }

    /// ``decode(_:sequenceNumber:rtpTimestamp:_:)`` with the sequence number already
    /// extended to 64 bits by a receiver that unwraps it once for everything it feeds.
    public func decode(
        _ packet: ValidatedOpusPacket, extendedSequenceNumber seq: Int64, rtpTimestamp: UInt32,
        _ body: (AudioFrame<Int16>) -> Void
    ) {
        let previous = highestSequence
        if let previous, seq <= previous {
            statistics.packetsLate += 1
            return
        }
        highestSequence = seq
        let ts = timestamps.unwrap(UInt64(rtpTimestamp))
        if firstTimestamp == nil { firstTimestamp = ts }
        if let previous, seq - previous - 1 > 0 {
            let lost = Int(seq - previous - 1)
            if lost <= maxConcealedPackets {
                for i in 0..<lost {
                    let at = MediaTime(value: outputEnd, timescale: 48_000)
                    let frame =
                        i == lost - 1
                        ? try? decoder.recoverLoss(using: packet, timestamp: at)
                        : try? decoder.concealLoss(timestamp: at)
                    if let frame {
                        body(frame)
                        outputEnd += frame.duration.converted(to: 48_000).value
                        statistics.packetsConcealed += 1
                    }
                }
            }
        }
        let at = MediaTime(value: ts - firstTimestamp!, timescale: 48_000)
        do {
            let frame = try decoder.decode(packet, timestamp: at)
            outputEnd = at.value + frame.duration.converted(to: 48_000).value
            statistics.packetsDecoded += 1
            body(frame)
        } catch {
            statistics.packetsInvalid += 1
        }
    }

    /// Whether a packet numbered `sequenceNumber` would come after one already taken.
    private func isLate(_ sequenceNumber: UInt16) -> Bool {
        guard let previous = highestSequence else { return false }
        return sequence.peek(UInt64(sequenceNumber)) <= previous
    }
}
