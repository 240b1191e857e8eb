import Codec

/// A received RTP packet handed out for relaying, with what a relay needs to know of it.
public struct ForwardedPacket: Sendable {
    /// The transceiver it arrived on.
    public var mid: String
    /// The simulcast layer it belongs to (its RTP stream id), when the peer sends several.
    public var rid: String?
    /// The packet, decrypted (RTX unwrapped). Its payload lies in the datagram's buffer:
    /// use it before the next input, copy what is kept.
    public var packet: RTPPacket
    /// The audio level it carried (RFC 6464), when negotiated and present.
    public var audioLevel: (voiceActivity: Bool, level: UInt8)?
    /// Whether it starts a VP8 keyframe (where a relayed stream may start or switch).
    public var startsKeyframe: Bool
}

// Relaying (an SFU): packets of transceivers receiving ``ReceiveOutput/forwarded`` are
// handed out one datagram at a time, and sent on another connection's transceiver with
// that stream's SSRC, numbering, timing and payload type.
extension PeerConnectionCore {
    /// The packet the last datagram carried, if its transceiver forwards; take it right
    /// after ``handleDatagram(_:from:to:now:)``, while the datagram's buffer is unchanged.
    public func takeForwardedPacket() -> ForwardedPacket? {
        defer { forwardedPacket = nil }
        return forwardedPacket
    }

    /// The simulcast layers (RTP stream ids) the peer sends on transceiver `mid`, in its
    /// `a=simulcast` order; empty without simulcast.
    public func remoteLayers(mid: String) -> [String] { transceiver(mid: mid)?.negotiated?.remoteRIDs ?? [] }

    func keepForwarded(_ packet: RTPPacket, of t: Transceiver, rid: String?, codec: MediaCodec) {
        let levelID = t.negotiated?.extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"]
        let keyframe = codec == .vp8 && VP8PayloadDescriptor.startsKeyframe(packet.payload)
        if keyframe {
            // A paced keyframe request of this stream is answered.
            (rid.flatMap { t.layers[$0] } ?? t.receiver).keyframeRequestDue = nil
        }
        forwardedPacket = ForwardedPacket(
            mid: t.mid, rid: rid, packet: packet, audioLevel: levelID.flatMap { packet.header.audioLevel(id: $0) },
            startsKeyframe: keyframe)
    }

    /// Sends a relayed packet on transceiver `mid` as part of its own stream: its SSRC,
    /// sequence numbers continuing across changes of source (another publisher, another
    /// simulcast layer), timestamps moved so the stream's clock runs on, the negotiated
    /// payload type, mid and audio-level extensions; kept for NACKs when the peer sends
    /// them. A packet given before the connection can carry media is discarded and counted.
    public func forward(_ forwarded: ForwardedPacket, mid: String, now: Duration) throws(PeerConnectionError) {
        guard let t = transceiver(mid: mid), let media = t.negotiated, t.sends else { throw .unknownMid(mid) }
        self.now = now
        guard canSendMedia else {
            t.stats.framesDiscarded += 1
            return
        }
        let midID = media.extensions["urn:ietf:params:rtp-hdrext:sdes:mid"]
        let levelID = media.extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"]
        let packet = t.sender.relay(
            forwarded.packet, payloadType: media.codec.payloadType, clockRate: Int(media.codec.clockRate),
            mid: midID.map { ($0, t.mid) },
            audioLevel: levelID.flatMap { id in forwarded.audioLevel.map { (id, $0.voiceActivity, $0.level) } },
            keepHistory: media.codec.feedback.contains("nack"), now: now)
        guard (try? transport.sendRTP(packet)) != nil else { return }
        didSend(packet, on: t, now: now)
        if packet.header.marker || t.kind == .audio { t.stats.framesSent += 1 }
    }
}
