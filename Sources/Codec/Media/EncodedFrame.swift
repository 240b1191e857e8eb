/// A codec MeetKit can encode, decode, packetize and store.
public enum MediaCodec: String, Sendable, Hashable, CaseIterable {
    /// Opus audio (RFC 6716), RTP clock 48 kHz.
    case opus
    /// VP8 video (RFC 6386), RTP clock 90 kHz.
    case vp8

    /// Whether the codec carries audio.
    public var isAudio: Bool { self == .opus }

    /// The RTP clock rate of the codec's payload format (RFC 7587 §4.1, RFC 7741 §6.1).
    public var rtpClockRate: Int32 {
        switch self {
        case .opus: 48_000
        case .vp8: 90_000
        }
    }
}

/// One compressed unit of media: an Opus packet or a whole VP8 frame.
///
/// This is what "bring your own media" tracks send and what encoded-frame subscribers
/// receive: MeetKit's encoders produce it, the RTP payload formats split and reassemble
/// it, the file writers store it.
public struct EncodedFrame: Sendable, Equatable {
    /// The codec of `data`.
    public var codec: MediaCodec
    /// The compressed bytes.
    public var data: [UInt8]
    /// Presentation time of the frame.
    public var timestamp: MediaTime
    /// How long the frame plays, when known.
    public var duration: MediaTime?
    /// Whether the frame decodes on its own (always true for Opus).
    public var isKeyframe: Bool

    /// A frame of `codec` holding `data`.
    public init(codec: MediaCodec, data: [UInt8], timestamp: MediaTime, duration: MediaTime? = nil, isKeyframe: Bool) {
        self.codec = codec
        self.data = data
        self.timestamp = timestamp
        self.duration = duration
        self.isKeyframe = isKeyframe
    }
}
