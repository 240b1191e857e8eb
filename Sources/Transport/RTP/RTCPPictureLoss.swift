import MeetKitNet

// Picture loss indication (RFC 4585 §6.3.1), PT 206 FMT 1: the sender of `mediaSSRC` is
// asked for a keyframe. Two SSRCs, no feedback control information.
extension RTCPPacket {
    static func parsePictureLoss(body b: [UInt8]) throws(RTPError) -> RTCPPacket {
        try need(8, in: b)
        return .pictureLossIndication(senderSSRC: be32(b, 0), mediaSSRC: be32(b, 4))
    }

    static func serializePictureLoss(sender: UInt32, media: UInt32, into body: inout [UInt8]) {
        putBE32(&body, sender)
        putBE32(&body, media)
    }
}
