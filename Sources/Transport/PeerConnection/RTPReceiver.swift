import Codec

/// The receiving half of a transceiver: the remote RTP stream it takes (and its RTX
/// stream), reception statistics for receiver reports, NACK generation, depacketizing and
/// VP8 frame assembly, the built-in decoders, and keyframe-request pacing. Packets go in
/// with ``receive(_:codec:output:stats:now:emit:)``, timers with
/// ``poll(output:stats:now:emit:)``; what comes out — frames, decoded media, NACKs and
/// keyframe requests to send — goes to `emit`, for the PeerConnection to hand out or send.
///
/// A packet's sequence number is unwrapped once, here, for the statistics, the NACK
/// generator and the audio decoder; an Opus payload is checked once and decoded where it
/// lies in the datagram's buffer.
final class RTPReceiver {
    /// What a received packet or a timer produced.
    enum Output {
        /// A whole encoded frame (an Opus packet, an assembled VP8 frame), when asked for.
        case frame(EncodedFrame)
        /// Decoded audio, when asked for.
        case audio(AudioFrame<Int16>)
        /// A decoded picture, when asked for.
        case video(VideoFrame)
        /// Sequence numbers to ask for again (a NACK to send).
        case nack([UInt16])
        /// A keyframe is needed (a PLI to send, paced by the caller).
        case keyframeNeeded
        /// The packet is for relaying as it is (the receive output is ``ReceiveOutput/forwarded``).
        case forward
    }

    /// The remote stream's SSRC, from the SDP or the first packet.
    var remoteSSRC: UInt32?
    /// The SSRC of the peer's retransmissions of `remoteSSRC`, when it signalled one.
    var remoteRTXSSRC: UInt32?
    var statistics: RTPReceiveStatistics?
    private var assembler: VP8FrameAssembler
    private let assembly: VP8FrameAssembler.Configuration
    var nacks: NACKGenerator?
    var audioDecoder: OpusStreamDecoder?
    var videoDecoder: VP8Decoder?
    var lastKeyframeRequest: Duration?
    /// When a keyframe request that came too soon after the last one goes out.
    var keyframeRequestDue: Duration?
    private var sequence = SequenceUnwrapper(bits: 16)
    /// Whether a whole keyframe has come in on this stream.
    var keyframeReceived = false

    init(assembly: VP8FrameAssembler.Configuration) {
        self.assembly = assembly
        assembler = VP8FrameAssembler(configuration: assembly)
    }

    /// Takes one RTP packet of this stream (already matched to it, RTX unwrapped).
    func receive(
        _ packet: RTPPacket, codec: MediaCodec, output: ReceiveOutput,
        stats: inout PeerConnectionCore.TransceiverStatistics, now: Duration, emit: (Output) -> Void
    ) {
        let header = packet.header
        stats.packetsReceived += 1
        let extended = sequence.unwrap(UInt64(header.sequenceNumber))
        if statistics == nil {
            statistics = RTPReceiveStatistics(ssrc: header.ssrc, clockRate: Int(codec.rtpClockRate))
        }
        statistics?.record(
            extendedSequenceNumber: extended, rtpTimestamp: header.timestamp, arrival: now,
            payloadBytes: packet.payload.count)
        if let lost = nacks?.record(extendedSequenceNumber: extended, now: now), !lost.isEmpty {
            emit(.nack(lost))
        }
        if output.forwarded {
            stats.framesReceived += header.marker || codec == .opus ? 1 : 0
            emit(.forward)
            return
        }
        switch codec {
        case .opus:
            guard let opus = try? OpusRTPDepacketizer.depacketize(payload: packet.payload) else { return }
            stats.framesReceived += 1
            if output.encoded { emit(.frame(OpusRTPDepacketizer.frame(opus, rtpTimestamp: header.timestamp))) }
            if output.decoded {
                decodeAudio(
                    opus, sequence: extended, rtpTimestamp: header.timestamp, output: output, stats: &stats, emit: emit)
            }
        case .vp8:
            // Joining a stream after its keyframe (or its first keyframe lost): ask for one
            // now instead of after the reorder wait and a refused decode.
            if !keyframeReceived, VP8PayloadDescriptor.startsDeltaFrame(packet.payload) {
                emit(.keyframeNeeded)
            }
            for assembled in (try? assembler.insert(packet.payloadPacket, now: now)) ?? [] {
                deliver(assembled, output: output, stats: &stats, emit: emit)
            }
        }
    }

    /// Frames whose reorder wait ran out, and NACKs due.
    func poll(
        output: ReceiveOutput, stats: inout PeerConnectionCore.TransceiverStatistics, now: Duration,
        emit: (Output) -> Void
    ) {
        for assembled in assembler.poll(now: now) { deliver(assembled, output: output, stats: &stats, emit: emit) }
        if let lost = nacks?.poll(now: now), !lost.isEmpty { emit(.nack(lost)) }
    }

    /// When ``poll(output:stats:now:emit:)`` has work.
    var nextDeadline: Duration? { earliest(assembler.nextDeadline, nacks?.nextDeadline) }

    private func decodeAudio(
        _ opus: ValidatedOpusPacket, sequence: Int64, rtpTimestamp: UInt32, output: ReceiveOutput,
        stats: inout PeerConnectionCore.TransceiverStatistics, emit: (Output) -> Void
    ) {
        if audioDecoder == nil {
            audioDecoder = try? OpusStreamDecoder(sampleRate: output.audioSampleRate, channels: output.audioChannels)
        }
        guard let decoder = audioDecoder else {
            stats.decodeErrors += 1
            return
        }
        let invalidBefore = decoder.statistics.packetsInvalid
        decoder.decode(opus, extendedSequenceNumber: sequence, rtpTimestamp: rtpTimestamp) { emit(.audio($0)) }
        stats.framesDecoded = decoder.statistics.packetsDecoded
        stats.decodeErrors += decoder.statistics.packetsInvalid - invalidBefore
    }

    private func deliver(
        _ assembled: VP8FrameAssembler.Output, output: ReceiveOutput,
        stats: inout PeerConnectionCore.TransceiverStatistics, emit: (Output) -> Void
    ) {
        switch assembled {
        case .frame(let f):
            stats.framesReceived += 1
            if f.encoded.isKeyframe {
                keyframeReceived = true
                keyframeRequestDue = nil  // what a paced request would have asked for came
            }
            if output.encoded { emit(.frame(f.encoded)) }
            if output.decoded { decodeVideo(f.encoded, stats: &stats, emit: emit) }
        case .incomplete:
            stats.framesLost += 1
            videoDecoder?.frameLost()
            emit(.keyframeNeeded)
        }
    }

    private func decodeVideo(
        _ frame: EncodedFrame, stats: inout PeerConnectionCore.TransceiverStatistics, emit: (Output) -> Void
    ) {
        if videoDecoder == nil { videoDecoder = try? VP8Decoder() }
        guard let decoder = videoDecoder else {
            stats.decodeErrors += 1
            return
        }
        do {
            if let picture = try decoder.decode(frame) {
                stats.framesDecoded += 1
                emit(.video(picture))
            }
        } catch {
            stats.decodeErrors += 1
            emit(.keyframeNeeded)
        }
    }

    /// A new remote source: its sequence numbers and timestamps start afresh.
    func reset() {
        statistics = nil
        sequence = SequenceUnwrapper(bits: 16)
        assembler = VP8FrameAssembler(configuration: assembly)
        if let n = nacks { nacks = NACKGenerator(configuration: n.configuration) }
        audioDecoder = nil
        videoDecoder = nil
        keyframeReceived = false
    }
}
