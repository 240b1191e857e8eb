import MeetKitNet

// Full intra request (RFC 5104 §4.3.1), PT 206 FMT 4: entries of (SSRC, command sequence
// number), each 8 bytes; the media SSRC field is unused (zero).
extension RTCPPacket {
    static func parseFullIntraRequest(body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        try need(8, in: b)
        var entries: [(ssrc: UInt32, sequence: UInt8)] = []
        var i = 8
        while i + 8 <= b.count {
            entries.append((be32(b, i), b[i + 4]))
            i += 8
        }
        return .fullIntraRequest(senderSSRC: be32(b, 0), entries: entries)
    }

    static func serializeFullIntraRequest(
        sender: UInt32, entries: [(ssrc: UInt32, sequence: UInt8)], into body: inout [UInt8]
    ) {
        putBE32(&body, sender)
        putBE32(&body, 0)
        for e in entries {
            putBE32(&body, e.ssrc)
            body += [e.sequence, 0, 0, 0]
        }
    }
}
