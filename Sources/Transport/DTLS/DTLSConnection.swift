import COpenSSL
import MeetKitNet

/// A DTLS 1.2 endpoint for DTLS-SRTP (RFC 6347, RFC 5764, RFC 8842), sans-IO over OpenSSL
/// memory BIOs: datagrams in, datagrams out, with the current time.
///
/// The peer's certificate is checked against the fingerprint from its SDP during the
/// handshake; a mismatch aborts the handshake (the peer gets an alert) and is reported as
/// ``DTLSError/fingerprintMismatch(expected:actual:)``.
///
/// Handshake retransmission is OpenSSL's: it times flights on the wall clock (first after
/// `initialRTO`, doubling up to 8 s). ``nextDeadline`` tells the driver when to call
/// ``handleTimeout(now:)`` so a lost flight is resent even if nothing arrives. In virtual
/// time (the simulated network) a lossless handshake needs no timer; a lost flight is
/// resent only once the real RTO has passed.
///
/// ```swift
/// let dtls = try DTLSConnection(role: .client, certificate: cert, remoteFingerprint: fp)
/// dtls.start(now: now)
/// // on a DTLS datagram: dtls.handleDatagram(bytes, now: now); after every input:
/// loop: while true {
///     switch dtls.pollOutput() {
///     case .transmit(let record): send(record)
///     case .event(.connected(let keys)): startSRTP(keys)
///     case .event: continue
///     case .wait(let deadline): wakeUp(at: deadline); break loop
///     }
/// }
/// ```
public final class DTLSConnection {
    /// Which side of the handshake: `a=setup:active` is the client, `passive` the server.
    public enum Role: Sendable, Hashable {
        case client, server
    }

    /// States of the connection.
    public enum State: Sendable, Hashable {
        case new, connecting, connected, failed, closed
    }

    /// What the connection reports.
    public enum Event: Sendable, Equatable {
        /// The handshake completed and the certificate matched: SRTP keys are ready.
        case connected(SRTPKeyingMaterial)
        /// Application data arrived (SCTP for data channels).
        case applicationData([UInt8])
        /// The handshake or connection failed.
        case failed(DTLSError)
        /// The peer sent close_notify.
        case closed
    }

    /// What ``pollOutput()`` hands out: a datagram of DTLS records for the peer (the owner
    /// knows the route), an event, or the time the retransmission timer is due.
    public enum Output: Sendable, Equatable {
        /// Records to send to the peer in one datagram.
        case transmit([UInt8])
        /// Something the connection reports.
        case event(Event)
        /// Nothing more now; call ``handleTimeout(now:)`` at this time (nil: no timer).
        case wait(until: Duration?)
    }

    /// This side's role.
    public let role: Role
    /// The SHA-256 fingerprint the peer's certificate must have (upper-case hex pairs).
    public var expectedRemoteFingerprint: String { expected }
    /// The state.
    public private(set) var state: State = .new
    /// The error that failed the connection, if any.
    public private(set) var error: DTLSError?
    /// Datagrams that were not DTLS records OpenSSL accepted.
    public private(set) var rejectedDatagrams = 0

    private let ssl: OpaquePointer  // SSL
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private let expected: String
    private var mismatch: String?
    private var transmits = OutputQueue<[UInt8]>()
    private var events = OutputQueue<Event>()
    private var deadline: Duration?
    fileprivate let initialRTOMicroseconds: UInt32
    private let handshakeTimeout: Duration
    private var startedAt: Duration = .zero

    /// Creates an endpoint.
    /// - Parameters:
    ///   - remoteFingerprint: the peer's a=fingerprint value (hex pairs), sha-256.
    ///   - profiles: SRTP profiles offered (client) or accepted (server), in preference order.
    ///   - mtu: largest datagram to send.
    public init(
        role: Role, certificate: DTLSCertificate, remoteFingerprint: (algorithm: String, value: String),
        profiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80], mtu: Int = 1200,
        initialRTO: Duration = .milliseconds(500), handshakeTimeout: Duration = .seconds(30)
    ) throws(DTLSError) {
        guard remoteFingerprint.algorithm.lowercased() == "sha-256" else {
            throw .unsupportedFingerprint(remoteFingerprint.algorithm)
        }
        self.role = role
        expected = remoteFingerprint.value.uppercased()
        let micros = initialRTO.components.seconds * 1_000_000 + initialRTO.components.attoseconds / 1_000_000_000_000
        initialRTOMicroseconds = UInt32(clamping: max(1000, micros))
        self.handshakeTimeout = handshakeTimeout
        let context = try SharedDTLSContext.context()
        guard let ssl = SSL_new(context) else { throw .setup("SSL_new") }
        guard SSL_use_certificate(ssl, certificate.x509) == 1, SSL_use_PrivateKey(ssl, certificate.key) == 1,
            SSL_set_tlsext_use_srtp(ssl, profiles.map(\.openSSLName).joined(separator: ":")) == 0,
            let readBIO = BIO_new(BIO_s_mem())
        else {
            SSL_free(ssl)
            throw .setup("SSL configuration: \(DTLSError.openSSLReason())")
        }
        guard let writeBIO = BIO_new(BIO_s_mem()) else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw .setup("BIO_new")
        }
        SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, dtlsVerifyCallback)
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        // An empty memory BIO means "try again", not end of file.
        BIO_ctrl(readBIO, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, nil)
        SSL_set_bio(ssl, readBIO, writeBIO)
        _ = SSL_set_options(ssl, UInt64(1 << 12))  // SSL_OP_NO_QUERY_MTU
        SSL_ctrl(ssl, SSL_CTRL_SET_MTU, mtu, nil)
        DTLS_set_timer_cb(ssl, dtlsTimerCallback)
        // The callbacks find this object through the SSL's ex_data; it outlives the SSL.
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        if role == .client { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs; the shared context stays
    }

    /// Called by OpenSSL's verify callback with the peer's leaf certificate.
    fileprivate func verify(_ certificate: OpaquePointer) -> Bool {
        guard let actual = DTLSCertificate.sha256Fingerprint(certificate) else { return false }
        if actual == expected { return true }
        mismatch = actual
        return false
    }

    /// Starts the handshake (the client sends its ClientHello; the server waits).
    public func start(now: Duration) {
        guard state == .new else { return }
        state = .connecting
        startedAt = now
        advanceHandshake(now: now)
    }

    /// Feeds a datagram that RFC 7983 demultiplexing identified as DTLS.
    public func handleDatagram(_ data: [UInt8], now: Duration) {
        guard state == .connecting || state == .connected || state == .new, !data.isEmpty else { return }
        if state == .new { start(now: now) }
        _ = data.withUnsafeBytes { BIO_write(readBIO, $0.baseAddress, Int32($0.count)) }
        if state == .connecting {
            advanceHandshake(now: now)
        } else {
            readApplicationData()
        }
        collectOutput(now: now)
    }

    /// Retransmits on schedule and fails a handshake that takes too long.
    public func handleTimeout(now: Duration) {
        guard state == .connecting else { return }
        if now - startedAt >= handshakeTimeout {
            fail(.handshake("no answer within \(handshakeTimeout)"))
            return
        }
        guard let due = deadline, now >= due else { return }
        if SSL_ctrl(ssl, DTLS_CTRL_HANDLE_TIMEOUT, 0, nil) < 0 {
            fail(.handshake(DTLSError.openSSLReason()))
            return
        }
        collectOutput(now: now)
    }

    /// When ``handleTimeout(now:)`` must next be called.
    public var nextDeadline: Duration? {
        guard state == .connecting else { return nil }
        let limit = startedAt + handshakeTimeout
        return deadline.map { min($0, limit) } ?? limit
    }

    /// Encrypts application data (SCTP) for the peer.
    public func send(_ data: [UInt8]) throws(DTLSError) {
        guard state == .connected else { throw .closed }
        let n = data.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        guard n > 0 else { throw .closed }
        collectOutput(now: .zero)
    }

    /// Sends close_notify and closes.
    public func close() {
        guard state == .connected || state == .connecting else { return }
        SSL_shutdown(ssl)
        state = .closed
        collectOutput(now: .zero)
    }

    /// The connection's next output: records to send (in order), then events, then the
    /// time ``handleTimeout(now:)`` is due.
    public func pollOutput() -> Output {
        if let record = transmits.next() { return .transmit(record) }
        if let event = events.next() { return .event(event) }
        return .wait(until: nextDeadline)
    }

    // MARK: internals

    private func advanceHandshake(now: Duration) {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            finishHandshake()
        } else {
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: break
            default:
                if let actual = mismatch {
                    fail(.fingerprintMismatch(expected: expected, actual: actual))
                } else {
                    fail(.handshake(DTLSError.openSSLReason()))
                }
            }
        }
        collectOutput(now: now)
    }

    private func finishHandshake() {
        guard let peer = SSL_get1_peer_certificate(ssl) else {
            fail(.noPeerCertificate)
            return
        }
        defer { X509_free(peer) }
        guard let actual = DTLSCertificate.sha256Fingerprint(peer), actual == expected else {
            fail(.fingerprintMismatch(expected: expected, actual: DTLSCertificate.sha256Fingerprint(peer) ?? "?"))
            return
        }
        guard let selected = SSL_get_selected_srtp_profile(ssl),
            let profile = SRTPProfile(rawValue: UInt16(selected.pointee.id))
        else {
            fail(.noSRTPProfile)
            return
        }
        let length = 2 * (profile.keyLength + profile.saltLength)
        var exported = [UInt8](repeating: 0, count: length)
        let label = "EXTRACTOR-dtls_srtp"
        guard SSL_export_keying_material(ssl, &exported, length, label, label.utf8.count, nil, 0, 0) == 1 else {
            fail(.handshake("keying material export: \(DTLSError.openSSLReason())"))
            return
        }
        state = .connected
        deadline = nil
        events.append(.connected(SRTPKeyingMaterial(profile: profile, exported: exported, isClient: role == .client)))
        readApplicationData()
    }

    private func readApplicationData() {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while state == .connected {
            ERR_clear_error()
            let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 {
                events.append(.applicationData(Array(buffer[0..<Int(n)])))
                continue
            }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return
            case SSL_ERROR_ZERO_RETURN:
                state = .closed
                events.append(.closed)
                return
            default:
                // A record that fails to decrypt is dropped by DTLS; count and go on.
                rejectedDatagrams += 1
                return
            }
        }
    }

    private func fail(_ e: DTLSError) {
        guard state != .failed, state != .closed else { return }
        state = .failed
        error = e
        deadline = nil
        events.append(.failed(e))
    }

    private func collectOutput(now: Duration) {
        while BIO_ctrl_pending(writeBIO) > 0 {
            var buffer = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(writeBIO)))
            let n = buffer.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress, Int32($0.count)) }
            guard n > 0 else { break }
            transmits.append(Array(buffer[0..<Int(n)]))
        }
        // While a flight is outstanding OpenSSL's timer runs: wake up when it is due.
        var tv = timeval()
        if state == .connecting, SSL_ctrl(ssl, DTLS_CTRL_GET_TIMEOUT, 0, &tv) == 1 {
            deadline = now + .seconds(Int64(tv.tv_sec)) + .microseconds(Int64(tv.tv_usec)) + .milliseconds(1)
        } else {
            deadline = nil
        }
    }
}

/// Retransmission timeouts: the configured initial RTO, then doubling up to 8 s.
private func dtlsTimerCallback(_ ssl: OpaquePointer?, _ previous: UInt32) -> UInt32 {
    guard let ssl, let owner = SSL_get_ex_data(ssl, 0) else { return 1_000_000 }
    let connection = Unmanaged<DTLSConnection>.fromOpaque(owner).takeUnretainedValue()
    return previous == 0 ? connection.initialRTOMicroseconds : min(previous * 2, 8_000_000)
}

/// Accepts the peer's certificate only if its fingerprint is the one from the SDP.
private func dtlsVerifyCallback(_ preverified: Int32, _ store: OpaquePointer?) -> Int32 {
    guard let store, let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
        let owner = SSL_get_ex_data(OpaquePointer(ssl), 0)
    else { return 0 }
    // Only the leaf certificate matters; self-signed chains fail OpenSSL's own checks.
    guard X509_STORE_CTX_get_error_depth(store) == 0, let certificate = X509_STORE_CTX_get_current_cert(store) else {
        return 1
    }
    let connection = Unmanaged<DTLSConnection>.fromOpaque(owner).takeUnretainedValue()
    return connection.verify(certificate) ? 1 : 0
}

/// One DTLS `SSL_CTX` for the whole process (DTLS 1.2 at least); certificates, SRTP
/// profiles and verification are set on each connection's `SSL`, so connections share
/// the context's tables instead of holding one each. An `SSL_CTX` is safe to use from
/// several threads once configured; it is configured once, here, and never changed.
private final class SharedDTLSContext: @unchecked Sendable {
    let pointer: OpaquePointer?
    let failure: String?
    static let shared = SharedDTLSContext()

    private init() {
        guard let context = SSL_CTX_new(DTLS_method()) else {
            (pointer, failure) = (nil, "SSL_CTX_new: \(DTLSError.openSSLReason())")
            return
        }
        guard SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(DTLS1_2_VERSION), nil) == 1 else {
            SSL_CTX_free(context)
            (pointer, failure) = (nil, "SSL_CTX configuration: \(DTLSError.openSSLReason())")
            return
        }
        (pointer, failure) = (context, nil)
    }

    static func context() throws(DTLSError) -> OpaquePointer {
        guard let pointer = shared.pointer else { throw .setup(shared.failure ?? "SSL_CTX") }
        return pointer
    }
}
