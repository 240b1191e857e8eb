import Codec
import Foundation

// The media paths of a PeerConnectionCore: frames out (encoded or raw through the
// built-in encoders), frames in (assembled, optionally decoded), and RTCP both ways.
extension PeerConnectionCore {
    // MARK: sending

    /// Sends one encoded frame on transceiver `mid`: packetized for its codec, stamped with
    /// the negotiated payload type, kept for NACKs.
    ///
    /// A frame given before the connection can carry media is discarded and counted
    /// (``TransceiverStatistics/framesDiscarded``); for video, the first frame sent after
    /// that, unless it is a keyframe, is preceded by a ``Event/keyframeRequested(mid:)``
    /// event: the peer never got the keyframe its decoder needs.
    public func send(_ frame: EncodedFrame, mid: String, now: Duration) throws(PeerConnectionError) {
        let (t, media) = try sender(mid)
        guard canSendMedia else {
            discard(on: t)
            return
        }
        if t.sender.owesKeyframe {
            t.sender.owesKeyframe = false
            if !frame.isKeyframe { events.append(.keyframeRequested(mid: t.mid)) }
        }
        packetize(frame, on: t, media: media, now: now)
        self.now = now
    }

    /// Whether media can leave now: SRTP keyed and a candidate pair selected.
    var canSendMedia: Bool { transport.srtp != nil && transport.ice.selectedPair != nil }

    /// A frame that cannot be sent yet. Video owes the peer a keyframe afterwards.
    private func discard(on t: Transceiver) {
        t.stats.framesDiscarded += 1
        if t.kind == .video {
            t.sender.owesKeyframe = true
            t.sender.videoEncoder?.requestKeyframe()
        }
    }

    /// Sends raw audio on transceiver `mid` through the built-in Opus encoder: blocks of any
    /// length at 8, 12, 16, 24 or 48 kHz; every whole 20 ms goes out as one packet. Audio
    /// given before the connection can carry it is still encoded (the stream's timeline
    /// stays continuous) but discarded.
    public func send(audio block: AudioFrame<Int16>, mid: String, now: Duration) throws(PeerConnectionError) {
        let (t, media) = try sender(mid)
        guard t.kind == .audio else { throw .encoding("transceiver \(mid) carries video") }
        if t.sender.audioEncoder == nil {
            t.sender.audioEncoder = OpusStreamEncoder(configuration: configuration.audioEncoder)
        }
        let packets: [EncodedFrame]
        do {
            packets = try t.sender.audioEncoder!.encode(block)
        } catch {
            throw .encoding(error.description)
        }
        let level = AudioLevel(block)
        for p in packets {
            t.stats.framesEncoded += 1
            if canSendMedia {
                packetize(p, on: t, media: media, audioLevel: level, now: now)
            } else {
                discard(on: t)
            }
        }
        self.now = now
    }

    /// Sends a picture on transceiver `mid` through the built-in VP8 encoder (created at
    /// the picture's size; a new size re-creates it). Keyframe requests from the peer are
    /// applied to the next picture. A picture given before the connection can carry media
    /// is not encoded (it is counted as discarded), so the first picture sent is a keyframe.
    public func send(video picture: VideoFrame, mid: String, now: Duration) throws(PeerConnectionError) {
        let (t, media) = try sender(mid)
        guard t.kind == .video else { throw .encoding("transceiver \(mid) carries audio") }
        guard canSendMedia else {
            discard(on: t)
            return
        }
        t.sender.owesKeyframe = false
        do {
            if t.sender.videoEncoder == nil {
                var c = VP8EncoderConfiguration(width: picture.width, height: picture.height)
                c.bitrate = configuration.videoBitrate
                t.sender.videoEncoder = try VP8Encoder(configuration: c)
            }
            if let frame = try t.sender.videoEncoder!.encode(picture) {
                t.stats.framesEncoded += 1
                packetize(frame, on: t, media: media, now: now)
            }
        } catch {
            throw .encoding(error.description)
        }
        self.now = now
    }

    private func sender(_ mid: String) throws(PeerConnectionError) -> (Transceiver, NegotiatedMedia) {
        guard let t = transceiver(mid: mid), let media = t.negotiated, t.sends else { throw .unknownMid(mid) }
        return (t, media)
    }

    private func packetize(
        _ frame: EncodedFrame, on t: Transceiver, media: NegotiatedMedia,
        audioLevel: AudioLevel? = nil, now: Duration
    ) {
        let midID = media.extensions["urn:ietf:params:rtp-hdrext:sdes:mid"]
        let levelID = media.extensions["urn:ietf:params:rtp-hdrext:ssrc-audio-level"]
        // Only a peer that can send NACKs gets retransmissions: keep history for it alone.
        let packets = t.sender.packets(
            for: frame, payloadType: media.codec.payloadType, mid: midID.map { ($0, t.mid) },
            audioLevel: levelID.flatMap { id in audioLevel.map { (id, $0) } },
            keepHistory: media.codec.feedback.contains("nack"))
        var sent = false
        for packet in packets where (try? transport.sendRTP(packet)) != nil {
            sent = true
            didSend(packet, on: t, now: now)
        }
        if sent { t.stats.framesSent += 1 }
    }

    /// Counts a packet that went out on `t` (its sender's report counters, the statistics).
    func didSend(_ packet: RTPPacket, on t: Transceiver, now: Duration) {
        t.sender.didSend(packet, now: now)
        t.stats.packetsSent += 1
        t.stats.lastSequenceNumberSent = packet.header.sequenceNumber
        t.stats.bytesSent += packet.payload.count
    }

    /// The id the peer gave header extension `uri` (one BUNDLE: every section agrees).
    func negotiatedExtensionID(_ uri: String) -> UInt8? {
        transceivers.lazy.compactMap { $0.negotiated?.extensions[uri] }.first
    }

    // MARK: receiving RTP

    private func transceiver(for packet: RTPPacket) -> Transceiver? {
        if let t = transceivers.first(where: { $0.receiver.remoteSSRC == packet.header.ssrc }) { return t }
        func unclaimed(_ t: Transceiver) -> Bool {
            t.receives && t.receiver.remoteSSRC == nil && t.negotiated?.codec.payloadType == packet.header.payloadType
        }
        // No a=ssrc from the peer: the mid header extension names the section (RFC 8843 §15).
        // A packet naming a section that cannot take it yet — a relay may start sending as
        // soon as it has answered, before the answer is applied here — is dropped rather than
        // given to another section, which would keep its stream for good.
        if let id = negotiatedExtensionID("urn:ietf:params:rtp-hdrext:sdes:mid"), let mid = packet.header.mid(id: id) {
            guard let t = transceiver(mid: mid), unclaimed(t) else { return nil }
            t.receiver.remoteSSRC = packet.header.ssrc
            return t
        }
        // Without it, the payload type tells the kind (first unclaimed receiving section).
        guard let t = transceivers.first(where: unclaimed) else { return nil }
        t.receiver.remoteSSRC = packet.header.ssrc
        return t
    }

    /// The transceiver whose retransmission stream (RFC 4588) `packet` belongs to: the one
    /// whose RTX SSRC the peer signalled (a=ssrc-group:FID) — several m-lines of a BUNDLE
    /// share the RTX payload type — or, when none matches, the only one using that type.
    private func rtxTransceiver(for packet: RTPPacket) -> Transceiver? {
        let (pt, ssrc) = (packet.header.payloadType, packet.header.ssrc)
        var only: Transceiver?
        var users = 0
        for t in transceivers where t.negotiated?.codec.rtxPayloadType == pt && t.receiver.remoteSSRC != nil {
            if t.receiver.remoteRTXSSRC == ssrc { return t }
            only = t
            users += 1
        }
        return users == 1 ? only : nil
    }

    /// Where a remote SSRC's packets go: to a transceiver as its media, or as the
    /// retransmissions (RFC 4588) of its media.
    enum Route {
        case media(Transceiver)
        case retransmission(Transceiver)
        /// A simulcast layer (by RID) of a transceiver, or its retransmissions.
        case layer(Transceiver, String)
        case layerRetransmission(Transceiver, String)
    }

    /// The transport-wide sequence number extension's id, when negotiated.
    private var transportSequenceID: UInt8? {
        negotiatedExtensionID("http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01")
    }

    /// The simulcast layer `packet` belongs to (RFC 8853): one whose SSRC is already known,
    /// or the one its RID (RFC 8852) names in the section its mid names; a repaired RID
    /// names the layer an RTX packet resends.
    private func layerRoute(of packet: RTPPacket) -> Route? {
        let ssrc = packet.header.ssrc
        for t in transceivers {
            for (rid, r) in t.layers {
                if r.remoteSSRC == ssrc { return .layer(t, rid) }
                if r.remoteRTXSSRC == ssrc { return .layerRetransmission(t, rid) }
            }
        }
        guard let midID = negotiatedExtensionID("urn:ietf:params:rtp-hdrext:sdes:mid"),
            let mid = packet.header.mid(id: midID), let t = transceiver(mid: mid), !t.layers.isEmpty,
            let codec = t.negotiated?.codec
        else { return nil }
        func rid(_ uri: String) -> String? {
            t.negotiated?.extensions[uri].flatMap { packet.header.extensionBytes(id: $0) }
                .map { String(decoding: $0, as: UTF8.self) }
        }
        if packet.header.payloadType == codec.payloadType, let rid = rid(SessionNegotiation.ridExtensions[0]),
            let r = t.layers[rid], r.remoteSSRC == nil
        {
            r.remoteSSRC = ssrc
            return .layer(t, rid)
        }
        if packet.header.payloadType == codec.rtxPayloadType, let rid = rid(SessionNegotiation.ridExtensions[1]),
            let r = t.layers[rid], r.remoteSSRC != nil
        {
            r.remoteRTXSSRC = ssrc
            return .layerRetransmission(t, rid)
        }
        return nil
    }

    /// The route of `packet`'s SSRC: remembered after its first packet (a subscriber
    /// connection can carry 150 streams: no scan of every transceiver per packet). The
    /// memory is cleared by every remote description and bounded, so a peer inventing
    /// SSRCs cannot grow it.
    private func route(of packet: RTPPacket) -> Route? {
        let ssrc = packet.header.ssrc
        if let known = routes[ssrc] { return known }
        let found: Route
        if transceivers.contains(where: { !$0.layers.isEmpty }), let layered = layerRoute(of: packet) {
            found = layered
        } else if let t = rtxTransceiver(for: packet) {
            found = .retransmission(t)
        } else if let t = transceiver(for: packet) {
            found = .media(t)
        } else {
            return nil
        }
        if routes.count < 2 * transceivers.count + 16 { routes[ssrc] = found }
        return found
    }

    func receive(_ packet: RTPPacket, now: Duration) {
        if configuration.sendsTransportFeedback, let id = transportSequenceID,
            let sequence = packet.header.transportSequenceNumber(id: id)
        {
            transportFeedback.record(sequence: sequence, arrival: now)
        }
        var packet = packet
        let t: Transceiver
        var receiver: RTPReceiver?
        var rid: String?
        switch route(of: packet) {
        case .media(let media)?: t = media
        case .layer(let media, let layer)?:
            (t, receiver, rid) = (media, media.layers[layer], layer)
        case .layerRetransmission(let media, let layer)?:
            guard let r = media.layers[layer], let payloadType = media.negotiated?.codec.payloadType,
                let ssrc = r.remoteSSRC,
                let original = try? RTXStream.unwrap(packet, mediaSSRC: ssrc, mediaPayloadType: payloadType)
            else { return }
            (packet, t, receiver, rid) = (original, media, r, layer)
        case .retransmission(let r)?:
            // RTX: unwrap to the original packet.
            guard let payloadType = r.negotiated?.codec.payloadType, let ssrc = r.receiver.remoteSSRC,
                let original = try? RTXStream.unwrap(packet, mediaSSRC: ssrc, mediaPayloadType: payloadType)
            else { return }
            packet = original
            t = r
        case nil: return
        }
        guard let (payloadType, codec) = t.receiveCodec, packet.header.payloadType == payloadType else { return }
        guard let r = receiver ?? (t.layers.isEmpty ? t.receiver : nil) else { return }
        receiverOutputs.removeAll(keepingCapacity: true)
        r.receive(packet, codec: codec, output: t.output, stats: &t.stats, now: now) {
            receiverOutputs.append($0)
        }
        for output in receiverOutputs { handle(output, of: t, receiver: r, now: now) }
        noteDeadline(of: r)
        if t.output.forwarded { keepForwarded(packet, of: t, rid: rid, codec: codec) }
    }

    /// Hands out or sends what a receiver (of `t`, or of one of its layers) produced.
    func handle(_ output: RTPReceiver.Output, of t: Transceiver, receiver: RTPReceiver, now: Duration) {
        switch output {
        case .frame(let frame): events.append(.frame(mid: t.mid, frame))
        case .audio(let pcm): events.append(.audio(mid: t.mid, pcm))
        case .video(let picture): events.append(.video(mid: t.mid, picture))
        case .nack(let lost): sendNACK(lost, on: t, receiver: receiver)
        case .keyframeNeeded: requestKeyframe(on: t, receiver: receiver, now: now)
        case .forward: break  // handled by receive(_:now:), which has the packet
        }
    }

    /// Asks the peer for a keyframe on the video it sends on transceiver `mid` (a PLI; at
    /// most one per `keyframeRequestInterval`) — e.g. to forward a keyframe request when
    /// relaying that video to someone else.
    /// - Parameter rid: the simulcast layer, when the peer sends several (nil: all of them).
    public func requestKeyframe(mid: String, rid: String? = nil, now: Duration) throws(PeerConnectionError) {
        guard let t = transceiver(mid: mid) else { throw .unknownMid(mid) }
        if let rid {
            guard let r = t.layers[rid] else { throw .unknownMid("\(mid) rid \(rid)") }
            requestKeyframe(on: t, receiver: r, now: now)
        } else {
            for r in t.layers.isEmpty ? [t.receiver] : Array(t.layers.values) {
                requestKeyframe(on: t, receiver: r, now: now)
            }
        }
        self.now = now
    }

    /// A PLI — or, when one went out on this stream less than `keyframeRequestInterval`
    /// ago, one as soon as that interval is over (a request is paced, never lost: a relay
    /// switching simulcast layers waits for the keyframe it asks for).
    func requestKeyframe(on t: Transceiver, receiver r: RTPReceiver, now: Duration) {
        guard let ssrc = r.remoteSSRC else { return }
        if let last = r.lastKeyframeRequest, now - last < configuration.keyframeRequestInterval {
            r.keyframeRequestDue = r.keyframeRequestDue ?? last + configuration.keyframeRequestInterval
            noteDeadline(of: r)
            return
        }
        r.keyframeRequestDue = nil
        if (try? transport.sendRTCP([.pictureLossIndication(senderSSRC: t.track.ssrc, mediaSSRC: ssrc)])) != nil {
            r.lastKeyframeRequest = now
            t.stats.keyframeRequestsSent += 1
        }
    }

    func sendNACK(_ lost: [UInt16], on t: Transceiver, receiver r: RTPReceiver) {
        guard let ssrc = r.remoteSSRC else { return }
        if (try? transport.sendRTCP([.nack(senderSSRC: t.track.ssrc, mediaSSRC: ssrc, lost: lost)])) != nil {
            t.stats.nacksSent += lost.count
        }
    }

    // MARK: RTCP

    func receive(_ packets: [RTCPPacket], now: Duration) {
        for packet in packets {
            switch packet {
            case .pictureLossIndication(_, let media):
                keyframeRequested(ssrc: media)
            case .fullIntraRequest(_, let entries):
                for e in entries { keyframeRequested(ssrc: e.ssrc) }
            case .nack(_, let media, let lost):
                guard let t = transceivers.first(where: { $0.track.ssrc == media }) else { continue }
                for seq in lost {
                    guard let resend = t.sender.retransmission(of: seq) else { continue }
                    if (try? transport.sendRTP(resend)) != nil { t.stats.retransmissions += 1 }
                }
            case .senderReport(let ssrc, let ntp, let rtp, _, _, let reports):
                if let t = transceivers.first(where: { $0.receiver.remoteSSRC == ssrc }) {
                    t.receiver.statistics?.recordSenderReport(ntpTimestamp: ntp, arrival: now)
                    events.append(
                        .senderReport(
                            mid: t.mid,
                            SenderClock(
                                rtpTimestamp: rtp, wallClock: RTCPTime.duration(ntp),
                                mediaTime: t.receiver.audioDecoder?.mediaTime(ofRTPTimestamp: rtp))))
                }
                apply(reports, now: now)
            case .receiverReport(_, let reports):
                apply(reports, now: now)
            default: break
            }
        }
    }

    private func keyframeRequested(ssrc: UInt32) {
        guard let t = transceivers.first(where: { $0.track.ssrc == ssrc }) else { return }
        t.stats.keyframeRequestsReceived += 1
        t.sender.videoEncoder?.requestKeyframe()
        events.append(.keyframeRequested(mid: t.mid))
    }

    private func apply(_ reports: [RTCPReportBlock], now: Duration) {
        for block in reports {
            guard let t = transceivers.first(where: { $0.track.ssrc == block.ssrc }) else { continue }
            t.stats.remoteReportedLost = Int(block.cumulativeLost)
            t.stats.remoteReportedJitter = Int(block.jitter)
            if let rtt = RTCPTime.roundTrip(block: block, now: now) { t.stats.roundTrip = rtt }
        }
    }

    /// One SR per sending transceiver (with report blocks on what this side receives), or
    /// an RR when nothing is sent; SDES CNAME in each compound (RFC 3550 §6.1).
    func sendReports(now: Duration) {
        let blocks = transceivers.flatMap { t in t.receivers.compactMap { $0.statistics?.makeReportBlock(now: now) } }
        var compound: [RTCPPacket] = []
        let senders = transceivers.filter { $0.stats.packetsSent > 0 }
        if senders.isEmpty {
            compound.append(
                .receiverReport(ssrc: transceivers.first?.track.ssrc ?? 1, reports: Array(blocks.prefix(31))))
        } else {
            for (i, t) in senders.enumerated() {
                compound.append(
                    t.sender.senderReport(
                        now: now, reports: i == 0 ? Array(blocks.prefix(31)) : []))
            }
        }
        let reporter = senders.first?.track.ssrc ?? transceivers.first?.track.ssrc ?? 1
        let cnameItem: (type: UInt8, text: String) = (1, cname)
        compound.append(.sourceDescription([(ssrc: reporter, items: [cnameItem])]))
        try? transport.sendRTCP(compound)
    }
}
