import COpenSSL
import MeetKitNet

/// What went wrong in DTLS.
public enum DTLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Creating a key, certificate or context failed in OpenSSL.
    case setup(String)
    /// The handshake failed (OpenSSL's reason).
    case handshake(String)
    /// The peer's certificate does not match the fingerprint of its SDP (RFC 8842 §5).
    case fingerprintMismatch(expected: String, actual: String)
    /// The peer presented no certificate.
    case noPeerCertificate
    /// No SRTP protection profile was negotiated (RFC 5764 §4.1.1).
    case noSRTPProfile
    /// A fingerprint uses a hash function MeetKit does not check (it checks sha-256).
    case unsupportedFingerprint(String)
    /// The connection is closed or failed.
    case closed

    public var description: String {
        switch self {
        case .setup(let why): "DTLS setup failed: \(why)"
        case .handshake(let why): "DTLS handshake failed: \(why)"
        case .fingerprintMismatch(let expected, let actual):
            "DTLS certificate fingerprint \(actual) does not match the SDP's \(expected)"
        case .noPeerCertificate: "DTLS peer sent no certificate"
        case .noSRTPProfile: "DTLS negotiated no SRTP profile"
        case .unsupportedFingerprint(let algorithm): "unsupported fingerprint hash \(algorithm)"
        case .closed: "DTLS connection closed"
        }
    }

    /// The error OpenSSL has queued, as text.
    static func openSSLReason() -> String {
        var lines: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            lines.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return lines.isEmpty ? "unknown OpenSSL error" : lines.joined(separator: "; ")
    }
}

/// A self-signed ECDSA P-256 certificate and its key, as WebRTC endpoints use for DTLS
/// (RFC 8827 §6.5): its SHA-256 fingerprint goes in the SDP's a=fingerprint.
///
/// ```swift
/// let certificate = try DTLSCertificate.generate()
/// sdp.media[0].set("fingerprint", "sha-256 " + certificate.fingerprint)
/// ```
public final class DTLSCertificate: @unchecked Sendable {
    let key: OpaquePointer  // EVP_PKEY
    let x509: OpaquePointer  // X509
    /// SHA-256 fingerprint as upper-case hex pairs separated by colons.
    public let fingerprint: String

    private init(key: OpaquePointer, x509: OpaquePointer) throws(DTLSError) {
        self.key = key
        self.x509 = x509
        guard let fp = Self.sha256Fingerprint(x509) else {
            EVP_PKEY_free(key)
            X509_free(x509)
            throw .setup("certificate digest")
        }
        fingerprint = fp
    }

    deinit {
        EVP_PKEY_free(key)
        X509_free(x509)
    }

    /// A fresh key pair and a certificate valid from a day ago for 30 days, common name
    /// `commonName`.
    public static func generate(commonName: String = "MeetKit") throws(DTLSError) -> DTLSCertificate {
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else { throw .setup("EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) == 1,
            EVP_PKEY_keygen(ctx, &key) == 1, let key
        else { throw .setup("P-256 key generation: \(DTLSError.openSSLReason())") }
        guard let x509 = X509_new() else {
            EVP_PKEY_free(key)
            throw .setup("X509_new")
        }
        var serial: UInt64 = 0
        withUnsafeMutableBytes(of: &serial) { _ = RAND_bytes($0.baseAddress, 8) }
        let ok =
            X509_set_version(x509, 2) == 1
            && ASN1_INTEGER_set_uint64(X509_get_serialNumber(x509), serial >> 1) == 1
            && X509_gmtime_adj(X509_getm_notBefore(x509), -86_400) != nil
            && X509_gmtime_adj(X509_getm_notAfter(x509), 30 * 86_400) != nil
            && X509_set_pubkey(x509, key) == 1
        let name = X509_get_subject_name(x509)
        let named = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, commonName, -1, -1, 0) == 1
        guard ok, named, X509_set_issuer_name(x509, name) == 1, X509_sign(x509, key, EVP_sha256()) > 0 else {
            EVP_PKEY_free(key)
            X509_free(x509)
            throw .setup("self-signed certificate: \(DTLSError.openSSLReason())")
        }
        return try DTLSCertificate(key: key, x509: x509)
    }

    /// SHA-256 fingerprint of a certificate in SDP form ("AB:CD:…").
    static func sha256Fingerprint(_ x509: OpaquePointer) -> String? {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard X509_digest(x509, EVP_sha256(), &digest, &length) == 1, length == 32 else { return nil }
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }.joined(separator: ":")
    }
}
