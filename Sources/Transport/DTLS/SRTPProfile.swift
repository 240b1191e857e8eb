import MeetKitNet

/// SRTP protection profiles negotiated by DTLS-SRTP (RFC 5764 §4.1.2, RFC 7714 §14.2).
public enum SRTPProfile: UInt16, Sendable, Hashable, CaseIterable {
    /// AES-128 counter mode with a 80-bit HMAC-SHA1 tag: every WebRTC peer has it.
    case aes128CMHMACSHA1_80 = 0x0001
    /// AES-128-GCM with a 16-byte tag: preferred, about 3× faster with Debian's libsrtp2.
    case aeadAES128GCM = 0x0007

    /// The OpenSSL name used in `use_srtp` configuration.
    var openSSLName: String {
        switch self {
        case .aes128CMHMACSHA1_80: "SRTP_AES128_CM_SHA1_80"
        case .aeadAES128GCM: "SRTP_AEAD_AES_128_GCM"
        }
    }

    /// Master key length in bytes.
    public var keyLength: Int { 16 }
    /// Master salt length in bytes.
    public var saltLength: Int {
        switch self {
        case .aes128CMHMACSHA1_80: 14
        case .aeadAES128GCM: 12
        }
    }
}

/// SRTP master keys and salts exported from a DTLS handshake (RFC 5764 §4.2): one pair
/// for what this side sends, one for what it receives.
public struct SRTPKeyingMaterial: Sendable, Hashable {
    /// The negotiated profile.
    public var profile: SRTPProfile
    /// Key for packets this side sends.
    public var localKey: [UInt8]
    /// Salt for packets this side sends.
    public var localSalt: [UInt8]
    /// Key for packets this side receives.
    public var remoteKey: [UInt8]
    /// Salt for packets this side receives.
    public var remoteSalt: [UInt8]

    /// Keys given directly (e.g. for tests, or keys agreed by other means).
    public init(profile: SRTPProfile, localKey: [UInt8], localSalt: [UInt8], remoteKey: [UInt8], remoteSalt: [UInt8]) {
        self.profile = profile
        self.localKey = localKey
        self.localSalt = localSalt
        self.remoteKey = remoteKey
        self.remoteSalt = remoteSalt
    }

    /// Splits the exporter output client_key | server_key | client_salt | server_salt.
    init(profile: SRTPProfile, exported: [UInt8], isClient: Bool) {
        let k = profile.keyLength
        let s = profile.saltLength
        let clientKey = Array(exported[0..<k])
        let serverKey = Array(exported[k..<(2 * k)])
        let clientSalt = Array(exported[(2 * k)..<(2 * k + s)])
        let serverSalt = Array(exported[(2 * k + s)..<(2 * k + 2 * s)])
        self.profile = profile
        localKey = isClient ? clientKey : serverKey
        localSalt = isClient ? clientSalt : serverSalt
        remoteKey = isClient ? serverKey : clientKey
        remoteSalt = isClient ? serverSalt : clientSalt
    }
}
