/// Splits VP8 frames into RTP payloads (RFC 7741 §4): a payload descriptor with a
/// 15-bit PictureID on every packet, S=1 on the first packet of a frame, the marker bit
/// on the last one, fragments balanced in size so that none exceeds `maxPayloadSize`.
///
/// ```swift
/// var packetizer = try VP8RTPPacketizer(maxPayloadSize: 1200)
/// for fragment in try packetizer.packetize(frame) { sender.send(fragment) }
/// ```
public struct VP8RTPPacketizer: Sendable {
    /// Largest RTP payload to produce, descriptor included.
    public let maxPayloadSize: Int
    /// PictureID of the next frame (15 bits, wraps).
    public private(set) var pictureID: UInt16

    /// A packetizer producing payloads of at most `maxPayloadSize` bytes (at least 8).
    /// The first PictureID is random unless given, as RFC 7741 §4.2 recommends.
    public init(maxPayloadSize: Int = 1200, initialPictureID: UInt16? = nil) throws(RTPPayloadError) {
        guard maxPayloadSize >= 8 else { throw .invalidConfiguration("max payload size \(maxPayloadSize)") }
        self.maxPayloadSize = maxPayloadSize
        self.pictureID = (initialPictureID ?? UInt16.random(in: 0...0x7FFF)) & 0x7FFF
    }

    /// The payloads carrying `frame`, in sending order.
    /// - Throws: ``RTPPayloadError/emptyPayload`` for an empty frame.
    public mutating func packetize(_ frame: EncodedFrame) throws(RTPPayloadError) -> [RTPPayloadFragment] {
        guard !frame.data.isEmpty else { throw .emptyPayload }
        let timestamp = UInt32(truncatingIfNeeded: frame.timestamp.converted(to: 90_000).value)
        let id = pictureID
        pictureID = (pictureID &+ 1) & 0x7FFF
        let descriptorLength = VP8PayloadDescriptor(startOfPartition: true, pictureID: 0).encodedLength
        let room = maxPayloadSize - descriptorLength
        let count = (frame.data.count + room - 1) / room
        // Balanced sizes: the first `extra` fragments carry one byte more.
        let base = frame.data.count / count
        let extra = frame.data.count % count
        var fragments: [RTPPayloadFragment] = []
        fragments.reserveCapacity(count)
        var offset = 0
        for index in 0..<count {
            let size = base + (index < extra ? 1 : 0)
            var payload: [UInt8] = []
            payload.reserveCapacity(descriptorLength + size)
            VP8PayloadDescriptor(
                nonReference: false, startOfPartition: index == 0, partitionIndex: 0, pictureID: id
            ).write(to: &payload)
            payload.append(contentsOf: frame.data[offset..<(offset + size)])
            offset += size
            fragments.append(RTPPayloadFragment(payload: payload, marker: index == count - 1, timestamp: timestamp))
        }
        return fragments
    }
}
