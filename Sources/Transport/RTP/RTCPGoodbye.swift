import MeetKitNet

// Goodbye (RFC 3550 §6.6), PT 203: the sources leaving and an optional reason.
extension RTCPPacket {
    static func parseGoodbye(count: UInt8, body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        try need(4 * Int(count), in: b)
        let ssrcs = (0..<Int(count)).map { be32(b, 4 * $0) }
        var reason: String?
        let r = 4 * Int(count)
        if b.count > r {
            let n = Int(b[r])
            try need(r + 1 + n, in: b)
            reason = String(decoding: b[(r + 1)..<(r + 1 + n)], as: UTF8.self)
        }
        return .goodbye(ssrcs: ssrcs, reason: reason)
    }

    static func serializeGoodbye(ssrcs: [UInt32], reason: String?, into body: inout [UInt8]) -> UInt8 {
        for s in ssrcs.prefix(31) { putBE32(&body, s) }
        if let reason {
            let text = Array(reason.utf8.prefix(255))
            body.append(UInt8(text.count))
            body += text
        }
        return UInt8(min(31, ssrcs.count))
    }
}
