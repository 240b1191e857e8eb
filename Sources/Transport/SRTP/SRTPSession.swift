import CSRTP
import MeetKitNet
import MeetKitRTP

/// Why an SRTP or SRTCP packet was not protected or accepted.
public enum SRTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// libsrtp could not be initialised or a session created.
    case setup(String)
    /// The authentication tag does not match: forged, corrupted, or the wrong key.
    case authenticationFailed
    /// A packet already received (or too old for the replay window).
    case replayed
    /// Too short or otherwise not an (S)RTP/(S)RTCP packet.
    case malformed
    /// Another libsrtp status.
    case library(code: Int32)

    init(_ status: srtp_err_status_t) {
        switch status {
        case srtp_err_status_auth_fail: self = .authenticationFailed
        case srtp_err_status_replay_fail, srtp_err_status_replay_old: self = .replayed
        case srtp_err_status_bad_param, srtp_err_status_parse_err: self = .malformed
        default: self = .library(code: Int32(status.rawValue))
        }
    }

    public var description: String {
        switch self {
        case .setup(let why): "SRTP setup failed: \(why)"
        case .authenticationFailed: "SRTP authentication failed"
        case .replayed: "SRTP replayed packet"
        case .malformed: "malformed SRTP packet"
        case .library(let code): "libsrtp error \(code)"
        }
    }
}

/// An SRTP session (RFC 3711, RFC 7714) for one DTLS-SRTP association: protects what this
/// side sends and unprotects what it receives, for every SSRC, with replay protection
/// (window of 1024) and rollover-counter tracking. libsrtp2 protects and does SRTCP;
/// received RTP goes through MeetKit's own receiver on OpenSSL, which decides as libsrtp
/// does at a fraction of the cost of Debian's NSS-based libsrtp2.
///
/// ```swift
/// let srtp = try SRTPSession(keys: keys)        // from DTLSConnection's .connected event
/// let wire = try srtp.protectRTP(rtpPacket)
/// let clear = try srtp.unprotectRTP(received)   // typed error for forged or replayed
/// ```
///
/// Not thread-safe: use one session from one task (the transport's event loop).
public final class SRTPSession {
    /// Counters of packets processed and refused.
    public struct Statistics: Sendable, Equatable {
        /// RTP and RTCP packets protected.
        public var protected = 0
        /// RTP and RTCP packets accepted.
        public var unprotected = 0
        /// Packets refused because their tag did not verify.
        public var authenticationFailures = 0
        /// Packets refused as replays.
        public var replays = 0
        /// Packets refused as malformed, or for another libsrtp reason.
        public var malformed = 0
    }

    /// The profile in use.
    public let profile: SRTPProfile
    /// Counters.
    /// (Not checked for exclusive access at run time: the session is used from one task.)
    @exclusivity(unchecked) public private(set) var statistics = Statistics()
    private let outbound: srtp_t
    private let inbound: srtp_t
    /// Received RTP, verified and decrypted on OpenSSL rather than by `inbound` (libsrtp
    /// still does SRTCP and everything sent).
    private let receiver: SRTPReceiver?
    private var scratch = [UInt8](repeating: 0, count: 2048)

    private static let initialised: Bool = srtp_init() == srtp_err_status_ok

    /// Creates the outbound and inbound contexts from DTLS-exported keys.
    public convenience init(keys: SRTPKeyingMaterial) throws(SRTPError) {
        try self.init(keys: keys, libsrtpReceivesRTP: false)
    }

    /// With `libsrtpReceivesRTP`, received RTP goes through libsrtp (the reference the tests
    /// and benchmarks compare MeetKit's own receiver with).
    package init(keys: SRTPKeyingMaterial, libsrtpReceivesRTP: Bool) throws(SRTPError) {
        guard Self.initialised else { throw .setup("srtp_init") }
        profile = keys.profile
        receiver =
            libsrtpReceivesRTP
            ? nil : try SRTPReceiver(profile: keys.profile, masterKey: keys.remoteKey, masterSalt: keys.remoteSalt)
        let outbound = try Self.makeSession(
            key: keys.localKey + keys.localSalt, profile: keys.profile, outbound: true)
        do {
            inbound = try Self.makeSession(
                key: keys.remoteKey + keys.remoteSalt, profile: keys.profile, outbound: false)
        } catch {
            srtp_dealloc(outbound)
            throw error
        }
        self.outbound = outbound
    }

    deinit {
        srtp_dealloc(outbound)
        srtp_dealloc(inbound)
    }

    private static func makeSession(key: [UInt8], profile: SRTPProfile, outbound: Bool) throws(SRTPError) -> srtp_t {
        var policy = srtp_policy_t()
        switch profile {
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        case .aes128CMHMACSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        }
        policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound
        policy.window_size = 1024
        // NACK answers without RTX resend a packet with its own sequence number.
        policy.allow_repeat_tx = 1
        var session: srtp_t?
        let status = key.withUnsafeBufferPointer { k in
            policy.key = UnsafeMutablePointer(mutating: k.baseAddress)
            return srtp_create(&session, &policy)
        }
        guard status == srtp_err_status_ok, let session else { throw .setup("srtp_create: \(status.rawValue)") }
        return session
    }

    /// SRTP-protects an RTP packet (header in the clear, payload encrypted, tag appended).
    public func protectRTP(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        try run(packet, minimum: 12, extra: Int(SRTP_MAX_TRAILER_LEN)) { srtp_protect(outbound, $0, $1) }
    }

    /// Verifies and decrypts an SRTP packet.
    public func unprotectRTP(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        var clear = packet
        try unprotect(&clear, minimum: 12, rtcp: false)
        return clear
    }

    /// Verifies and decrypts an SRTP packet in its own buffer, without allocating: on
    /// success `packet` holds the clear RTP packet.
    public func unprotectRTP(inPlace packet: inout [UInt8]) throws(SRTPError) {
        try unprotect(&packet, minimum: 12, rtcp: false)
    }

    /// Verifies and decrypts an SRTP packet in its own buffer and parses it: the receive
    /// path's one call, which copies and allocates nothing (the packet's payload and
    /// extensions are slices of `packet`).
    /// - Throws: ``SRTPError`` when SRTP refuses the packet, ``SRTPError/malformed`` when the
    ///   clear packet is not RTP.
    public func unprotectRTPPacket(inPlace packet: inout [UInt8]) throws(SRTPError) -> RTPPacket {
        try unprotectRTP(inPlace: &packet)
        guard let parsed = try? RTPPacket(parsing: packet) else {
            statistics.malformed += 1
            throw .malformed
        }
        return parsed
    }

    /// Verifies and decrypts an SRTCP packet in its own buffer, without allocating: on
    /// success `packet` holds the clear RTCP compound packet.
    public func unprotectRTCP(inPlace packet: inout [UInt8]) throws(SRTPError) {
        try unprotect(&packet, minimum: 8, rtcp: true)
    }

    private func unprotect(_ packet: inout [UInt8], minimum: Int, rtcp: Bool) throws(SRTPError) {
        guard packet.count >= minimum, packet[0] >> 6 == 2 else {
            statistics.malformed += 1
            throw .malformed
        }
        if !rtcp, let receiver {
            let clear = packet.withUnsafeMutableBytes { bytes in
                Result { () throws(SRTPError) in try receiver.unprotect(bytes.baseAddress!, length: bytes.count) }
            }
            switch clear {
            case .success(let length): packet.removeLast(packet.count - length)
            case .failure(let error): throw counted(error)
            }
            statistics.unprotected += 1
            return
        }
        var length = Int32(packet.count)
        // Called directly (not through a closure): this is once per received packet.
        let status = packet.withUnsafeMutableBytes { [inbound] bytes in
            rtcp
                ? srtp_unprotect_rtcp(inbound, bytes.baseAddress!, &length)
                : srtp_unprotect(inbound, bytes.baseAddress!, &length)
        }
        guard status == srtp_err_status_ok else { throw counted(SRTPError(status)) }
        packet.removeLast(packet.count - Int(length))
        statistics.unprotected += 1
    }

    /// SRTCP-protects an RTCP compound packet (4 bytes of SRTCP index plus the tag appended).
    public func protectRTCP(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        try run(packet, minimum: 8, extra: Int(SRTP_MAX_TRAILER_LEN) + 4) { srtp_protect_rtcp(outbound, $0, $1) }
    }

    /// Verifies and decrypts an SRTCP packet.
    public func unprotectRTCP(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        try run(packet, minimum: 8, extra: 0) { srtp_unprotect_rtcp(inbound, $0, $1) }
    }

    /// Counts a refusal and returns its error.
    private func counted(_ error: SRTPError) -> SRTPError {
        switch error {
        case .authenticationFailed: statistics.authenticationFailures += 1
        case .replayed: statistics.replays += 1
        default: statistics.malformed += 1
        }
        return error
    }

    private func run(
        _ packet: [UInt8], minimum: Int, extra: Int,
        _ body: (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t
    ) throws(SRTPError) -> [UInt8] {
        let protecting = extra > 0
        guard packet.count >= minimum, packet[0] >> 6 == 2, packet.count + extra <= 65_535 else {
            statistics.malformed += 1
            throw .malformed
        }
        if scratch.count < packet.count + extra { scratch = [UInt8](repeating: 0, count: packet.count + extra) }
        var length = Int32(packet.count)
        let status = scratch.withUnsafeMutableBytes { buffer -> srtp_err_status_t in
            packet.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return body(buffer.baseAddress!, &length)
        }
        guard status == srtp_err_status_ok else { throw counted(SRTPError(status)) }
        if protecting { statistics.protected += 1 } else { statistics.unprotected += 1 }
        return Array(scratch[0..<Int(length)])
    }
}
