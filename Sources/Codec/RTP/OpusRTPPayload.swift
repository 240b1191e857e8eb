/// The Opus RTP payload format (RFC 7587): one Opus packet per RTP packet, 48 kHz clock
/// whatever the encoder's rate.
///
/// ```swift
/// var packetizer = OpusRTPPacketizer()
/// if let fragment = packetizer.packetize(encodedOpus) { sender.send(fragment) }
/// let frame = try OpusRTPDepacketizer.depacketize(received)   // validated Opus packet
/// ```
public struct OpusRTPPacketizer: Sendable {
    /// Whether DTX packets (≤ 2 bytes, "nothing to send") are held back instead of sent.
    public var suppressDTX: Bool
    private var inSilence = false

    /// A packetizer; with `suppressDTX`, silence sends nothing (RFC 7587 §3.1.3).
    public init(suppressDTX: Bool = true) { self.suppressDTX = suppressDTX }

    /// The payload for one Opus packet, or nil for a DTX packet that is not sent. The
    /// marker bit is set on the first packet of a talkspurt, after suppressed silence
    /// (RFC 3551 §4.1).
    public mutating func packetize(_ frame: EncodedFrame) -> RTPPayloadFragment? {
        let timestamp = UInt32(truncatingIfNeeded: frame.timestamp.converted(to: 48_000).value)
        if suppressDTX && OpusPacket.isDiscontinuousTransmission(frame.data) {
            inSilence = true
            return nil
        }
        defer { inSilence = false }
        return RTPPayloadFragment(payload: frame.data, marker: inSilence, timestamp: timestamp)
    }
}

/// Turns Opus RTP payloads back into Opus packets, validating them.
public enum OpusRTPDepacketizer {
    /// The Opus packet carried by `packet`, with its timestamp at 48 kHz.
    /// - Throws: ``RTPPayloadError/emptyPayload`` or ``RTPPayloadError/invalidMedia(reason:)``.
    public static func depacketize(_ packet: RTPPayloadPacket) throws(RTPPayloadError) -> EncodedFrame {
        let opus = try depacketize(payload: packet.payload[...])
        return EncodedFrame(
            codec: .opus, data: packet.payload, timestamp: MediaTime(value: Int64(packet.timestamp), timescale: 48_000),
            duration: MediaTime(value: Int64(opus.samplesPerChannel48k), timescale: 48_000), isKeyframe: true)
    }

    /// The Opus packet an RTP payload carries, checked and left in place: the receive
    /// path's form, which copies and allocates nothing.
    /// - Throws: ``RTPPayloadError/emptyPayload`` or ``RTPPayloadError/invalidMedia(reason:)``.
    @inlinable public static func depacketize(payload: ArraySlice<UInt8>) throws(RTPPayloadError) -> ValidatedOpusPacket
    {
        guard !payload.isEmpty else { throw .emptyPayload }
        do {
            return try ValidatedOpusPacket(payload)
        } catch {
            throw .invalidMedia(reason: error.description)
        }
    }

    /// The frame of a checked packet, its timestamp at 48 kHz (a copy of its bytes: a
    /// value handed out).
    public static func frame(_ opus: ValidatedOpusPacket, rtpTimestamp: UInt32) -> EncodedFrame {
        EncodedFrame(
            codec: .opus, data: Array(opus.bytes), timestamp: MediaTime(value: Int64(rtpTimestamp), timescale: 48_000),
            duration: MediaTime(value: Int64(opus.samplesPerChannel48k), timescale: 48_000), isKeyframe: true)
    }
}
