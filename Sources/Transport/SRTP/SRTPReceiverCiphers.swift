import CMeetKitCrypto
import COpenSSL
import MeetKitNet

/// AEAD_AES_128_GCM for received RTP (RFC 7714): OpenSSL's AES-GCM keyed once with the
/// session key; per packet the IV, the header as associated data, the payload decrypted in
/// place, the 16-byte tag checked.
final class SRTPGCMCipher {
    static let tagLength = 16

    private let context: OpaquePointer
    /// The session salt (12 bytes) as two big-endian words, for the IV.
    private let saltHigh: UInt64
    private let saltLow: UInt32
    /// The IV of the packet at hand (12 bytes, reused).
    private let iv: UnsafeMutableRawPointer

    init(key: [UInt8], salt: [UInt8]) throws(SRTPError) {
        guard let context = EVP_CIPHER_CTX_new() else { throw .setup("EVP_CIPHER_CTX_new") }
        guard EVP_DecryptInit_ex(context, EVP_aes_128_gcm(), nil, key, nil) == 1 else {
            EVP_CIPHER_CTX_free(context)
            throw .setup("AES-GCM key")
        }
        self.context = context
        saltHigh = UInt64(be32(salt, 0)) << 32 | UInt64(be32(salt, 4))
        saltLow = be32(salt, 8)
        iv = UnsafeMutableRawPointer.allocate(byteCount: 12, alignment: 8)
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
        iv.deallocate()
    }

    /// Whether the packet is authentic; if so its payload is now clear, if not zeroed
    /// (not left decrypted but unauthenticated).
    func open(_ packet: UnsafeMutableRawPointer, headerLength: Int, length: Int, index: SRTPPacketIndex) -> Bool {
        // IV = (0x0000 || SSRC || ROC || SEQ) XOR salt (RFC 7714 §8.1).
        let roc = index.rolloverCounter
        iv.storeBytes(of: ((UInt64(index.ssrc) << 16 | UInt64(roc >> 16)) ^ saltHigh).bigEndian, as: UInt64.self)
        iv.storeBytes(
            of: ((UInt32(roc & 0xFFFF) << 16 | UInt32(index.sequenceNumber)) ^ saltLow).bigEndian, toByteOffset: 8,
            as: UInt32.self)
        let cipherLength = length - headerLength - Self.tagLength
        let header = packet.assumingMemoryBound(to: UInt8.self)
        let body = header + headerLength
        var written: Int32 = 0
        let authentic =
            EVP_DecryptInit_ex(context, nil, nil, nil, iv.assumingMemoryBound(to: UInt8.self)) == 1
            && EVP_DecryptUpdate(context, nil, &written, header, Int32(headerLength)) == 1
            && EVP_DecryptUpdate(context, body, &written, body, Int32(cipherLength)) == 1
            && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), body + cipherLength) == 1
            && EVP_DecryptFinal_ex(context, body + cipherLength, &written) == 1
        if !authentic { body.initialize(repeating: 0, count: cipherLength) }
        return authentic
    }
}

/// AES_CM_128_HMAC_SHA1_80 for received RTP (RFC 3711 §4.1.1, §4.2.1): HMAC-SHA1 over the
/// packet and its rollover counter, its first 10 bytes compared in constant time with the
/// tag, and only then AES-128 in counter mode over the payload.
final class SRTPCMCipher {
    static let tagLength = 10

    private let counterMode: OpaquePointer
    /// The authentication key's HMAC-SHA1 states (CMeetKitCrypto: OpenSSL 3.0's MAC and
    /// digest contexts allocate on every restart, twice per packet).
    private let mac: OpaquePointer
    /// The session salt (14 bytes) as the top of a counter block, in two big-endian words.
    private let saltHigh: UInt64
    private let saltLow: UInt64
    /// The counter block of the packet at hand (16 bytes), then its HMAC (20), then its
    /// rollover counter (4): reused.
    private let scratch: UnsafeMutableRawPointer

    init(key: [UInt8], salt: [UInt8], authKey: [UInt8]) throws(SRTPError) {
        guard let counterMode = EVP_CIPHER_CTX_new() else { throw .setup("EVP_CIPHER_CTX_new") }
        guard EVP_DecryptInit_ex(counterMode, EVP_aes_128_ctr(), nil, key, nil) == 1,
            let mac = mk_hmac_sha1_new(authKey, authKey.count)
        else {
            EVP_CIPHER_CTX_free(counterMode)
            throw .setup("AES-CM keys")
        }
        self.counterMode = counterMode
        self.mac = mac
        let padded = salt + [0, 0]
        saltHigh = UInt64(be32(padded, 0)) << 32 | UInt64(be32(padded, 4))
        saltLow = UInt64(be32(padded, 8)) << 32 | UInt64(be32(padded, 12))
        scratch = UnsafeMutableRawPointer.allocate(byteCount: 40, alignment: 8)
    }

    deinit {
        EVP_CIPHER_CTX_free(counterMode)
        mk_hmac_sha1_free(mac)
        scratch.deallocate()
    }

    /// Whether the packet is authentic; if so its payload is now clear (a forged one is
    /// never decrypted).
    func open(_ packet: UnsafeMutableRawPointer, headerLength: Int, length: Int, index: SRTPPacketIndex) -> Bool {
        let authenticated = length - Self.tagLength
        let bytes = packet.assumingMemoryBound(to: UInt8.self)
        let digest = (scratch + 16).assumingMemoryBound(to: UInt8.self)
        let roc = scratch + 36
        roc.storeBytes(of: index.rolloverCounter.bigEndian, as: UInt32.self)
        // The tag: HMAC-SHA1(auth key, packet up to the tag || ROC), first 10 bytes.
        mk_hmac_sha1_digest(mac, bytes, authenticated, roc.assumingMemoryBound(to: UInt8.self), digest)
        guard CRYPTO_memcmp(digest, bytes + authenticated, Self.tagLength) == 0 else { return false }
        // IV = salt·2^16 XOR SSRC·2^64 XOR index·2^16 (RFC 3711 §4.1.1).
        let packetIndex = UInt64(index.rolloverCounter) << 16 | UInt64(index.sequenceNumber)
        scratch.storeBytes(of: (saltHigh ^ UInt64(index.ssrc)).bigEndian, as: UInt64.self)
        scratch.storeBytes(of: (saltLow ^ packetIndex << 16).bigEndian, toByteOffset: 8, as: UInt64.self)
        let body = bytes + headerLength
        var written: Int32 = 0
        return EVP_DecryptInit_ex(counterMode, nil, nil, nil, scratch.assumingMemoryBound(to: UInt8.self)) == 1
            && EVP_DecryptUpdate(counterMode, body, &written, body, Int32(authenticated - headerLength)) == 1
    }
}
