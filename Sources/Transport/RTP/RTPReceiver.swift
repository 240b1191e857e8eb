import Codec

/// The receiving half of a transceiver: the remote RTP stream it takes (and its RTX
/// stream), reception statistics for receiver reports, NACK generation, depacketizing and
/// VP8 frame assembly, the built-in decoders, and keyframe-request pacing. Packets go in
/// with ``receive(_:codec:output:stats:now:)``, timers with ``poll(output:stats:now:)``;
/// what comes out — frames, decoded media, NACKs and keyframe requests to send — is for
/// the PeerConnection to hand out or send.
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
    /// Whether a whole keyframe has come in on this stream.
    var keyframeReceived = false

    init(assembly: VP8FrameAssembler.Configuration) {
        self.assembly = assembly
        assembler = VP8FrameAssembler(configuration: assembly)
    }

    /// Takes one RTP packet of this stream (already matched to it, RTX unwrapped).
    func receive(
        _ packet: RTPPacket, codec: NegotiatedCodec, output: ReceiveOutput,
        stats: inout PeerConnectionCore.TransceiverStatistics, now: Duration
    ) -> [Output] {
        var out: [Output] = []
        stats.packetsReceived += 1
        if statistics == nil { statistics = RTPReceiveStatistics(ssrc: packet.header.ssrc, clockRate: codec.clockRate) }
        statistics?.record(
            sequenceNumber: packet.header.sequenceNumber, rtpTimestamp: packet.header.timestamp, arrival: now,
            payloadBytes: packet.payload.count)
        if let lost = nacks?.record(sequenceNumber: packet.header.sequenceNumber, now: now), !lost.isEmpty {
            out.append(.nack(lost))
        }
        switch codec.codec {
        case .opus:
            guard let frame = try? OpusRTPDepacketizer.depacketize(packet.payloadPacket) else { return out }
            stats.framesReceived += 1
            if output.encoded { out.append(.frame(frame)) }
            if output.decoded { decodeAudio(packet, output: output, stats: &stats, into: &out) }
        case .vp8:
            // Joining a stream after its keyframe (or its first keyframe lost): ask for one
            // now instead of after the reorder wait and a refused decode.
            if !keyframeReceived, VP8PayloadDescriptor.startsDeltaFrame(packet.payload) {
                out.append(.keyframeNeeded)
            }
            for assembled in (try? assembler.insert(packet.payloadPacket, now: now)) ?? [] {
                deliver(assembled, output: output, stats: &stats, into: &out)
            }
        }
        return out
    }

    /// Frames whose reorder wait ran out, and NACKs due.
    func poll(output: ReceiveOutput, stats: inout PeerConnectionCore.TransceiverStatistics, now: Duration) -> [Output] {
        var out: [Output] = []
        for assembled in assembler.poll(now: now) { deliver(assembled, output: output, stats: &stats, into: &out) }
        if let lost = nacks?.poll(now: now), !lost.isEmpty { out.append(.nack(lost)) }
        return out
    }

    /// When ``poll(output:stats:now:)`` has work.
    var nextDeadline: Duration? { [assembler.nextDeadline, nacks?.nextDeadline].compactMap { $0 }.min() }

    private func decodeAudio(
        _ packet: RTPPacket, output: ReceiveOutput, stats: inout PeerConnectionCore.TransceiverStatistics,
        into out: inout [Output]
    ) {
        if audioDecoder == nil {
            audioDecoder = try? OpusStreamDecoder(sampleRate: output.audioSampleRate, channels: output.audioChannels)
        }
        guard let decoder = audioDecoder else {
            stats.decodeErrors += 1
            return
        }
        let invalidBefore = decoder.statistics.packetsInvalid
        for pcm in decoder.decode(
            Array(packet.payload), sequenceNumber: packet.header.sequenceNumber, rtpTimestamp: packet.header.timestamp)
        {
            out.append(.audio(pcm))
        }
        stats.framesDecoded = decoder.statistics.packetsDecoded
        stats.decodeErrors += decoder.statistics.packetsInvalid - invalidBefore
    }

    private func deliver(
        _ assembled: VP8FrameAssembler.Output, output: ReceiveOutput,
        stats: inout PeerConnectionCore.TransceiverStatistics, into out: inout [Output]
    ) {
        switch assembled {
        case .frame(let f):
            stats.framesReceived += 1
            if f.encoded.isKeyframe { keyframeReceived = true }
            if output.encoded { out.append(.frame(f.encoded)) }
            if output.decoded { decodeVideo(f.encoded, stats: &stats, into: &out) }
        case .incomplete:
            stats.framesLost += 1
            videoDecoder?.frameLost()
            out.append(.keyframeNeeded)
        }
    }

    private func decodeVideo(
        _ frame: EncodedFrame, stats: inout PeerConnectionCore.TransceiverStatistics, into out: inout [Output]
    ) {
        if videoDecoder == nil { videoDecoder = try? VP8Decoder() }
        guard let decoder = videoDecoder else {
            stats.decodeErrors += 1
            return
        }
        do {
            if let picture = try decoder.decode(frame) {
                stats.framesDecoded += 1
                out.append(.video(picture))
            }
        } catch {
            stats.decodeErrors += 1
            out.append(.keyframeNeeded)
        }
    }

    /// A new remote source: its sequence numbers and timestamps start afresh.
    func reset() {
        statistics = nil
        assembler = VP8FrameAssembler(configuration: assembly)
        if let n = nacks { nacks = NACKGenerator(configuration: n.configuration) }
        audioDecoder = nil
        videoDecoder = nil
        keyframeReceived = false
    }
}
