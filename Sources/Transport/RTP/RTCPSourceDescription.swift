import MeetKitNet

// Source description (RFC 3550 §6.5), PT 202: per source, items of (type, text) ended by
// a zero byte and padded to 32 bits.
extension RTCPPacket {
    static func parseSourceDescription(count: UInt8, body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        var chunks: [(ssrc: UInt32, items: [(type: UInt8, text: String)])] = []
        var i = 0
        for _ in 0..<count {
            try need(i + 4, in: b)
            let ssrc = be32(b, i)
            i += 4
            var items: [(type: UInt8, text: String)] = []
            while i < b.count, b[i] != 0 {
                try need(i + 2, in: b)
                let n = Int(b[i + 1])
                try need(i + 2 + n, in: b)
                items.append((b[i], String(decoding: b[(i + 2)..<(i + 2 + n)], as: UTF8.self)))
                i += 2 + n
            }
            i += 1
            i = (i + 3) & ~3  // chunks end on a 32-bit boundary
            chunks.append((ssrc, items))
        }
        return .sourceDescription(chunks)
    }

    static func serializeSourceDescription(
        _ chunks: [(ssrc: UInt32, items: [(type: UInt8, text: String)])], into body: inout [UInt8]
    ) -> UInt8 {
        for chunk in chunks.prefix(31) {
            putBE32(&body, chunk.ssrc)
            for item in chunk.items {
                let text = Array(item.text.utf8.prefix(255))
                body.append(item.type)
                body.append(UInt8(text.count))
                body += text
            }
            body.append(0)
            while body.count % 4 != 0 { body.append(0) }
        }
        return UInt8(min(31, chunks.count))
    }
}
