import MeetKitNet

/// The last packets sent on a stream, kept to answer NACKs (RFC 4585 §6.2.1). A ring of
/// fixed size indexed by sequence number: storing and looking up allocate nothing.
///
/// ```swift
/// var history = RTPSendHistory(capacity: 1024)
/// history.store(packet)
/// for seq in nackedSequenceNumbers { if let p = history.packet(sequenceNumber: seq) { resend(p) } }
/// ```
public struct RTPSendHistory: Sendable {
    private var slots: [RTPPacket?] = []
    private let size: Int

    /// A history of the last `capacity` packets (rounded up to a power of two). The slots
    /// are allocated with the first packet, so an idle stream costs nothing.
    public init(capacity: Int = 1024) {
        var size = 1
        while size < max(1, min(capacity, 32768)) { size <<= 1 }
        self.size = size
    }

    /// Keeps a sent packet, replacing the one `capacity` sequence numbers earlier.
    public mutating func store(_ packet: RTPPacket) {
        if slots.isEmpty { slots = [RTPPacket?](repeating: nil, count: size) }
        slots[Int(packet.header.sequenceNumber) & (size - 1)] = packet
    }

    /// The packet sent with `sequenceNumber`, if still held.
    public func packet(sequenceNumber: UInt16) -> RTPPacket? {
        guard !slots.isEmpty, let p = slots[Int(sequenceNumber) & (size - 1)], p.header.sequenceNumber == sequenceNumber
        else {
            return nil
        }
        return p
    }
}

/// The RTP retransmission payload format (RFC 4588 §4): a resent packet travels on its
/// own SSRC and payload type, its payload prefixed by the original sequence number (OSN).
public struct RTXStream: Sendable {
    /// The RTX stream's SSRC (a=ssrc-group:FID pairs it with the media SSRC).
    public let ssrc: UInt32
    /// The RTX payload type (a=fmtp:<pt> apt=<media pt>).
    public let payloadType: UInt8
    /// The next RTX sequence number.
    public private(set) var nextSequenceNumber: UInt16

    /// An RTX stream with its own SSRC, payload type and random first sequence number.
    public init(ssrc: UInt32, payloadType: UInt8, firstSequenceNumber: UInt16 = .random(in: 0...UInt16.max)) {
        self.ssrc = ssrc
        self.payloadType = payloadType
        nextSequenceNumber = firstSequenceNumber
    }

    /// Wraps an original packet for retransmission.
    public mutating func wrap(_ original: RTPPacket) -> RTPPacket {
        var header = original.header
        header.ssrc = ssrc
        header.payloadType = payloadType
        header.sequenceNumber = nextSequenceNumber
        nextSequenceNumber &+= 1
        let osn = original.header.sequenceNumber
        return RTPPacket(header: header, payload: ([UInt8(osn >> 8), UInt8(osn & 0xFF)] + original.payload)[...])
    }

    /// Recovers the original packet from an RTX packet, given the media stream's SSRC and
    /// payload type.
    /// - Throws: ``RTPError/truncated(needed:available:)`` when the payload has no OSN.
    public static func unwrap(_ rtx: RTPPacket, mediaSSRC: UInt32, mediaPayloadType: UInt8) throws(RTPError)
        -> RTPPacket
    {
        guard rtx.payload.count >= 2 else { throw .truncated(needed: 2, available: rtx.payload.count) }
        let start = rtx.payload.startIndex
        var header = rtx.header
        header.ssrc = mediaSSRC
        header.payloadType = mediaPayloadType
        header.sequenceNumber = UInt16(rtx.payload[start]) << 8 | UInt16(rtx.payload[start + 1])
        return RTPPacket(header: header, payload: rtx.payload.dropFirst(2))
    }
}
