import Transport

/// A ``SecureTransportCore`` on real UDP (a ``UDPDriver`` on 127.0.0.1 by default) with its
/// events as a stream: the media endpoint MeetKit's interop tests and benchmarks drive.
///
/// ```swift
/// let peer = try await SecureTransportPeer(role: .controlled)
/// let answer = try SessionNegotiation.makeAnswer(to: offer, ..., transport: await peer.localTransport(), ...)
/// try await peer.apply(try SessionNegotiation.negotiate(remote: offer, remoteIsOffer: true))
/// let ok = await peer.secured()
/// ```
public final class SecureTransportPeer: Sendable {
    /// The driver running the core.
    public let driver: UDPDriver<SecureTransportCore>
    /// The core's events (ICE, secured/failed, RTP, RTCP).
    public let events: AsyncStream<SecureTransportCore.Event>

    /// Binds on `address` and starts gathering, with ICE in `role`.
    public init(role: ICERole, address: IPAddress = IPAddress("127.0.0.1")!) async throws {
        var configuration = ICEConfiguration()
        configuration.role = role
        let config = configuration
        let (stream, sink) = AsyncStream.makeStream(of: SecureTransportCore.Event.self)
        events = stream
        driver = try await UDPDriver.start(
            localAddresses: [address], onEvent: { sink.yield($0) },
            started: { core, addresses, now in core.start(localAddresses: addresses, now: now) },
            makeMachine: { try SecureTransportCore(ice: config) })
    }

    /// This side's credentials, fingerprint and candidates, for its description.
    public func localTransport() async throws -> LocalTransportParameters {
        try await driver.perform { core, _ in
            LocalTransportParameters(
                credentials: core.ice.localCredentials, fingerprint: core.certificate.fingerprint,
                candidates: core.ice.localCandidates, endOfCandidates: true)
        }
    }

    /// Applies what the peer's description negotiated.
    public func apply(_ n: NegotiatedSession) async throws {
        try await driver.perform { core, now in
            try core.setRemote(
                credentials: n.remoteCredentials, isLite: n.remoteIsLite, candidates: n.remoteCandidates,
                endOfCandidates: n.remoteEndOfCandidates, fingerprint: ("sha-256", n.remoteFingerprint),
                dtlsRole: n.dtlsRole, now: now)
        }
    }

    /// Waits for DTLS-SRTP: true once secured, false on failure or after `timeout`.
    public func secured(timeout: Duration = .seconds(10)) async -> Bool {
        let outcome = await firstElement(of: events, timeout: timeout) { e in
            switch e {
            case .secured, .failed: true
            default: false
            }
        }
        if case .secured? = outcome { return true }
        return false
    }

    /// Sends close_notify and releases the socket.
    public func close() async { await driver.close { core, now in core.close(now: now) } }
}
