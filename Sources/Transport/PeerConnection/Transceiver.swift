import Codec

/// One m-line's worth of state: what is sent (SSRCs, sequence numbers, send history, the
/// built-in encoders) and what is received (statistics, reassembly, NACKs, decoders).
final class Transceiver {
    let mid: String
    let kind: MediaKind
    var direction: MediaDirection
    let track: LocalTrackIdentity
    var output = ReceiveOutput.encoded
    var negotiated: NegotiatedMedia?
    /// The remote (stream, track) last announced by a remoteTrack event.
    var announcedRemote: (String, String)?

    // Send side.
    var sequence = UInt16.random(in: 0...UInt16.max)
    let timestampOffset = UInt32.random(in: 0...UInt32.max)
    var history = RTPSendHistory(capacity: 1024)
    var rtx: RTXStream?
    var vp8Packetizer = try! VP8RTPPacketizer(maxPayloadSize: 1100)
    /// DTX packets are sent as given (a frame source may rely on them).
    var opusPacketizer = OpusRTPPacketizer(suppressDTX: false)
    var audioEncoder: OpusStreamEncoder?
    var videoEncoder: VP8Encoder?
    var lastSentTimestamp: UInt32 = 0
    /// When the packet with `lastSentTimestamp` went out.
    var lastSentAt: Duration = .zero
    var packetCount: UInt32 = 0
    var octetCount: UInt32 = 0
    /// Video frames were discarded before the connection could carry them: the peer has
    /// not had the keyframe it needs.
    var owesKeyframe = false

    // Receive side.
    var remoteSSRC: UInt32?
    /// The SSRC of the peer's retransmissions of `remoteSSRC`, when it signalled one.
    var remoteRTXSSRC: UInt32?
    var receive: RTPReceiveStatistics?
    var assembler: VP8FrameAssembler
    let assembly: VP8FrameAssembler.Configuration
    var nacks: NACKGenerator?
    var audioDecoder: OpusStreamDecoder?
    var videoDecoder: VP8Decoder?
    var lastKeyframeRequest: Duration?
    /// Whether a whole keyframe has come in on this stream.
    var keyframeReceived = false
    var stats = PeerConnectionCore.TransceiverStatistics()

    init(
        mid: String, kind: MediaKind, direction: MediaDirection, track: LocalTrackIdentity,
        assembly: VP8FrameAssembler.Configuration
    ) {
        self.mid = mid
        self.kind = kind
        self.direction = direction
        self.track = track
        self.assembly = assembly
        assembler = VP8FrameAssembler(configuration: assembly)
    }

    var sends: Bool { direction == .sendrecv || direction == .sendonly }

    /// A new remote source: its sequence numbers and timestamps start afresh.
    func resetReceiver() {
        receive = nil
        assembler = VP8FrameAssembler(configuration: assembly)
        if let n = nacks { nacks = NACKGenerator(configuration: n.configuration) }
        audioDecoder = nil
        videoDecoder = nil
        keyframeReceived = false
    }
}
