import Codec
import NIOCore
import NIOPosix

/// A WebRTC PeerConnection over real UDP: ``PeerConnectionCore`` run by a ``UDPDriver``,
/// with an async API and its events as an `AsyncStream`.
///
/// ```swift
/// let pc = try await PeerConnection.start(localAddresses: [IPAddress("127.0.0.1")!])
/// let audio = try await pc.addTransceiver(.audio, receive: .decoded(audioSampleRate: 16_000))
/// let offer = try await pc.createOffer()
/// try await pc.setLocalDescription(offer)              // then send it to the peer
/// try await pc.setRemoteDescription(answer)
/// try await pc.send(audio: pcm, mid: audio)            // or send(encodedFrame, mid:)
/// for await event in pc.events { if case .audio(let mid, let pcm) = event { … } }
/// ```
public final class PeerConnection: Sendable {
    /// What a PeerConnection reports.
    public typealias Event = PeerConnectionCore.Event
    /// Transport events, state changes, remote tracks, received frames, keyframe requests.
    public let events: AsyncStream<Event>
    /// Data channels the peer opened, as they open (one consumer: it is an `AsyncStream`).
    public var dataChannels: AsyncStream<DataChannel> { registry.remote }
    private let driver: UDPDriver<PeerConnectionCore>
    private let sink: AsyncStream<Event>.Continuation
    private let registry: DataChannelRegistry

    private init(
        driver: UDPDriver<PeerConnectionCore>, events: AsyncStream<Event>, sink: AsyncStream<Event>.Continuation,
        registry: DataChannelRegistry
    ) {
        self.driver = driver
        self.events = events
        self.sink = sink
        self.registry = registry
        registry.attach(driver)
    }

    /// Binds a socket on each address and starts gathering. No STUN or TURN server unless
    /// the configuration names one.
    public static func start(
        configuration: PeerConnectionConfiguration = .init(), localAddresses: [IPAddress],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerConnection {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        return try await start(
            configuration: configuration, localAddresses: localAddresses, group: group, events: events, sink: sink,
            onEvent: { sink.yield($0) })
    }

    /// Like ``start(configuration:localAddresses:group:)``, with every event handed to
    /// `handler` instead of ``events`` (which then ends at once): for code that dispatches
    /// events itself, as a Room does, this saves a hand-over between tasks per burst of
    /// packets. `handler` runs on the connection's event loop, in order, as events happen
    /// — from the first gathered candidate on; it must return quickly and never block.
    public static func start(
        configuration: PeerConnectionConfiguration = .init(), localAddresses: [IPAddress],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handler: @escaping @Sendable (Event) -> Void
    ) async throws -> PeerConnection {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        sink.finish()
        return try await start(
            configuration: configuration, localAddresses: localAddresses, group: group, events: events, sink: sink,
            onEvent: handler)
    }

    private static func start(
        configuration: PeerConnectionConfiguration, localAddresses: [IPAddress], group: any EventLoopGroup,
        events: AsyncStream<Event>, sink: AsyncStream<Event>.Continuation,
        onEvent: @escaping @Sendable (Event) -> Void
    ) async throws -> PeerConnection {
        // Data channel messages count against SCTP's receive window until read from
        // ``DataChannel/messages``: a slow reader slows the peer instead of filling memory.
        var holding = configuration
        holding.sctp.holdsDeliveredUntilReleased = true
        let configuration = holding
        let registry = DataChannelRegistry()
        do {
            let driver = try await UDPDriver<PeerConnectionCore>.start(
                localAddresses: localAddresses, group: group, readInterval: configuration.readInterval,
                onEvent: { event in
                    registry.route(event)
                    onEvent(event)
                },
                started: { pc, addresses, now in pc.start(localAddresses: addresses, now: now) },
                makeMachine: { try PeerConnectionCore(configuration: configuration) })
            return PeerConnection(driver: driver, events: events, sink: sink, registry: registry)
        } catch {
            sink.finish()
            throw error
        }
    }

    /// Adds a transceiver; returns its mid.
    public func addTransceiver(
        _ kind: MediaKind, direction: MediaDirection = .sendrecv, receive: ReceiveOutput = .encoded
    ) async throws -> String {
        try await driver.perform { pc, _ in pc.addTransceiver(kind, direction: direction, receive: receive) }
    }

    /// Changes what transceiver `mid` hands out.
    public func setReceiveOutput(_ output: ReceiveOutput, mid: String) async throws {
        try await driver.perform { pc, _ in try pc.setReceiveOutput(output, mid: mid) }
    }

    /// The transceivers, in SDP order.
    public func transceivers() async throws -> [(mid: String, kind: MediaKind, direction: MediaDirection)] {
        try await driver.perform { pc, _ in pc.transceiverList }
    }

    /// The sections of the current remote description that carry nothing, and why (see
    /// ``PeerConnectionCore/rejectedSections``): a call can check that nothing it wanted
    /// was refused.
    public func rejectedSections() async throws -> [RejectedSection] {
        try await driver.perform { pc, _ in pc.rejectedSections }
    }

    /// An offer with every transceiver and candidate.
    public func createOffer() async throws -> SessionDescription {
        try await driver.perform { pc, _ in pc.createOffer() }
    }

    /// An answer to the remote offer applied with ``setRemoteDescription(_:)``.
    public func createAnswer() async throws -> SessionDescription {
        try await driver.perform { pc, _ in try pc.createAnswer() }
    }

    /// Applies a description this side created (see ``PeerConnectionCore/setLocalDescription(_:)``).
    public func setLocalDescription(_ sdp: SessionDescription) async throws {
        try await driver.perform { pc, _ in try pc.setLocalDescription(sdp) }
    }

    /// Applies the peer's offer or answer.
    /// - Throws: ``PeerConnectionError`` for an unusable description.
    public func setRemoteDescription(_ sdp: SessionDescription) async throws {
        try await driver.perform { pc, now in try pc.setRemoteDescription(sdp, now: now) }
    }

    /// Adds a trickled remote candidate; nil for end-of-candidates.
    public func addICECandidate(_ candidate: ICECandidate?) async throws {
        try await driver.perform { pc, now in try pc.addICECandidate(candidate, now: now) }
    }

    /// Changes the direction transceiver `mid` offers from the next offer on: `.inactive`
    /// stops a track (see ``PeerConnectionCore/setDirection(_:mid:)``).
    public func setDirection(_ direction: MediaDirection, mid: String) async throws {
        try await driver.perform { pc, _ in try pc.setDirection(direction, mid: mid) }
    }

    /// Restarts ICE; the next offer carries the new credentials.
    public func restartICE() async throws {
        try await driver.perform { pc, now in pc.restartICE(now: now) }
    }

    /// Sends an encoded frame (Opus packet or VP8 frame) on transceiver `mid`.
    public func send(_ frame: EncodedFrame, mid: String) async throws {
        try await driver.perform { pc, now in try pc.send(frame, mid: mid, now: now) }
    }

    /// Sends raw audio (any block length) through the built-in Opus encoder.
    public func send(audio: AudioFrame<Int16>, mid: String) async throws {
        try await driver.perform { pc, now in try pc.send(audio: audio, mid: mid, now: now) }
    }

    /// Sends a picture through the built-in VP8 encoder.
    public func send(video: VideoFrame, mid: String) async throws {
        try await driver.perform { pc, now in try pc.send(video: video, mid: mid, now: now) }
    }

    /// Asks the peer for a keyframe of the video it sends on transceiver `mid`.
    public func requestKeyframe(mid: String) async throws {
        try await driver.perform { pc, now in try pc.requestKeyframe(mid: mid, now: now) }
    }

    /// Counters of transceiver `mid`.
    public func statistics(mid: String) async throws -> PeerConnectionCore.TransceiverStatistics? {
        try await driver.perform { pc, _ in pc.statistics(mid: mid) }
    }

    /// Counters of the secure transport (dropped datagrams by reason, packets in and out).
    public func transportStatistics() async throws -> SecureTransportCore.Statistics {
        try await driver.perform { pc, _ in pc.transport.statistics }
    }

    /// The aggregate connection state.
    public func connectionState() async throws -> PeerConnectionState {
        try await driver.perform { pc, _ in pc.connectionState }
    }

    /// The DTLS role and the SRTP profile, once secured.
    public func securityParameters() async throws -> (dtlsRole: DTLSConnection.Role, profile: SRTPProfile)? {
        try await driver.perform { pc, _ in
            guard let role = pc.transport.dtls?.role, let profile = pc.transport.srtp?.profile else { return nil }
            return (role, profile)
        }
    }

    /// Creates a data channel (RFC 8831); the first one adds a data section to the next
    /// offer. It opens once the connection is up and, unless negotiated, the peer
    /// acknowledged it (``DataChannel/opened()``).
    public func createDataChannel(label: String, options: DataChannelOptions = .init()) async throws -> DataChannel {
        let registry = self.registry
        let driver = self.driver
        return try await driver.perform { pc, _ in
            let handle = try pc.createDataChannel(label: label, options: options)
            let channel = DataChannel(handle: handle, label: label, options: options, driver: driver)
            registry.add(channel)
            return channel
        }
    }

    /// Counters of the data channels' SCTP association (nil before there is one).
    public func dataChannelStatistics() async throws -> SCTPStatistics? {
        try await driver.perform { pc, _ in pc.dataChannels?.association.statistics }
    }

    /// Sends DTLS close_notify, closes ICE, releases the socket and ends ``events``.
    public func close() async {
        await driver.close { pc, now in pc.close(now: now) }
        registry.closeAll()
        sink.finish()
    }
}
