import MeetKitNet

// Sender and receiver reports (RFC 3550 §6.4): PT 200 and 201, report blocks after the
// reporter's own fields.
extension RTCPPacket {
    static func parseSenderReport(count: UInt8, body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        try need(24, in: b)
        return .senderReport(
            ssrc: be32(b, 0), ntpTimestamp: UInt64(be32(b, 4)) << 32 | UInt64(be32(b, 8)), rtpTimestamp: be32(b, 12),
            packetCount: be32(b, 16), octetCount: be32(b, 20),
            reports: try RTCPReportBlock.parse(b, at: 24, count: Int(count)))
    }

    static func parseReceiverReport(count: UInt8, body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        try need(4, in: b)
        return .receiverReport(ssrc: be32(b, 0), reports: try RTCPReportBlock.parse(b, at: 4, count: Int(count)))
    }

    /// The sender info's fields, then at most 31 report blocks; returns the count field.
    static func serializeSenderReport(
        ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
        reports: [RTCPReportBlock], into body: inout [UInt8]
    ) -> UInt8 {
        for v in [ssrc, UInt32(ntpTimestamp >> 32), UInt32(ntpTimestamp & 0xFFFF_FFFF), rtpTimestamp, packetCount] {
            putBE32(&body, v)
        }
        putBE32(&body, octetCount)
        for r in reports.prefix(31) { r.serialize(into: &body) }
        return UInt8(min(31, reports.count))
    }

    static func serializeReceiverReport(ssrc: UInt32, reports: [RTCPReportBlock], into body: inout [UInt8]) -> UInt8 {
        putBE32(&body, ssrc)
        for r in reports.prefix(31) { r.serialize(into: &body) }
        return UInt8(min(31, reports.count))
    }
}
