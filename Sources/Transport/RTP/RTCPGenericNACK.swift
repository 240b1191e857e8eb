import MeetKitNet

// Generic NACK (RFC 4585 §6.2.1), PT 205 FMT 1: lost sequence numbers as (PID, BLP) pairs,
// a packet ID and a bitmask of the 16 following it.
extension RTCPPacket {
    static func parseGenericNACK(body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        try need(8, in: b)
        var lost: [UInt16] = []
        var i = 8
        while i + 4 <= b.count {
            let pid = UInt16(b[i]) << 8 | UInt16(b[i + 1])
            let blp = UInt16(b[i + 2]) << 8 | UInt16(b[i + 3])
            lost.append(pid)
            for bit in 0..<16 where blp & (1 << bit) != 0 { lost.append(pid &+ UInt16(bit + 1)) }
            i += 4
        }
        return .nack(senderSSRC: be32(b, 0), mediaSSRC: be32(b, 4), lost: lost)
    }

    static func serializeGenericNACK(sender: UInt32, media: UInt32, lost: [UInt16], into body: inout [UInt8]) {
        putBE32(&body, sender)
        putBE32(&body, media)
        var remaining = lost
        while let pid = remaining.first {
            var blp: UInt16 = 0
            remaining.removeFirst()
            remaining.removeAll { seq in
                let d = seq &- pid
                guard d >= 1, d <= 16 else { return false }
                blp |= 1 << (d - 1)
                return true
            }
            putBE16(&body, pid)
            putBE16(&body, blp)
        }
    }
}
