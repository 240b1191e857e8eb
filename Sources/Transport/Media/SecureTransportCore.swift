/// ICE, DTLS and SRTP composed into one sans-IO core: the secure media path of a WebRTC
/// PeerConnection (RFC 8834/8827), without SDP. Datagrams are demultiplexed by RFC 7983:
/// STUN to the ICE agent, DTLS to the handshake, SRTP/SRTCP to libsrtp, and decrypted RTP
/// and RTCP come out as events.
///
/// DTLS starts once ICE selects a pair (the DTLS client sends its ClientHello then; the
/// server answers whoever reaches it). Media can flow once `secured` is reported.
///
/// ```swift
/// let core = try SecureTransportCore(ice: iceConfig, certificate: cert)
/// core.start(localAddresses: addresses, now: now)
/// core.setRemote(credentials: c, candidates: list, endOfCandidates: true,
///                fingerprint: ("sha-256", fp), dtlsRole: .client, now: now)
/// // drive with handleDatagram / handleTimeout, then pollOutput() until it says to wait
/// try core.sendRTP(packet)
/// ```
public final class SecureTransportCore {
    /// What the core reports.
    public enum Event: Sendable, Equatable {
        /// An ICE event (candidates, state, selected pair).
        case ice(ICEEvent)
        /// DTLS completed: SRTP keys are in place with this profile.
        case secured(SRTPProfile)
        /// DTLS or SRTP setup failed (the typed reason, e.g. a fingerprint mismatch); the
        /// transport is unusable.
        case failed(DTLSError)
        /// A decrypted RTP packet.
        case rtp(RTPPacket)
        /// A decrypted RTCP compound packet.
        case rtcp([RTCPPacket])
        /// DTLS application data (SCTP for data channels).
        case applicationData([UInt8])
    }

    /// Why media cannot be sent.
    public enum SendError: Error, Sendable, Equatable {
        /// DTLS has not completed yet.
        case notSecured
        /// SRTP refused the packet.
        case srtp(SRTPError)
        /// DTLS refused application data (the connection closed).
        case dtls(DTLSError)
    }

    /// Packets dropped on the receive path, by reason.
    public struct Statistics: Sendable, Equatable {
        /// Datagrams matching no RFC 7983 range.
        public var unknownDatagrams = 0
        /// SRTP/SRTCP packets that failed authentication or replay checks, or arrived before keys.
        public var srtpRejected = 0
        /// Decrypted packets that did not parse as RTP or RTCP.
        public var malformedMedia = 0
        /// RTP packets received and decrypted.
        public var rtpReceived = 0
        /// RTP packets sent.
        public var rtpSent = 0
    }

    /// The ICE agent.
    public private(set) var ice: ICEAgent
    /// The local certificate (its fingerprint goes in the SDP).
    public let certificate: DTLSCertificate
    /// Receive-path counters.
    public private(set) var statistics = Statistics()
    /// The SRTP session, once DTLS completed.
    public private(set) var srtp: SRTPSession?
    /// The DTLS endpoint, once the remote description set its role.
    public private(set) var dtls: DTLSConnection?
    private var transmits = OutputQueue<Datagram>()
    private var events = OutputQueue<Event>()
    /// The time of the latest input: what the inner machines are polled at.
    private var now: Duration = .zero
    private var dtlsPeer: (local: TransportAddress, remote: TransportAddress)?
    private var pendingDTLS: [(data: [UInt8], from: TransportAddress, to: TransportAddress)] = []

    /// A core with an ICE agent of `ice` configuration and a DTLS certificate (generated
    /// when nil).
    public init(ice: ICEConfiguration = .init(), certificate: DTLSCertificate? = nil) throws(DTLSError) {
        self.ice = ICEAgent(configuration: ice)
        if let certificate { self.certificate = certificate } else { self.certificate = try .generate() }
    }

    /// Starts gathering on the given socket addresses.
    public func start(localAddresses: [TransportAddress], now: Duration) {
        self.now = now
        ice.startGathering(localAddresses: localAddresses, now: now)
    }

    /// Applies the peer's transport parameters from its SDP.
    /// - Parameters:
    ///   - dtlsRole: this side's DTLS role, from the a=setup negotiation.
    public func setRemote(
        credentials: ICECredentials, isLite: Bool = false, candidates: [ICECandidate], endOfCandidates: Bool,
        fingerprint: (algorithm: String, value: String), dtlsRole: DTLSConnection.Role, now: Duration
    ) throws(DTLSError) {
        dtls = try DTLSConnection(role: dtlsRole, certificate: certificate, remoteFingerprint: fingerprint)
        applyRemoteICE(
            credentials: credentials, isLite: isLite, candidates: candidates, endOfCandidates: endOfCandidates, now: now
        )
        self.now = now
        for d in pendingDTLS {
            var data = d.data
            handleDatagram(&data, from: d.from, to: d.to, now: now)
        }
        pendingDTLS = []
    }

    /// Applies a later remote description (renegotiation) on a transport already set up:
    /// new candidates are added; new credentials mean an ICE restart — this side's own when
    /// it asked for one with ``restartICE(now:)``, otherwise the peer's, which this side
    /// follows with new credentials of its own (RFC 8445 §9). DTLS is kept.
    public func updateRemote(
        credentials: ICECredentials, isLite: Bool = false, candidates: [ICECandidate], endOfCandidates: Bool,
        now: Duration
    ) {
        self.now = now
        applyRemoteICE(
            credentials: credentials, isLite: isLite, candidates: candidates, endOfCandidates: endOfCandidates, now: now
        )
    }

    /// The ICE half of a remote description, first or later: credentials (a change of
    /// them after the first is the peer's restart, followed here), candidates, their end.
    private func applyRemoteICE(
        credentials: ICECredentials, isLite: Bool, candidates: [ICECandidate], endOfCandidates: Bool, now: Duration
    ) {
        if ice.remoteCredentials != credentials {
            if ice.remoteCredentials != nil { ice.restart(now: now) }
            ice.setRemoteCredentials(credentials, isLite: isLite, now: now)
        }
        for c in candidates { ice.addRemoteCandidate(c, now: now) }
        if endOfCandidates { ice.setRemoteEndOfCandidates(now: now) }
    }

    /// Sets the ICE role before checks begin (see ``ICEAgent/setRole(_:)``).
    public func setICERole(_ role: ICERole) { ice.setRole(role) }

    /// Starts an ICE restart from this side: new local credentials, to be signalled in a
    /// new offer. The current pair carries media until a new one is selected.
    public func restartICE(now: Duration) {
        self.now = now
        ice.restart(now: now)
    }

    /// The peer signalled that it has no more candidates.
    public func setRemoteEndOfCandidates(now: Duration) {
        self.now = now
        ice.setRemoteEndOfCandidates(now: now)
    }

    /// Adds a trickled remote candidate.
    public func addRemoteCandidate(_ candidate: ICECandidate, now: Duration) {
        self.now = now
        ice.addRemoteCandidate(candidate, now: now)
    }

    /// A datagram received on the socket bound to `local`; decrypted media comes out as
    /// ``Event/rtp(_:)`` and ``Event/rtcp(_:)`` events. `data` is the caller's scratch:
    /// media is decrypted in it, in place.
    public func handleDatagram(
        _ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        switch receive(&data, from: source, to: local, now: now) {
        case .rtp(let packet)?: events.append(.rtp(packet))
        case .rtcp(let packets)?: events.append(.rtcp(packets))
        case nil: break
        }
    }

    /// What ``receive(_:from:to:now:)`` decrypted.
    public enum ReceivedMedia {
        /// An RTP packet; its payload and extensions are slices of the datagram's buffer.
        case rtp(RTPPacket)
        /// An RTCP compound packet.
        case rtcp([RTCPPacket])
    }

    /// Takes a datagram and returns the media it carried, for an owner that routes media
    /// itself (the PeerConnection): STUN and DTLS are handled inside; SRTP and SRTCP are
    /// decrypted in place in `data` — nothing is copied or allocated for an RTP packet.
    /// Refused and malformed packets are counted and give nil.
    public func receive(
        _ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) -> ReceivedMedia? {
        self.now = now
        switch DatagramKind(data) {
        case .stun:
            ice.handleStun(data, from: source, to: local, now: now)
        case .dtls:
            ice.noteReceived(from: source, to: local, now: now)
            guard let dtls else {
                // The peer's ClientHello can beat our remote description: keep it.
                if pendingDTLS.count < 16 { pendingDTLS.append((data, source, local)) }
                return nil
            }
            if dtlsPeer == nil { dtlsPeer = (local, source) }
            dtls.handleDatagram(data, now: now)
        case .rtp:
            ice.noteReceived(from: source, to: local, now: now)
            return unprotect(&data)
        default:
            statistics.unknownDatagrams += 1
        }
        return nil
    }

    /// Advances ICE and DTLS timers.
    public func handleTimeout(now: Duration) {
        self.now = now
        ice.handleTimeout(now: now)
        dtls?.handleTimeout(now: now)
    }

    /// When ``handleTimeout(now:)`` must next be called.
    public var nextDeadline: Duration? {
        earliest(ice.nextDeadline, dtls?.nextDeadline)
    }

    /// The core's next output: what ICE and DTLS produced (DTLS records routed on the
    /// selected pair), media to send, decrypted media and events, then the next deadline.
    public func pollOutput() -> MachineOutput<Event> {
        while true {
            if let datagram = transmits.next() { return .transmit(datagram) }
            if let event = events.next() { return .event(event) }
            guard pullInnerMachines() else { return .wait(until: nextDeadline) }
        }
    }

    /// Protects and sends an RTP packet on the selected pair.
    public func sendRTP(_ packet: RTPPacket) throws(SendError) {
        guard let srtp, let pair = ice.selectedPair else { throw .notSecured }
        do {
            transmits.append(
                Datagram(from: pair.local, to: pair.remote, data: try srtp.protectRTP(packet.serialized())))
            statistics.rtpSent += 1
        } catch {
            throw .srtp(error)
        }
    }

    /// Protects and sends an RTCP compound packet on the selected pair.
    public func sendRTCP(_ packets: [RTCPPacket]) throws(SendError) {
        guard let srtp, let pair = ice.selectedPair else { throw .notSecured }
        do {
            transmits.append(
                Datagram(
                    from: pair.local, to: pair.remote, data: try srtp.protectRTCP(RTCPPacket.serializeCompound(packets))
                ))
        } catch {
            throw .srtp(error)
        }
    }

    /// Sends application data over DTLS (an SCTP packet of the data channels); its records
    /// go out on the selected pair with the next outputs.
    public func sendApplicationData(_ bytes: [UInt8]) throws(SendError) {
        guard let dtls, dtls.state == .connected else { throw .notSecured }
        do {
            try dtls.send(bytes)
        } catch {
            throw .dtls(error)
        }
    }

    /// Closes DTLS (close_notify) and ICE.
    public func close(now: Duration) {
        self.now = now
        dtls?.close()
        _ = pullInnerMachines()
        ice.close()
    }

    // MARK: internals

    /// RTCP packet types 192–223 sit in the second byte's range 64–95 after masking the
    /// marker bit; RFC 5761 §4 demultiplexes RTP and RTCP on one port by that byte.
    private func unprotect(_ data: inout [UInt8]) -> ReceivedMedia? {
        guard let srtp, data.count >= 2 else {
            statistics.srtpRejected += 1
            return nil
        }
        let isRTCP = (192...223).contains(data[1])
        do {
            if isRTCP {
                try srtp.unprotectRTCP(inPlace: &data)
                guard let packets = try? RTCPPacket.parseCompound(data) else {
                    statistics.malformedMedia += 1
                    return nil
                }
                return .rtcp(packets)
            } else {
                try srtp.unprotectRTP(inPlace: &data)
                guard let packet = try? RTPPacket(parsing: data) else {
                    statistics.malformedMedia += 1
                    return nil
                }
                statistics.rtpReceived += 1
                return .rtp(packet)
            }
        } catch {
            statistics.srtpRejected += 1
            return nil
        }
    }

    /// Moves what ICE and DTLS have produced into this core's queues; false when they had
    /// nothing. The DTLS client speaks first, once ICE has selected a pair.
    private func pullInnerMachines() -> Bool {
        var pulled = false
        ice: while true {
            switch ice.pollOutput() {
            case .transmit(let datagram): transmits.append(datagram)
            case .event(let event): events.append(.ice(event))
            case .wait: break ice
            }
            pulled = true
        }
        guard let dtls else { return pulled }
        if dtls.state == .new, dtls.role == .client, ice.selectedPair != nil { dtls.start(now: now) }
        let route = ice.selectedPair ?? dtlsPeer
        while true {
            switch dtls.pollOutput() {
            case .transmit(let records):
                if let route { transmits.append(Datagram(from: route.local, to: route.remote, data: records)) }
            case .event(.connected(let keys)):
                do {
                    srtp = try SRTPSession(keys: keys)
                    events.append(.secured(keys.profile))
                } catch {
                    events.append(.failed(.setup("SRTP: \(error.description)")))
                }
            case .event(.failed(let error)): events.append(.failed(error))
            case .event(.applicationData(let bytes)): events.append(.applicationData(bytes))
            case .event(.closed): break
            case .wait: return pulled
            }
            pulled = true
        }
    }
}
