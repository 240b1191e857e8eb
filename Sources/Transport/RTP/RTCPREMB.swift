import MeetKitNet

// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb), PT 206 FMT 15 with the
// "REMB" identifier: a bitrate as a 6-bit exponent and an 18-bit mantissa, and the SSRCs
// it applies to.
extension RTCPPacket {
    /// Whether an application-layer feedback body carries REMB.
    static func isREMB(_ b: [UInt8]) -> Bool { b.count >= 16 && Array(b[8..<12]) == Array("REMB".utf8) }

    static func parseREMB(body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        let n = Int(b[12])
        try need(16 + 4 * n, in: b)
        let exponent = UInt64(b[13] >> 2)
        let mantissa = UInt64(b[13] & 0x03) << 16 | UInt64(b[14]) << 8 | UInt64(b[15])
        let bitrate = exponent >= 46 ? UInt64.max : mantissa << exponent
        return .remb(senderSSRC: be32(b, 0), bitrate: bitrate, ssrcs: (0..<n).map { be32(b, 16 + 4 * $0) })
    }

    static func serializeREMB(sender: UInt32, bitrate: UInt64, ssrcs: [UInt32], into body: inout [UInt8]) {
        putBE32(&body, sender)
        putBE32(&body, 0)
        body += Array("REMB".utf8)
        var exponent: UInt64 = 0
        while (bitrate >> exponent) > 0x3FFFF { exponent += 1 }
        let mantissa = bitrate >> exponent
        body += [
            UInt8(min(255, ssrcs.count)), UInt8(exponent << 2) | UInt8((mantissa >> 16) & 0x03),
            UInt8((mantissa >> 8) & 0xFF), UInt8(mantissa & 0xFF),
        ]
        for s in ssrcs.prefix(255) { putBE32(&body, s) }
    }
}
