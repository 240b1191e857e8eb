import Codec

/// A sans-IO PeerConnection (JSEP, RFC 8829) for Opus and VP8 over one BUNDLE transport:
/// transceivers, offer/answer and renegotiation, trickle ICE and ICE restart, encoded or
/// raw frames in, encoded or decoded frames out, and the media control a sender and
/// receiver owe each other — sender and receiver reports every second, keyframe requests
/// (PLI) when a frame is lost, NACKs for missing video packets, answered from the send
/// history (over RTX when negotiated). Driven like every MeetKit machine: datagrams and
/// timeouts in with the current time, datagrams and events out.
///
/// ```swift
/// let pc = try PeerConnectionCore()
/// pc.start(localAddresses: addresses, now: now)
/// let audio = pc.addTransceiver(.audio, receive: .decoded(audioSampleRate: 16_000))
/// let offer = pc.createOffer()
/// try pc.setLocalDescription(offer)
/// try pc.setRemoteDescription(answer, now: now)
/// try pc.send(audio: pcmBlock, mid: audio, now: now)     // any length: encoded as 20 ms Opus
/// ```
public final class PeerConnectionCore: DatagramMachine {
    /// What the connection reports.
    public enum Event: Sendable, Equatable {
        /// An ICE or DTLS transport event (local candidates for trickle, selected pair, …).
        case transport(SecureTransportCore.Event)
        /// The aggregate connection state changed.
        case connectionState(PeerConnectionState)
        /// A remote description announced media the peer sends on transceiver `mid`.
        case remoteTrack(mid: String, kind: MediaKind, streamID: String?, trackID: String?)
        /// A whole received frame (an Opus packet, an assembled VP8 frame) on a transceiver.
        case frame(mid: String, EncodedFrame)
        /// Decoded audio of a transceiver receiving ``ReceiveOutput/decoded(audioSampleRate:audioChannels:)``.
        case audio(mid: String, AudioFrame<Int16>)
        /// A decoded picture of such a transceiver.
        case video(mid: String, VideoFrame)
        /// The peer asked for a keyframe on this transceiver (PLI or FIR), or encoded frames
        /// were discarded before the connection was up and the first one sent is not a
        /// keyframe. A transceiver fed raw frames has already told its encoder.
        case keyframeRequested(mid: String)
        /// The peer's sender report for what it sends on transceiver `mid`: which media
        /// time its clock read when (lip sync, and aligning recordings of several senders).
        case senderReport(mid: String, SenderClock)
        /// Data channels: the association up, channels opened (by either side) and closed,
        /// messages, back-pressure (see ``createDataChannel(label:options:)``).
        case dataChannel(DataChannelEndpoint.Event)
    }

    /// The secure transport underneath.
    public let transport: SecureTransportCore
    /// Settings.
    public let configuration: PeerConnectionConfiguration
    /// The JSEP signaling state.
    public internal(set) var signalingState = SignalingState.stable
    /// The aggregate connection state.
    public private(set) var connectionState = PeerConnectionState.new
    /// The applied local description.
    public internal(set) var localDescription: SessionDescription?
    /// The applied remote description.
    public internal(set) var remoteDescription: SessionDescription?
    /// The sections of the applied remote description that carry nothing, with the reason:
    /// those the peer stopped or rejected (port 0), and those of its offer that MeetKit
    /// rejects in its answer (no common codec, data channels, other media types).
    public internal(set) var rejectedSections: [RejectedSection] = []
    var transceivers: [Transceiver] = []
    var events = OutputQueue<Event>()
    /// The time of the latest input: transport outputs are handled at it.
    var now: Duration = .zero
    /// What a receiver produced for one packet or timer, handled once it returns (kept to
    /// reuse its storage).
    var receiverOutputs: [RTPReceiver.Output] = []
    /// The packet the last datagram carried, when its transceiver forwards (taken by
    /// ``takeForwardedPacket()`` before the datagram's buffer is reused).
    var forwardedPacket: ForwardedPacket?
    /// Transport-wide feedback for the peer, when configured.
    var transportFeedback = TransportFeedbackGenerator()
    /// Remote SSRCs already routed (see `route(of:)`).
    var routes: [UInt32: Route] = [:]
    var lastCreatedOffer: SessionDescription?
    var remoteOffer: SessionDescription?
    var transportConfigured = false
    var sessionID = UInt64.random(in: 1...UInt64(Int64.max))
    var version: UInt64 = 0
    var nextReportAt: Duration?
    let cname = "meetkit-\(UInt32.random(in: 0...UInt32.max))"
    /// This side's data channel section, once a channel was created or the peer offered one.
    var dataSection: LocalApplicationSection?
    /// The data channels, once there is a section for them.
    var dataChannels: DataChannelEndpoint?
    /// What the peer's description said of its data channels.
    var negotiatedApplication: NegotiatedApplication?
    var dataDeadline: Duration?
    /// The earliest deadline of the receivers (NACKs, frame assembly, paced keyframe
    /// requests), or earlier: kept up as packets arrive, worked out anew by
    /// ``handleTimeout(now:)``, so that a wait does not visit every transceiver (a bot
    /// receiving 150 tracks waits after every few packets). A deadline that went away
    /// meanwhile costs only an early timeout.
    var receiversDeadline: Duration?
    var secured = false
    private var dtlsFailed = false
    private var closed = false

    /// A connection with `configuration`.
    public init(configuration: PeerConnectionConfiguration = .init()) throws(DTLSError) {
        self.configuration = configuration
        transport = try SecureTransportCore(ice: configuration.ice, certificate: configuration.certificate)
    }

    /// A connection with an ICE configuration and a certificate (generated when nil).
    public convenience init(ice: ICEConfiguration, certificate: DTLSCertificate? = nil) throws(DTLSError) {
        var c = PeerConnectionConfiguration()
        c.ice = ice
        c.certificate = certificate
        try self.init(configuration: c)
    }

    /// Starts gathering on the given socket addresses.
    public func start(localAddresses: [TransportAddress], now: Duration) {
        transport.start(localAddresses: localAddresses, now: now)
        self.now = now
    }

    /// Adds a transceiver and returns its mid.
    /// - Parameters:
    ///   - receive: what to hand out for the media received on it.
    ///   - streamID: the msid stream the peer sees its track in (random when nil).
    ///   - trackID: the msid track id the peer sees (random when nil).
    @discardableResult
    public func addTransceiver(
        _ kind: MediaKind, direction: MediaDirection = .sendrecv, receive: ReceiveOutput = .encoded,
        streamID: String? = nil, trackID: String? = nil
    ) -> String {
        let t = makeTransceiver(mid: freeMid(), kind: kind, direction: direction, streamID: streamID, trackID: trackID)
        t.output = receive
        transceivers.append(t)
        return t.mid
    }

    /// Changes the direction transceiver `mid` offers from the next offer on (as
    /// `RTCRtpTransceiver.direction`): `.inactive` stops a track the peer receives.
    public func setDirection(_ direction: MediaDirection, mid: String) throws(PeerConnectionError) {
        guard let t = transceiver(mid: mid) else { throw .unknownMid(mid) }
        t.direction = direction
    }

    /// Names the track transceiver `mid` sends (its msid, from the next description on):
    /// e.g. the stream and track a relay announces on a section the peer offered to receive.
    public func setTrack(streamID: String, trackID: String, mid: String) throws(PeerConnectionError) {
        guard let t = transceiver(mid: mid) else { throw .unknownMid(mid) }
        t.track.streamID = streamID
        t.track.trackID = trackID
    }

    /// Changes what transceiver `mid` hands out (e.g. for one created by a remote offer).
    public func setReceiveOutput(_ output: ReceiveOutput, mid: String) throws(PeerConnectionError) {
        guard let t = transceiver(mid: mid) else { throw .unknownMid(mid) }
        t.output = output
    }

    /// The mids and kinds of every transceiver, in SDP order.
    public var transceiverList: [(mid: String, kind: MediaKind, direction: MediaDirection)] {
        transceivers.map { ($0.mid, $0.kind, $0.direction) }
    }

    /// Counters of the transceiver `mid`.
    public func statistics(mid: String) -> TransceiverStatistics? {
        guard let t = transceiver(mid: mid) else { return nil }
        var s = t.stats
        if let r = t.receiver.statistics {
            s.packetsLost = max(0, Int(r.cumulativeLost))
            s.jitter = r.jitter / Double(r.clockRate)
            s.bytesReceived = r.bytesReceived
        }
        if let audio = t.receiver.audioDecoder { s.packetsConcealed = audio.statistics.packetsConcealed }
        return s
    }

    func transceiver(mid: String) -> Transceiver? { transceivers.first { $0.mid == mid } }

    /// The lowest number not yet used as a mid by a transceiver or the data section.
    func freeMid() -> String {
        var n = transceivers.count
        while transceivers.contains(where: { $0.mid == String(n) }) || dataSection?.mid == String(n) { n += 1 }
        return String(n)
    }

    func makeTransceiver(
        mid: String, kind: MediaKind, direction: MediaDirection, streamID: String? = nil, trackID: String? = nil
    ) -> Transceiver {
        var track = LocalTrackIdentity.random(kind: kind, cname: cname, streamID: streamID ?? cname)
        if let trackID { track.trackID = trackID }
        return Transceiver(
            mid: mid, kind: kind, direction: direction, track: track, assembly: configuration.videoAssembly)
    }

    // MARK: DatagramMachine

    /// A datagram for the connection. Media is decrypted in place in `data` and routed to
    /// its transceiver at once: the payload reaches the decoder without another copy.
    public func handleDatagram(
        _ data: inout [UInt8], from source: TransportAddress, to local: TransportAddress, now: Duration
    ) {
        self.now = now
        switch transport.receive(&data, from: source, to: local, now: now) {
        case .rtp(let packet)?: receive(packet, now: now)
        case .rtcp(let packets)?: receive(packets, now: now)
        case nil: break
        }
    }

    public func handleTimeout(now: Duration) {
        transport.handleTimeout(now: now)
        if let d = dataDeadline, d <= now {
            dataDeadline = nil
            dataChannels?.handleTimeout(now: now)
        }
        if let due = transportFeedback.nextDeadline, due <= now {
            let reporter = transceivers.first?.track.ssrc ?? 1
            if let feedback = transportFeedback.feedback(senderSSRC: reporter, mediaSSRC: 0, now: now) {
                try? transport.sendRTCP([.transportCC(feedback)])
            }
        }
        if let at = nextReportAt, now >= at {
            sendReports(now: now)
            nextReportAt = now + .seconds(1)
        }
        receiversDeadline = nil
        for t in transceivers {
            receiverOutputs.removeAll(keepingCapacity: true)
            for r in t.receivers {
                receiverOutputs.removeAll(keepingCapacity: true)
                r.poll(output: t.output, stats: &t.stats, now: now) { receiverOutputs.append($0) }
                for output in receiverOutputs { handle(output, of: t, receiver: r, now: now) }
                if let due = r.keyframeRequestDue, due <= now { requestKeyframe(on: t, receiver: r, now: now) }
                noteDeadline(of: r)
            }
        }
        self.now = now
    }

    public var nextDeadline: Duration? { deadline(transport: transport.nextDeadline) }

    /// The earliest of the transport's deadline, the next reports and every receiver's.
    private func deadline(transport transportDeadline: Duration?) -> Duration? {
        var deadline = earliest(earliest(transportDeadline, nextReportAt), dataDeadline)
        deadline = earliest(deadline, transportFeedback.nextDeadline)
        return earliest(deadline, receiversDeadline)
    }

    /// Takes receiver `r`'s deadlines into ``receiversDeadline`` (after it changed them).
    func noteDeadline(of r: RTPReceiver) {
        receiversDeadline = earliest(receiversDeadline, earliest(r.nextDeadline, r.keyframeRequestDue))
    }

    /// The connection's next output: datagrams to send, events (its own and those of the
    /// transport underneath, whose received media it routes to the transceivers first),
    /// then the next deadline of the transport, the reports and the receivers.
    public func pollOutput() -> MachineOutput<Event> {
        while true {
            if let event = events.next() { return .event(event) }
            switch transport.pollOutput() {
            case .transmit(let datagram): return .transmit(datagram)
            case .event(let event): handle(event)
            case .wait(let until):
                // Data channel packets become DTLS records in the transport: ask it again.
                if pullDataChannels() { continue }
                updateConnectionState()
                guard events.isEmpty else { continue }
                return .wait(until: deadline(transport: until))
            }
        }
    }

    /// Closes DTLS and ICE.
    public func close(now: Duration) {
        guard !closed else { return }
        self.now = now
        closed = true
        transport.close(now: now)
        signalingState = .closed
        nextReportAt = nil
        for t in transceivers { for r in t.receivers { r.nacks = nil } }
        updateConnectionState()
    }

    // MARK: transport events

    private func handle(_ event: SecureTransportCore.Event) {
        switch event {
        case .rtp, .rtcp: break  // media comes through handleDatagram(_:from:to:now:) directly
        case .secured:
            secured = true
            nextReportAt = now + .seconds(1)
            events.append(.transport(event))
            startDataChannelsIfReady()
        case .applicationData(let bytes):
            dataChannels?.handlePacket(bytes, now: now)
        case .failed:
            dtlsFailed = true
            events.append(.transport(event))
        default: events.append(.transport(event))
        }
    }

    private func updateConnectionState() {
        let state: PeerConnectionState
        switch transport.ice.state {
        case _ where closed: state = .closed
        case _ where dtlsFailed: state = .failed
        case .failed: state = .failed
        case .closed: state = .closed
        case .disconnected: state = .disconnected
        case .connected, .completed: state = secured ? .connected : .connecting
        case .checking: state = .connecting
        case .new: state = .new
        }
        guard state != connectionState else { return }
        connectionState = state
        events.append(.connectionState(state))
    }
}
