import Codec

/// The receiving half of a transceiver: the remote RTP stream it takes (and its RTX
/// stream), reception statistics for receiver reports, NACK generation, VP8 frame
/// assembly, the built-in decoders, and keyframe-request pacing.
final class RTPReceiver {
    /// The remote stream's SSRC, from the SDP or the first packet.
    var remoteSSRC: UInt32?
    /// The SSRC of the peer's retransmissions of `remoteSSRC`, when it signalled one.
    var remoteRTXSSRC: UInt32?
    var statistics: RTPReceiveStatistics?
    private(set) var assembler: VP8FrameAssembler
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

    /// Reassembles a VP8 packet; returns the frames (or losses) it completes.
    func assemble(_ packet: RTPPacket, now: Duration) -> [VP8FrameAssembler.Output] {
        (try? assembler.insert(packet.payloadPacket, now: now)) ?? []
    }

    /// Frames whose wait ran out.
    func pollAssembler(now: Duration) -> [VP8FrameAssembler.Output] { assembler.poll(now: now) }

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
