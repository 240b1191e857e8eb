/// The fields of an RTP packet (RFC 3550 §5.1) that payload formats work with, without
/// any socket or header parsing: Transport fills these in from received packets and
/// turns outgoing ones into real RTP packets.
public struct RTPPayloadPacket: Sendable, Equatable {
    /// RTP sequence number (wraps at 2¹⁶).
    public var sequenceNumber: UInt16
    /// RTP timestamp on the codec's clock (wraps at 2³²).
    public var timestamp: UInt32
    /// The marker bit: last packet of a video frame, first packet of a talkspurt for audio.
    public var marker: Bool
    /// The RTP payload.
    public var payload: [UInt8]

    /// A packet with the given fields.
    public init(sequenceNumber: UInt16, timestamp: UInt32, marker: Bool, payload: [UInt8]) {
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.marker = marker
        self.payload = payload
    }
}

/// One packet's worth of payload produced by a packetizer; the RTP sender adds the
/// sequence number and the timestamp offset.
public struct RTPPayloadFragment: Sendable, Equatable {
    /// The RTP payload.
    public var payload: [UInt8]
    /// The marker bit to send.
    public var marker: Bool
    /// The RTP timestamp on the codec's clock, before the sender's random offset.
    public var timestamp: UInt32

    /// A fragment from its parts.
    public init(payload: [UInt8], marker: Bool, timestamp: UInt32) {
        self.payload = payload
        self.marker = marker
        self.timestamp = timestamp
    }
}

/// Why an RTP payload could not be packetized or depacketized.
public enum RTPPayloadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The payload is empty.
    case emptyPayload
    /// The payload ends inside its payload descriptor.
    case truncatedDescriptor(needed: Int, actual: Int)
    /// The descriptor is followed by no media bytes.
    case noMediaAfterDescriptor
    /// The payload is not valid for its codec.
    case invalidMedia(reason: String)
    /// A frame larger than the assembler accepts.
    case frameTooLarge(bytes: Int, limit: Int)
    /// A packetizer setting is unusable (e.g. a payload size too small for the descriptor).
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .emptyPayload: "empty RTP payload"
        case .truncatedDescriptor(let needed, let actual):
            "RTP payload descriptor needs \(needed) bytes, payload has \(actual)"
        case .noMediaAfterDescriptor: "RTP payload has a descriptor but no media"
        case .invalidMedia(let reason): "invalid media in RTP payload: \(reason)"
        case .frameTooLarge(let bytes, let limit): "frame of \(bytes) bytes exceeds the limit of \(limit)"
        case .invalidConfiguration(let what): "invalid payload format setting: \(what)"
        }
    }
}
