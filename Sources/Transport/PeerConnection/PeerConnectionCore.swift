import Codec

/// Why a PeerConnection operation failed.
public enum PeerConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The remote description cannot be used.
    case negotiation(NegotiationError)
    /// DTLS setup failed.
    case dtls(DTLSError)
    /// The call needs a state the connection is not in (e.g. an answer without an offer).
    case invalidState(String)
    /// No transceiver with this mid can send.
    case unknownMid(String)

    public var description: String {
        switch self {
        case .negotiation(let e): e.description
        case .dtls(let e): e.description
        case .invalidState(let why): "invalid state: \(why)"
        case .unknownMid(let mid): "no sending transceiver with mid \(mid)"
        }
    }
}

/// A sans-IO PeerConnection (JSEP, RFC 8829) for Opus and VP8 over one BUNDLE transport:
/// transceivers, offer/answer, encoded frames in and out, and the media control a sender
/// and receiver owe each other — sender and receiver reports every second, keyframe
/// requests (PLI) when a frame is lost, NACKs answered from the send history (over RTX
/// when negotiated). Driven like every MeetKit machine: datagrams and timeouts in with the
/// current time, datagrams and events out.
///
/// ```swift
/// let pc = try PeerConnectionCore()
/// pc.start(localAddresses: addresses, now: now)
/// let audio = pc.addTransceiver(.audio)
/// let offer = pc.createOffer()
/// try pc.setRemoteDescription(answer, isOffer: false, now: now)
/// try pc.send(encodedOpusPacket, mid: audio, now: now)
/// ```
public final class PeerConnectionCore: DatagramMachine {
    /// What the connection reports.
    public enum Event: Sendable, Equatable {
        /// An ICE or DTLS transport event.
        case transport(SecureTransportCore.Event)
        /// A whole received frame (an Opus packet, an assembled VP8 frame) on a transceiver.
        case frame(mid: String, EncodedFrame)
        /// The peer asked for a keyframe on this transceiver (PLI or FIR).
        case keyframeRequested(mid: String)
    }

    /// Counters of one transceiver.
    public struct TransceiverStatistics: Sendable, Equatable {
        /// RTP packets sent (retransmissions excluded).
        public var packetsSent = 0
        /// Payload bytes sent.
        public var bytesSent = 0
        /// Frames handed to ``send(_:mid:now:)``.
        public var framesSent = 0
        /// RTP packets received.
        public var packetsReceived = 0
        /// Frames received whole.
        public var framesReceived = 0
        /// Frames lost (incomplete).
        public var framesLost = 0
        /// Packets resent after a NACK.
        public var retransmissions = 0
        /// Sequence number of the last RTP packet sent.
        public var lastSequenceNumberSent: UInt16?
        /// Keyframe requests sent.
        public var keyframeRequestsSent = 0
        /// Keyframe requests received.
        public var keyframeRequestsReceived = 0
        /// Packets the peer reported lost (cumulative, from its last report).
        public var remoteReportedLost = 0
        /// Jitter the peer reported, in timestamp units.
        public var remoteReportedJitter = 0
        /// Round-trip time from the peer's last report.
        public var roundTrip: Duration?
    }

    private final class Transceiver {
        let mid: String
        let kind: MediaKind
        var direction: MediaDirection
        let track: LocalTrackIdentity
        var negotiated: NegotiatedMedia?
        var sequence = UInt16.random(in: 0...UInt16.max)
        let timestampOffset = UInt32.random(in: 0...UInt32.max)
        var history = RTPSendHistory(capacity: 1024)
        var rtx: RTXStream?
        var vp8Packetizer = try! VP8RTPPacketizer(maxPayloadSize: 1100)
        var assembler = VP8FrameAssembler()
        var receive: RTPReceiveStatistics?
        var remoteSSRC: UInt32?
        var stats = TransceiverStatistics()
        var lastSentTimestamp: UInt32 = 0
        var packetCount: UInt32 = 0
        var octetCount: UInt32 = 0

        init(mid: String, kind: MediaKind, direction: MediaDirection, track: LocalTrackIdentity) {
            self.mid = mid
            self.kind = kind
            self.direction = direction
            self.track = track
        }
    }

    /// The secure transport underneath.
    public let transport: SecureTransportCore
    private var transceivers: [Transceiver] = []
    private var events: [Event] = []
    private var pendingOffer: SessionDescription?
    private var sessionID = UInt64.random(in: 1...UInt64(Int64.max))
    private var version: UInt64 = 0
    private var nextReportAt: Duration?
    private let cname = "meetkit-\(UInt32.random(in: 0...UInt32.max))"

    /// A connection with an ICE configuration and a certificate (generated when nil).
    public init(ice: ICEConfiguration = .init(), certificate: DTLSCertificate? = nil) throws(DTLSError) {
        transport = try SecureTransportCore(ice: ice, certificate: certificate)
    }

    /// Starts gathering on the given socket addresses.
    public func start(localAddresses: [TransportAddress], now: Duration) {
        transport.start(localAddresses: localAddresses, now: now)
        collect(now: now)
    }

    /// Adds a transceiver and returns its mid.
    @discardableResult
    public func addTransceiver(_ kind: MediaKind, direction: MediaDirection = .sendrecv) -> String {
        let mid = String(transceivers.count)
        transceivers.append(
            Transceiver(
                mid: mid, kind: kind, direction: direction,
                track: .random(kind: kind, cname: cname, streamID: cname)))
        return mid
    }

    /// Counters of the transceiver `mid`.
    public func statistics(mid: String) -> TransceiverStatistics? { transceivers.first { $0.mid == mid }?.stats }

    private var localTransport: LocalTransportParameters {
        LocalTransportParameters(
            credentials: transport.ice.localCredentials, fingerprint: transport.certificate.fingerprint,
            candidates: transport.ice.localCandidates, endOfCandidates: true)
    }

    /// An offer with every transceiver and every candidate gathered so far.
    public func createOffer() -> SessionDescription {
        version += 1
        let offer = SessionNegotiation.makeOffer(
            sessionID: sessionID, version: version, transport: localTransport,
            sections: transceivers.map {
                LocalMediaSection(mid: $0.mid, kind: $0.kind, direction: $0.direction, track: $0.track)
            })
        pendingOffer = offer
        return offer
    }

    /// An answer to the remote offer given to ``setRemoteDescription(_:isOffer:now:)``.
    public func createAnswer(to offer: SessionDescription) throws(PeerConnectionError) -> SessionDescription {
        version += 1
        var tracks: [String: LocalTrackIdentity] = [:]
        for t in transceivers where t.direction == .sendrecv || t.direction == .sendonly { tracks[t.mid] = t.track }
        do {
            return try SessionNegotiation.makeAnswer(
                to: offer, sessionID: sessionID, version: version, transport: localTransport, tracks: tracks)
        } catch {
            throw .negotiation(error)
        }
    }

    /// Applies the peer's offer or answer: negotiates codecs, creates transceivers for
    /// remote media sections this side lacks, and starts ICE and DTLS.
    public func setRemoteDescription(_ sdp: SessionDescription, isOffer: Bool, now: Duration)
        throws(PeerConnectionError)
    {
        if !isOffer, pendingOffer == nil { throw .invalidState("an answer without a local offer") }
        let session: NegotiatedSession
        do {
            session = try SessionNegotiation.negotiate(remote: sdp, remoteIsOffer: isOffer)
        } catch {
            throw .negotiation(error)
        }
        for media in session.media {
            let t: Transceiver
            if let existing = transceivers.first(where: { $0.mid == media.mid }) {
                t = existing
            } else {
                t = Transceiver(
                    mid: media.mid, kind: media.kind, direction: media.direction,
                    track: .random(kind: media.kind, cname: cname, streamID: cname))
                transceivers.append(t)
            }
            if isOffer { t.direction = media.direction }
            t.negotiated = media
            t.remoteSSRC = media.remoteSSRCs.first
            if let rtxPT = media.codec.rtxPayloadType, let rtxSSRC = t.track.rtxSSRC {
                t.rtx = RTXStream(ssrc: rtxSSRC, payloadType: rtxPT)
            }
        }
        do {
            try transport.setRemote(
                credentials: session.remoteCredentials, isLite: session.remoteIsLite,
                candidates: session.remoteCandidates, endOfCandidates: session.remoteEndOfCandidates,
                fingerprint: ("sha-256", session.remoteFingerprint), dtlsRole: session.dtlsRole, now: now)
        } catch {
            throw .dtls(error)
        }
        pendingOffer = nil
        collect(now: now)
    }

    /// Sends one encoded frame on transceiver `mid`: packetized for its codec, stamped with
    /// the negotiated payload type, kept for NACKs.
    public func send(_ frame: EncodedFrame, mid: String, now: Duration) throws(PeerConnectionError) {
        guard let t = transceivers.first(where: { $0.mid == mid }), let media = t.negotiated,
            t.direction == .sendrecv || t.direction == .sendonly
        else { throw .unknownMid(mid) }
        let timestamp =
            t.timestampOffset
            &+ UInt32(truncatingIfNeeded: frame.timestamp.converted(to: frame.codec.rtpClockRate).value)
        let fragments: [RTPPayloadFragment]
        switch frame.codec {
        case .opus: fragments = [RTPPayloadFragment(payload: frame.data, marker: false, timestamp: 0)]
        case .vp8: fragments = (try? t.vp8Packetizer.packetize(frame)) ?? []
        }
        t.stats.framesSent += 1
        for f in fragments {
            var header = RTPHeader(
                payloadType: media.codec.payloadType, sequenceNumber: t.sequence, timestamp: timestamp,
                ssrc: t.track.ssrc,
                marker: f.marker)
            if let id = media.extensions["urn:ietf:params:rtp-hdrext:sdes:mid"] { header.setMid(id: id, t.mid) }
            t.sequence &+= 1
            let packet = RTPPacket(header: header, payload: f.payload[...])
            t.history.store(packet)
            if (try? transport.sendRTP(packet)) != nil {
                t.stats.packetsSent += 1
                t.stats.lastSequenceNumberSent = header.sequenceNumber
                t.stats.bytesSent += f.payload.count
                t.packetCount &+= 1
                t.octetCount &+= UInt32(truncatingIfNeeded: f.payload.count)
                t.lastSentTimestamp = timestamp
            }
        }
        collect(now: now)
    }

    // MARK: DatagramMachine

    public func handleDatagram(
        _ data: [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        transport.handleDatagram(data, from: source, to: local, now: now)
        collect(now: now)
    }

    public func handleTimeout(now: Duration) {
        transport.handleTimeout(now: now)
        if let at = nextReportAt, now >= at {
            sendReports(now: now)
            nextReportAt = now + .seconds(1)
        }
        for t in transceivers where t.kind == .video {
            for output in t.assembler.poll(now: now) { deliver(output, to: t, now: now) }
        }
        collect(now: now)
    }

    public var nextDeadline: Duration? {
        var candidates = [transport.nextDeadline, nextReportAt]
        for t in transceivers where t.kind == .video { candidates.append(t.assembler.nextDeadline) }
        return candidates.compactMap { $0 }.min()
    }

    public func drainTransmits() -> [ICETransmit] { transport.drainTransmits() }

    /// Events since the last call.
    public func drainEvents() -> [Event] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// Closes DTLS and ICE.
    public func close(now: Duration) { transport.close(now: now) }

    // MARK: receive side

    private func collect(now: Duration) {
        for e in transport.drainEvents() {
            switch e {
            case .rtp(let packet): receive(packet, now: now)
            case .rtcp(let packets): receive(packets, now: now)
            case .secured:
                nextReportAt = now + .seconds(1)
                events.append(.transport(e))
            default: events.append(.transport(e))
            }
        }
    }

    private func transceiver(for packet: RTPPacket) -> Transceiver? {
        if let t = transceivers.first(where: { $0.remoteSSRC == packet.header.ssrc }) { return t }
        // No a=ssrc from the peer: the payload type tells the kind (first unclaimed section).
        guard
            let t = transceivers.first(where: {
                $0.negotiated?.codec.payloadType == packet.header.payloadType && $0.remoteSSRC == nil
            })
        else { return nil }
        t.remoteSSRC = packet.header.ssrc
        return t
    }

    private func receive(_ packet: RTPPacket, now: Duration) {
        var packet = packet
        // RTX: unwrap to the original packet.
        if let t = transceivers.first(where: { $0.negotiated?.codec.rtxPayloadType == packet.header.payloadType }),
            let media = t.negotiated, let ssrc = t.remoteSSRC,
            let original = try? RTXStream.unwrap(packet, mediaSSRC: ssrc, mediaPayloadType: media.codec.payloadType)
        {
            packet = original
        }
        guard let t = transceiver(for: packet), let media = t.negotiated,
            packet.header.payloadType == media.codec.payloadType
        else { return }
        t.stats.packetsReceived += 1
        if t.receive == nil {
            t.receive = RTPReceiveStatistics(ssrc: packet.header.ssrc, clockRate: media.codec.clockRate)
        }
        t.receive?.record(
            sequenceNumber: packet.header.sequenceNumber, rtpTimestamp: packet.header.timestamp, arrival: now,
            payloadBytes: packet.payload.count)
        switch media.codec.codec {
        case .opus:
            if let frame = try? OpusRTPDepacketizer.depacketize(packet.payloadPacket) {
                t.stats.framesReceived += 1
                events.append(.frame(mid: t.mid, frame))
            }
        case .vp8:
            let outputs = (try? t.assembler.insert(packet.payloadPacket, now: now)) ?? []
            for output in outputs { deliver(output, to: t, now: now) }
        }
    }

    private func deliver(_ output: VP8FrameAssembler.Output, to t: Transceiver, now: Duration) {
        switch output {
        case .frame(let f):
            t.stats.framesReceived += 1
            events.append(.frame(mid: t.mid, f.encoded))
        case .incomplete:
            t.stats.framesLost += 1
            if let ssrc = t.remoteSSRC {
                try? transport.sendRTCP([.pictureLossIndication(senderSSRC: t.track.ssrc, mediaSSRC: ssrc)])
                t.stats.keyframeRequestsSent += 1
            }
        }
    }

    private func receive(_ packets: [RTCPPacket], now: Duration) {
        for packet in packets {
            switch packet {
            case .pictureLossIndication(_, let media):
                keyframeRequested(ssrc: media)
            case .fullIntraRequest(_, let entries):
                for e in entries { keyframeRequested(ssrc: e.ssrc) }
            case .nack(_, let media, let lost):
                guard let t = transceivers.first(where: { $0.track.ssrc == media }) else { continue }
                for seq in lost {
                    guard let original = t.history.packet(sequenceNumber: seq) else { continue }
                    let resend = t.rtx.map { _ in t.rtx!.wrap(original) } ?? original
                    if (try? transport.sendRTP(resend)) != nil { t.stats.retransmissions += 1 }
                }
            case .senderReport(let ssrc, let ntp, _, _, _, let reports):
                transceivers.first { $0.remoteSSRC == ssrc }?.receive?.recordSenderReport(
                    ntpTimestamp: ntp, arrival: now)
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
    private func sendReports(now: Duration) {
        let blocks = transceivers.compactMap { t -> RTCPReportBlock? in t.receive?.makeReportBlock(now: now) }
        var compound: [RTCPPacket] = []
        let senders = transceivers.filter { $0.stats.packetsSent > 0 }
        if senders.isEmpty {
            compound.append(
                .receiverReport(ssrc: transceivers.first?.track.ssrc ?? 1, reports: Array(blocks.prefix(31))))
        } else {
            for (i, t) in senders.enumerated() {
                compound.append(
                    .senderReport(
                        ssrc: t.track.ssrc, ntpTimestamp: RTCPTime.ntp(now), rtpTimestamp: t.lastSentTimestamp,
                        packetCount: t.packetCount, octetCount: t.octetCount,
                        reports: i == 0 ? Array(blocks.prefix(31)) : []))
            }
        }
        let reporter = senders.first?.track.ssrc ?? transceivers.first?.track.ssrc ?? 1
        let cnameItem: (type: UInt8, text: String) = (1, cname)
        compound.append(.sourceDescription([(ssrc: reporter, items: [cnameItem])]))
        try? transport.sendRTCP(compound)
    }
}
