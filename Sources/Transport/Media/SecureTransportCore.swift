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
/// // drive with handleDatagram / handleTimeout / drainTransmits / drainEvents
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
    private var transmits: [Datagram] = []
    private var events: [Event] = []
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
        ice.startGathering(localAddresses: localAddresses, now: now)
        pump(now: now)
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
        for d in pendingDTLS { handleDatagram(d.data, from: d.from, to: d.to, now: now) }
        pendingDTLS = []
        pump(now: now)
    }

    /// Applies a later remote description (renegotiation) on a transport already set up:
    /// new candidates are added; new credentials mean an ICE restart — this side's own when
    /// it asked for one with ``restartICE(now:)``, otherwise the peer's, which this side
    /// follows with new credentials of its own (RFC 8445 §9). DTLS is kept.
    public func updateRemote(
        credentials: ICECredentials, isLite: Bool = false, candidates: [ICECandidate], endOfCandidates: Bool,
        now: Duration
    ) {
        applyRemoteICE(
            credentials: credentials, isLite: isLite, candidates: candidates, endOfCandidates: endOfCandidates, now: now
        )
        pump(now: now)
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
        ice.restart(now: now)
        pump(now: now)
    }

    /// The peer signalled that it has no more candidates.
    public func setRemoteEndOfCandidates(now: Duration) {
        ice.setRemoteEndOfCandidates(now: now)
        pump(now: now)
    }

    /// Adds a trickled remote candidate.
    public func addRemoteCandidate(_ candidate: ICECandidate, now: Duration) {
        ice.addRemoteCandidate(candidate, now: now)
        pump(now: now)
    }

    /// A datagram received on the socket bound to `local`.
    public func handleDatagram(
        _ data: [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        switch DatagramKind(data) {
        case .stun:
            ice.handleStun(data, from: source, to: local, now: now)
        case .dtls:
            ice.noteReceived(from: source, to: local, now: now)
            guard let dtls else {
                // The peer's ClientHello can beat our remote description: keep it.
                if pendingDTLS.count < 16 { pendingDTLS.append((data, source, local)) }
                return
            }
            if dtlsPeer == nil { dtlsPeer = (local, source) }
            dtls.handleDatagram(data, now: now)
        case .rtp:
            ice.noteReceived(from: source, to: local, now: now)
            receiveMedia(data)
        default:
            statistics.unknownDatagrams += 1
        }
        pump(now: now)
    }

    /// Advances ICE and DTLS timers.
    public func handleTimeout(now: Duration) {
        ice.handleTimeout(now: now)
        dtls?.handleTimeout(now: now)
        pump(now: now)
    }

    /// When ``handleTimeout(now:)`` must next be called.
    public var nextDeadline: Duration? {
        [ice.nextDeadline, dtls?.nextDeadline].compactMap { $0 }.min()
    }

    /// Datagrams to send.
    public func drainTransmits() -> [Datagram] {
        defer { transmits.removeAll(keepingCapacity: true) }
        return transmits
    }

    /// Events since the last call.
    public func drainEvents() -> [Event] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
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

    /// Closes DTLS (close_notify) and ICE.
    public func close(now: Duration) {
        dtls?.close()
        pump(now: now)
        ice.close()
    }

    // MARK: internals

    /// RTCP packet types 192–223 sit in the second byte's range 64–95 after masking the
    /// marker bit; RFC 5761 §4 demultiplexes RTP and RTCP on one port by that byte.
    private func receiveMedia(_ data: [UInt8]) {
        guard let srtp, data.count >= 2 else {
            statistics.srtpRejected += 1
            return
        }
        let isRTCP = (192...223).contains(data[1])
        do {
            if isRTCP {
                let clear = try srtp.unprotectRTCP(data)
                guard let packets = try? RTCPPacket.parseCompound(clear) else {
                    statistics.malformedMedia += 1
                    return
                }
                events.append(.rtcp(packets))
            } else {
                var clear = data
                try srtp.unprotectRTP(inPlace: &clear)
                guard let packet = try? RTPPacket(parsing: clear) else {
                    statistics.malformedMedia += 1
                    return
                }
                statistics.rtpReceived += 1
                events.append(.rtp(packet))
            }
        } catch {
            statistics.srtpRejected += 1
        }
    }

    private func pump(now: Duration) {
        transmits += ice.drainTransmits()
        for e in ice.drainEvents() { events.append(.ice(e)) }
        guard let dtls else { return }
        // The DTLS client speaks first, once ICE has selected a pair.
        if dtls.state == .new, dtls.role == .client, ice.selectedPair != nil { dtls.start(now: now) }
        let route = ice.selectedPair ?? dtlsPeer
        for d in dtls.drainTransmits() {
            if let route { transmits.append(Datagram(from: route.local, to: route.remote, data: d)) }
        }
        for e in dtls.drainEvents() {
            switch e {
            case .connected(let keys):
                do {
                    srtp = try SRTPSession(keys: keys)
                    events.append(.secured(keys.profile))
                } catch {
                    events.append(.failed(.setup("SRTP: \(error.description)")))
                }
            case .failed(let error): events.append(.failed(error))
            case .applicationData(let bytes): events.append(.applicationData(bytes))
            case .closed: break
            }
        }
    }
}
