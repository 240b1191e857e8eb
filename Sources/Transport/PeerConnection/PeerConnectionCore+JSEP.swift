import MeetKitDTLS
import MeetKitICE
import MeetKitSDP

// JSEP (RFC 8829) for a PeerConnectionCore: offers and answers, applying descriptions
// (codecs, transceivers, the transport's parameters), trickled candidates and ICE restart.
extension PeerConnectionCore {
    // MARK: JSEP

    var localTransport: LocalTransportParameters {
        LocalTransportParameters(
            credentials: transport.ice.localCredentials, fingerprint: transport.certificate.fingerprint,
            candidates: transport.ice.localCandidates, endOfCandidates: transport.ice.gatheringComplete)
    }

    /// An offer with every transceiver and every candidate gathered so far. Apply it with
    /// ``setLocalDescription(_:)`` before sending it.
    public func createOffer() -> SessionDescription {
        version += 1
        let offer = SessionNegotiation.makeOffer(
            sessionID: sessionID, version: version, transport: localTransport,
            sections: transceivers.map {
                LocalMediaSection(mid: $0.mid, kind: $0.kind, direction: $0.direction, track: $0.track)
            }, application: dataSection)
        lastCreatedOffer = offer
        return offer
    }

    /// An answer to the remote offer applied with ``setRemoteDescription(_:now:)``.
    public func createAnswer() throws(PeerConnectionError) -> SessionDescription {
        guard signalingState == .haveRemoteOffer, let offer = remoteOffer else {
            throw .invalidState("createAnswer needs a remote offer (signaling state \(signalingState))")
        }
        version += 1
        var tracks: [String: LocalTrackIdentity] = [:]
        for t in transceivers where t.sends { tracks[t.mid] = t.track }
        do {
            return try SessionNegotiation.makeAnswer(
                to: offer, sessionID: sessionID, version: version, transport: localTransport, tracks: tracks,
                maxMessageSize: configuration.sctp.maxReceivedMessageSize,
                transportCC: configuration.negotiatesTransportCC)
        } catch {
            throw .negotiation(error)
        }
    }

    /// Applies a description this side created: an offer (the signaling state becomes
    /// have-local-offer and ICE takes the controlling role) or the answer to the peer's
    /// offer (back to stable).
    public func setLocalDescription(_ description: SessionDescription) throws(PeerConnectionError) {
        switch signalingState {
        case .stable:
            guard lastCreatedOffer != nil else { throw .invalidState("setLocalDescription needs createOffer first") }
            if !transportConfigured { transport.setICERole(.controlling) }
            signalingState = .haveLocalOffer
        case .haveRemoteOffer:
            signalingState = .stable
            remoteOffer = nil
        case .haveLocalOffer, .closed:
            throw .invalidState("setLocalDescription in signaling state \(signalingState)")
        }
        localDescription = description
    }

    /// Applies the peer's offer or answer, telling them apart by the signaling state: in
    /// have-local-offer it must be the answer, otherwise it is an offer (a first one, or a
    /// renegotiation adding media, changing directions or restarting ICE). Negotiates
    /// codecs, creates transceivers for remote sections this side lacks, and starts (or
    /// updates) ICE and DTLS.
    public func setRemoteDescription(_ sdp: SessionDescription, now: Duration) throws(PeerConnectionError) {
        guard signalingState != .closed else { throw .invalidState("closed") }
        let isOffer = signalingState != .haveLocalOffer
        let session: NegotiatedSession
        do {
            session = try SessionNegotiation.negotiate(
                remote: sdp, remoteIsOffer: isOffer, transportCC: configuration.negotiatesTransportCC)
        } catch {
            throw .negotiation(error)
        }
        if transportConfigured, let dtls = transport.dtls,
            dtls.expectedRemoteFingerprint != session.remoteFingerprint.uppercased()
        {
            throw .invalidState("the remote certificate fingerprint changed; start a new connection")
        }
        routes.removeAll()
        for media in session.media { apply(media) }
        for section in session.rejected {
            // A section the peer stopped or rejected sends and receives nothing any more.
            guard let mid = section.mid, let t = transceiver(mid: mid) else { continue }
            t.direction = .inactive
            t.announcedRemote = nil
        }
        rejectedSections = session.rejected
        if transportConfigured {
            transport.updateRemote(
                credentials: session.remoteCredentials, isLite: session.remoteIsLite,
                candidates: session.remoteCandidates, endOfCandidates: session.remoteEndOfCandidates, now: now)
        } else {
            if isOffer { transport.setICERole(.controlled) }
            do {
                try transport.setRemote(
                    credentials: session.remoteCredentials, isLite: session.remoteIsLite,
                    candidates: session.remoteCandidates, endOfCandidates: session.remoteEndOfCandidates,
                    fingerprint: ("sha-256", session.remoteFingerprint), dtlsRole: session.dtlsRole, now: now)
            } catch {
                throw .dtls(error)
            }
            transportConfigured = true
        }
        remoteDescription = sdp
        if isOffer {
            remoteOffer = sdp
            signalingState = .haveRemoteOffer
        } else {
            signalingState = .stable
        }
        self.now = now
        applyApplication(session.application, role: session.dtlsRole)
    }

    /// Compatibility form of ``setRemoteDescription(_:now:)`` that checks the caller's idea
    /// of what the description is.
    public func setRemoteDescription(_ sdp: SessionDescription, isOffer: Bool, now: Duration)
        throws(PeerConnectionError)
    {
        if !isOffer, signalingState != .haveLocalOffer { throw .invalidState("an answer without a local offer") }
        if isOffer, signalingState == .haveLocalOffer { throw .invalidState("an offer while this side's is pending") }
        try setRemoteDescription(sdp, now: now)
    }

    func apply(_ media: NegotiatedMedia) {
        let t: Transceiver
        if let existing = transceiver(mid: media.mid) {
            t = existing
        } else {
            t = makeTransceiver(mid: media.mid, kind: media.kind, direction: media.direction)
            transceivers.append(t)
        }
        // An offer sets the direction; an answer may narrow the offered one (sendrecv → recvonly, …).
        t.direction = media.direction
        t.negotiated = media
        if let ssrc = media.remoteSSRCs.first, ssrc != t.receiver.remoteSSRC {
            t.receiver.remoteSSRC = ssrc
            t.receiver.reset()
        }
        t.receiver.remoteRTXSSRC = t.receiver.remoteSSRC.flatMap { media.remoteRTX[$0] }
        if let rtxPT = media.codec.rtxPayloadType, let rtxSSRC = t.track.rtxSSRC {
            t.sender.rtx = RTXStream(ssrc: rtxSSRC, payloadType: rtxPT)
        } else {
            t.sender.rtx = nil
        }
        // Simulcast: one receiver per layer the peer sends, found by its RID.
        for rid in media.remoteRIDs where t.layers[rid] == nil {
            t.layers[rid] = RTPReceiver(assembly: configuration.videoAssembly)
        }
        for rid in t.layers.keys where !media.remoteRIDs.contains(rid) { t.layers[rid] = nil }
        for r in t.receivers {
            if media.kind == .video, media.codec.feedback.contains("nack"),
                let nackConfig = configuration.retransmissionRequests
            {
                if r.nacks == nil { r.nacks = NACKGenerator(configuration: nackConfig) }
            } else {
                r.nacks = nil
            }
        }
        let identity = media.direction.receives ? (media.remoteStreamID ?? "", media.remoteTrackID ?? media.mid) : nil
        if let identity, t.announcedRemote.map({ $0 != identity }) ?? true {
            events.append(
                .remoteTrack(
                    mid: media.mid, kind: media.kind, streamID: media.remoteStreamID, trackID: media.remoteTrackID))
        }
        t.announcedRemote = identity
    }

    /// Adds a candidate the peer trickled; nil means the peer has no more (end-of-candidates).
    public func addICECandidate(_ candidate: ICECandidate?, now: Duration) throws(PeerConnectionError) {
        guard transportConfigured else { throw .invalidState("addICECandidate before setRemoteDescription") }
        if let candidate {
            transport.addRemoteCandidate(candidate, now: now)
        } else {
            transport.setRemoteEndOfCandidates(now: now)
        }
        self.now = now
    }

    /// Restarts ICE from this side (RFC 8445 §9): new local credentials, carried by the next
    /// ``createOffer()``; media keeps flowing on the current pair until a new one is chosen.
    public func restartICE(now: Duration) {
        transport.restartICE(now: now)
        self.now = now
    }
}
