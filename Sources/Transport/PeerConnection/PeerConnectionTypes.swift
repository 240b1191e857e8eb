import Codec

/// Why a PeerConnection operation failed.
public enum PeerConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The remote description cannot be used.
    case negotiation(NegotiationError)
    /// DTLS setup failed.
    case dtls(DTLSError)
    /// The call needs a state the connection is not in (e.g. an answer without an offer).
    case invalidState(String)
    /// No transceiver with this mid can send.
    case unknownMid(String)
    /// The built-in encoder refused the raw frame.
    case encoding(String)
    /// A data channel operation was refused.
    case dataChannel(DataChannelError)

    public var description: String {
        switch self {
        case .negotiation(let e): e.description
        case .dtls(let e): e.description
        case .invalidState(let why): "invalid state: \(why)"
        case .unknownMid(let mid): "no sending transceiver with mid \(mid)"
        case .encoding(let why): "encoding failed: \(why)"
        case .dataChannel(let e): e.description
        }
    }
}

/// The aggregate state of a PeerConnection (W3C WebRTC `RTCPeerConnectionState`): ICE
/// and DTLS together.
public enum PeerConnectionState: String, Sendable, Hashable {
    /// Nothing negotiated yet.
    case new
    /// ICE checks or the DTLS handshake in progress.
    case connecting
    /// A pair is selected and DTLS completed: media flows.
    case connected
    /// The selected pair went silent; it may recover.
    case disconnected
    /// ICE or DTLS failed.
    case failed
    /// Closed by the application.
    case closed
}

/// JSEP signaling states (RFC 8829 §3.2).
public enum SignalingState: String, Sendable, Hashable {
    /// No offer outstanding.
    case stable
    /// This side's offer is applied; waiting for the answer.
    case haveLocalOffer
    /// The peer's offer is applied; an answer is due.
    case haveRemoteOffer
    /// Closed.
    case closed
}

/// What a transceiver hands out for the media it receives: the assembled encoded frames
/// (Opus packets, whole VP8 frames), decoded frames (PCM, I420), or both.
public struct ReceiveOutput: Sendable, Hashable {
    /// Deliver ``PeerConnectionCore/Event/frame(mid:_:)`` events.
    public var encoded: Bool
    /// Decode and deliver ``PeerConnectionCore/Event/audio(mid:_:)`` and
    /// ``PeerConnectionCore/Event/video(mid:_:)`` events.
    public var decoded: Bool
    /// Sample rate of decoded audio (8, 12, 16, 24 or 48 kHz).
    public var audioSampleRate: Int
    /// Channels of decoded audio (1 or 2).
    public var audioChannels: Int
    /// Hand each received RTP packet out as it is, for relaying (see
    /// ``PeerConnectionCore/takeForwardedPacket()``): no frame assembly, no decoding.
    public var forwarded = false

    /// Encoded frames only (the default: nothing is decoded unless asked for).
    public static let encoded = ReceiveOutput(encoded: true, decoded: false, audioSampleRate: 48_000, audioChannels: 1)

    /// Decoded frames only; audio at `audioSampleRate` with `audioChannels`.
    public static func decoded(audioSampleRate: Int = 48_000, audioChannels: Int = 1) -> ReceiveOutput {
        ReceiveOutput(encoded: false, decoded: true, audioSampleRate: audioSampleRate, audioChannels: audioChannels)
    }

    /// Received packets as they are, for a relay (an SFU) to send on.
    public static let forwarded = ReceiveOutput(
        encoded: false, decoded: false, audioSampleRate: 48_000, audioChannels: 1, forwarded: true)

    /// Encoded and decoded frames.
    public static func both(audioSampleRate: Int = 48_000, audioChannels: Int = 1) -> ReceiveOutput {
        ReceiveOutput(encoded: true, decoded: true, audioSampleRate: audioSampleRate, audioChannels: audioChannels)
    }
}

/// Settings of a PeerConnection beyond ICE.
public struct PeerConnectionConfiguration: Sendable {
    /// Send transport-wide congestion control feedback for received media when the peer
    /// numbers its packets (the transport-wide-cc extension): what libwebrtc senders
    /// estimate their bandwidth from. Off by default.
    public var sendsTransportFeedback = false
    /// Whether an answer takes the peer's transport-wide congestion control (its sequence
    /// number extension and `transport-cc` feedback). A relay that does not send that
    /// feedback turns it off: libwebrtc senders then estimate their bandwidth from receiver
    /// reports and ramp up, where with transport-cc negotiated and its feedback missing (or
    /// not to their liking) their estimate collapses and they stop their upper simulcast layers.
    public var negotiatesTransportCC = true
    /// ICE settings (no STUN or TURN server unless named here). The ICE role is set by
    /// JSEP (the offerer controls), not by `ice.role`.
    public var ice = ICEConfiguration()
    /// The DTLS certificate; generated per connection when nil.
    public var certificate: DTLSCertificate?
    /// The SCTP association of the data channels.
    public var sctp = SCTPConfiguration()
    /// NACK generation for received video when the peer supports it; nil to send none.
    public var retransmissionRequests: NACKGenerator.Configuration? = .init()
    /// VP8 reassembly limits. With NACKs on, the reorder window should exceed a round trip
    /// so that retransmissions arrive in time.
    public var videoAssembly: VP8FrameAssembler.Configuration = {
        var c = VP8FrameAssembler.Configuration()
        c.reorderWindow = .milliseconds(300)
        return c
    }()
    /// Shortest time between two keyframe requests on one stream.
    public var keyframeRequestInterval: Duration = .milliseconds(300)
    /// Opus settings of the built-in audio encoder (rate and channels follow the audio).
    public var audioEncoder: OpusEncoderConfiguration = {
        var c = OpusEncoderConfiguration()
        c.inbandFEC = true
        c.expectedPacketLossPercent = 5
        return c
    }()
    /// Target bitrate of the built-in VP8 encoder, in bit/s.
    public var videoBitrate = 800_000
    /// When set, the connection's sockets are read at most once per interval while
    /// datagrams keep coming (an idle socket is still read as soon as one arrives): one
    /// wakeup for many datagrams instead of one per datagram, which saves a receiver of
    /// many streams — a bot recording a room of 150 speakers — a third of its CPU outside
    /// decoding, for up to that much more delay. The driver then reads the sockets itself
    /// (recvmmsg into buffers it keeps) instead of through SwiftNIO's channel pipeline. Keep
    /// it a few milliseconds: datagrams wait in the socket's buffer meanwhile. Nil (the
    /// default) reads each datagram as it comes.
    public var readInterval: Duration?

    /// The defaults.
    public init() {}
}

extension PeerConnectionCore {
    /// Counters of one transceiver.
    public struct TransceiverStatistics: Sendable, Equatable {
        /// RTP packets sent (retransmissions excluded).
        public var packetsSent = 0
        /// Payload bytes sent.
        public var bytesSent = 0
        /// Frames that went out (at least one of their packets was sent).
        public var framesSent = 0
        /// Raw frames encoded by the built-in encoder.
        public var framesEncoded = 0
        /// Frames given before the connection could carry media (or audio encoded then),
        /// dropped without being sent.
        public var framesDiscarded = 0
        /// RTP packets received.
        public var packetsReceived = 0
        /// Payload bytes received.
        public var bytesReceived = 0
        /// Packets never received (RFC 3550 cumulative loss; retransmitted ones count as received).
        public var packetsLost = 0
        /// Interarrival jitter, in seconds.
        public var jitter: Double = 0
        /// Frames received whole.
        public var framesReceived = 0
        /// Frames lost (incomplete).
        public var framesLost = 0
        /// Frames decoded by the built-in decoder.
        public var framesDecoded = 0
        /// Lost audio packets rebuilt by FEC or concealment.
        public var packetsConcealed = 0
        /// Frames the decoder refused (corrupt, or waiting for a keyframe).
        public var decodeErrors = 0
        /// Packets resent after a NACK.
        public var retransmissions = 0
        /// Sequence numbers asked for in NACKs.
        public var nacksSent = 0
        /// Sequence number of the last RTP packet sent.
        public var lastSequenceNumberSent: UInt16?
        /// Keyframe requests sent.
        public var keyframeRequestsSent = 0
        /// Keyframe requests received.
        public var keyframeRequestsReceived = 0
        /// Packets the peer reported lost (cumulative, from its last report).
        public var remoteReportedLost = 0
        /// Jitter the peer reported, in timestamp units.
        public var remoteReportedJitter = 0
        /// Round-trip time from the peer's last report.
        public var roundTrip: Duration?
    }
}

/// What a sender report (RFC 3550 §6.4.1) says: the sender's clock read `wallClock` when
/// its media time was `rtpTimestamp`.
public struct SenderClock: Sendable, Hashable {
    /// The RTP timestamp, as sent.
    public var rtpTimestamp: UInt32
    /// The sender's clock (NTP format, as a time since that clock's origin: wall-clock time
    /// for browsers, an uptime for some stacks).
    public var wallClock: Duration
    /// The same instant on the timeline of the decoded audio this transceiver hands out
    /// (``Codec/AudioFrame/timestamp``), when it decodes audio.
    public var mediaTime: MediaTime?

    /// A sender clock reading from its parts.
    public init(rtpTimestamp: UInt32, wallClock: Duration, mediaTime: MediaTime? = nil) {
        self.rtpTimestamp = rtpTimestamp
        self.wallClock = wallClock
        self.mediaTime = mediaTime
    }
}
