import Codec

/// One m-line: its JSEP state (mid, kind, direction, what was negotiated) and its two
/// halves, an ``RTPSender`` and an ``RTPReceiver``.
final class Transceiver {
    let mid: String
    let kind: MediaKind
    var direction: MediaDirection
    var track: LocalTrackIdentity
    var output = ReceiveOutput.encoded
    var negotiated: NegotiatedMedia? {
        didSet { receiveCodec = negotiated.map { ($0.codec.payloadType, $0.codec.codec) } }
    }
    /// What the receive path reads of `negotiated` for every packet, kept apart: reading
    /// `negotiated` copies its strings and arrays out of this object (a retain each).
    private(set) var receiveCodec: (payloadType: UInt8, codec: MediaCodec)?
    /// The remote (stream, track) last announced by a remoteTrack event.
    var announcedRemote: (String, String)?

    /// The outgoing stream.
    let sender: RTPSender
    /// The incoming stream.
    let receiver: RTPReceiver
    /// The incoming simulcast layers by RTP stream id (RFC 8853), when the peer sends several.
    var layers: [String: RTPReceiver] = [:]
    /// Every receiver: the stream's and its layers'.
    var receivers: [RTPReceiver] { [receiver] + layers.values }
    var stats = PeerConnectionCore.TransceiverStatistics()

    init(
        mid: String, kind: MediaKind, direction: MediaDirection, track: LocalTrackIdentity,
        assembly: VP8FrameAssembler.Configuration
    ) {
        self.mid = mid
        self.kind = kind
        self.direction = direction
        self.track = track
        sender = RTPSender(ssrc: track.ssrc)
        receiver = RTPReceiver(assembly: assembly)
    }

    var sends: Bool { direction.sends }
    var receives: Bool { direction.receives }
}
