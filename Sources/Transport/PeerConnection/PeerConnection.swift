import Codec
import NIOCore
import NIOPosix

/// A WebRTC PeerConnection over real UDP: ``PeerConnectionCore`` run by a ``UDPDriver``,
/// with an async API and its events as an `AsyncStream`.
///
/// ```swift
/// let pc = try await PeerConnection.start(localAddresses: [IPAddress("127.0.0.1")!])
/// let audio = try await pc.addTransceiver(.audio)
/// let offer = try await pc.createOffer()               // send it to the peer
/// try await pc.setRemoteDescription(answer, isOffer: false)
/// try await pc.send(opusPacket, mid: audio)
/// for await event in pc.events { if case .frame(let mid, let frame) = event { … } }
/// ```
public final class PeerConnection: Sendable {
    /// Transport events, received frames and keyframe requests.
    public let events: AsyncStream<PeerConnectionCore.Event>
    private let driver: UDPDriver<PeerConnectionCore>
    private let sink: AsyncStream<PeerConnectionCore.Event>.Continuation

    private init(
        driver: UDPDriver<PeerConnectionCore>, events: AsyncStream<PeerConnectionCore.Event>,
        sink: AsyncStream<PeerConnectionCore.Event>.Continuation
    ) {
        self.driver = driver
        self.events = events
        self.sink = sink
    }

    /// Binds a socket on each address and starts gathering. No STUN server unless the ICE
    /// configuration names one.
    public static func start(
        configuration: ICEConfiguration = .init(), localAddresses: [IPAddress],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerConnection {
        let (events, sink) = AsyncStream.makeStream(of: PeerConnectionCore.Event.self)
        do {
            let driver = try await UDPDriver<PeerConnectionCore>.start(
                localAddresses: localAddresses, group: group,
                afterPump: { pc in for e in pc.drainEvents() { sink.yield(e) } },
                started: { pc, addresses, now in pc.start(localAddresses: addresses, now: now) },
                makeMachine: { try PeerConnectionCore(ice: configuration) })
            return PeerConnection(driver: driver, events: events, sink: sink)
        } catch {
            sink.finish()
            throw error
        }
    }

    /// Adds a transceiver; returns its mid.
    public func addTransceiver(_ kind: MediaKind, direction: MediaDirection = .sendrecv) async throws -> String {
        try await driver.perform { pc, _ in pc.addTransceiver(kind, direction: direction) }
    }

    /// An offer with every transceiver and candidate.
    public func createOffer() async throws -> SessionDescription {
        try await driver.perform { pc, _ in pc.createOffer() }
    }

    /// An answer to `offer` (given to ``setRemoteDescription(_:isOffer:)`` first).
    public func createAnswer(to offer: SessionDescription) async throws -> SessionDescription {
        try await driver.perform { pc, _ in try pc.createAnswer(to: offer) }
    }

    /// Applies the peer's offer or answer.
    /// - Throws: ``PeerConnectionError`` for an unusable description.
    public func setRemoteDescription(_ sdp: SessionDescription, isOffer: Bool) async throws {
        try await driver.perform { pc, now in try pc.setRemoteDescription(sdp, isOffer: isOffer, now: now) }
    }

    /// Sends an encoded frame (Opus packet or VP8 frame) on transceiver `mid`.
    public func send(_ frame: EncodedFrame, mid: String) async throws {
        try await driver.perform { pc, now in try pc.send(frame, mid: mid, now: now) }
    }

    /// Counters of transceiver `mid`.
    public func statistics(mid: String) async throws -> PeerConnectionCore.TransceiverStatistics? {
        try await driver.perform { pc, _ in pc.statistics(mid: mid) }
    }

    /// Sends DTLS close_notify, closes ICE, releases the socket and ends ``events``.
    public func close() async {
        await driver.close { pc, now in pc.close(now: now) }
        sink.finish()
    }
}
