import COpenSSL

/// The receiving side of SRTP for RTP packets (RFC 3711), on OpenSSL: the session keys
/// derived from the master key and salt (§4.3.1, the AES-CM PRF), the packet index
/// estimated per SSRC (§3.3.1), a replay window of 1024 packets per SSRC (§3.3.2), then the
/// profile's cipher — AEAD_AES_128_GCM (RFC 7714: the 12-byte IV of §8.1, the header
/// authenticated as associated data) or AES_CM_128_HMAC_SHA1_80 (HMAC-SHA1 over the packet
/// and the rollover counter, checked before AES counter mode decrypts).
///
/// It decides as libsrtp's inbound context does — the same index guess, the same window,
/// state changed only by an authentic packet (tests compare the two packet by packet) — at
/// a fraction of the cost of Debian's libsrtp2, whose ciphers go through NSS with 5
/// (AES-GCM) or 14 (AES-CM) allocations per packet. It allocates nothing per packet once a
/// stream is known. Not thread-safe: one owner (``SRTPSession``).
final class SRTPReceiver {
    /// Packets of the replay window (as SRTPSession configures libsrtp).
    static let windowSize = 1024

    /// What one SSRC's packets have established: the highest packet index accepted (ROC
    /// and sequence number, 48 bits) and which of the last 1024 indices were accepted (bit
    /// `index % 1024` of a ring).
    struct Stream {
        var highest: UInt64
        var seen: [UInt64]

        init(first index: UInt64) {
            highest = index
            seen = [UInt64](repeating: 0, count: SRTPReceiver.windowSize / 64)
            mark(index)
        }

        /// The index a sequence number most likely stands for (RFC 3711 §3.3.1, the guess
        /// libsrtp makes): its rollover counter and its distance from `highest` (positive
        /// for a newer packet).
        func estimate(_ sequenceNumber: UInt16) -> (rolloverCounter: UInt32, delta: Int) {
            let roc = UInt32(truncatingIfNeeded: highest >> 16)
            let local = Int(UInt16(truncatingIfNeeded: highest))
            let seq = Int(sequenceNumber)
            if local < 32_768 {
                if seq - local > 32_768 { return (roc &- 1, seq - local - 65_536) }
            } else if local - 32_768 > seq {
                return (roc &+ 1, seq - local + 65_536)
            }
            return (roc, seq - local)
        }

        /// Whether the packet `delta` away from the highest may be accepted: newer, or
        /// inside the window and not seen yet.
        func fresh(_ delta: Int) -> Bool {
            if delta > 0 { return true }
            guard -delta < SRTPReceiver.windowSize else { return false }
            return !isMarked(highest &+ UInt64(bitPattern: Int64(delta)))
        }

        /// Records an accepted packet `delta` away from the highest.
        mutating func accept(_ delta: Int) {
            guard delta > 0 else {
                mark(highest &+ UInt64(bitPattern: Int64(delta)))
                return
            }
            if delta >= SRTPReceiver.windowSize {
                for i in seen.indices { seen[i] = 0 }
            } else {
                // The indices skipped over leave the window's old meaning behind.
                for step in 1..<delta { unmark(highest &+ UInt64(step)) }
            }
            highest &+= UInt64(delta)
            mark(highest)
        }

        private func isMarked(_ index: UInt64) -> Bool {
            let bit = Int(index & UInt64(SRTPReceiver.windowSize - 1))
            return seen[bit >> 6] & (1 << UInt64(bit & 63)) != 0
        }

        private mutating func mark(_ index: UInt64) {
            let bit = Int(index & UInt64(SRTPReceiver.windowSize - 1))
            seen[bit >> 6] |= 1 << UInt64(bit & 63)
        }

        private mutating func unmark(_ index: UInt64) {
            let bit = Int(index & UInt64(SRTPReceiver.windowSize - 1))
            seen[bit >> 6] &= ~(1 << UInt64(bit & 63))
        }
    }

    /// The profile's cipher, keyed with the session keys.
    private enum Cipher {
        case gcm(SRTPGCMCipher)
        case cm(SRTPCMCipher)
    }
    private let cipher: Cipher
    /// Bytes of the authentication tag after the payload.
    let tagLength: Int
    /// Per SSRC, what its authentic packets established.
    private(set) var streams: [UInt32: Stream] = [:]

    /// A receiver of `profile` for the sender whose master key is `masterKey` and master
    /// salt `masterSalt` (16 and 12 bytes for AES-GCM, 16 and 14 for AES-CM).
    init(profile: SRTPProfile, masterKey: [UInt8], masterSalt: [UInt8]) throws(SRTPError) {
        guard masterKey.count == profile.keyLength, masterSalt.count == profile.saltLength else {
            throw .setup("master key or salt length")
        }
        func derive(_ label: UInt8, _ length: Int) throws(SRTPError) -> [UInt8] {
            try Self.derive(masterKey: masterKey, masterSalt: masterSalt, label: label, length: length)
        }
        switch profile {
        case .aeadAES128GCM:
            cipher = .gcm(try SRTPGCMCipher(key: try derive(0x00, 16), salt: try derive(0x02, 12)))
            tagLength = SRTPGCMCipher.tagLength
        case .aes128CMHMACSHA1_80:
            cipher = .cm(
                try SRTPCMCipher(key: try derive(0x00, 16), salt: try derive(0x02, 14), authKey: try derive(0x01, 20)))
            tagLength = SRTPCMCipher.tagLength
        }
    }

    /// A session key, salt or authentication key (RFC 3711 §4.3.1 with a key derivation
    /// rate of 0): the first `length` bytes (at most 32) of AES-CM keyed with the master
    /// key, its counter block the master salt (at the front of the 14-byte AES-CM salt, as
    /// libsrtp places a 12-byte one) with `label` at byte 7.
    static func derive(masterKey: [UInt8], masterSalt: [UInt8], label: UInt8, length: Int) throws(SRTPError)
        -> [UInt8]
    {
        var blocks = [UInt8](repeating: 0, count: 32)
        blocks.replaceSubrange(0..<masterSalt.count, with: masterSalt)
        blocks[7] ^= label
        blocks.replaceSubrange(16..<32, with: blocks[0..<16])
        blocks[31] = 1  // the second block's counter
        var out = [UInt8](repeating: 0, count: 48)
        var written: Int32 = 0
        guard let context = EVP_CIPHER_CTX_new() else { throw .setup("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex(context, EVP_aes_128_ecb(), nil, masterKey, nil) == 1,
            EVP_CIPHER_CTX_set_padding(context, 0) == 1,
            EVP_EncryptUpdate(context, &out, &written, blocks, 32) == 1, written == 32
        else { throw .setup("AES key derivation") }
        return Array(out[0..<length])
    }

    /// Verifies and decrypts the SRTP packet of `length` bytes at `packet` in place and
    /// returns the clear packet's length (the tag dropped). A refused packet changes no
    /// state and leaves no unauthenticated plaintext behind.
    /// - Throws: ``SRTPError/malformed`` (not RTP, or shorter than its header and tag say),
    ///   ``SRTPError/replayed`` (seen, or older than the window),
    ///   ``SRTPError/authenticationFailed``.
    func unprotect(_ packet: UnsafeMutableRawPointer, length: Int) throws(SRTPError) -> Int {
        guard length >= 12 + tagLength else { throw .malformed }
        let first = packet.load(as: UInt8.self)
        guard first >> 6 == 2 else { throw .malformed }
        var headerLength = 12 + 4 * Int(first & 0x0F)
        if first & 0x10 != 0 {
            guard length >= headerLength + 4 else { throw .malformed }
            let words = UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: headerLength + 2, as: UInt16.self))
            headerLength += 4 + 4 * Int(words)
        }
        guard length - headerLength - tagLength >= 0 else { throw .malformed }
        let sequenceNumber = UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        let ssrc = UInt32(bigEndian: packet.loadUnaligned(fromByteOffset: 8, as: UInt32.self))

        // A stream's first packet has rollover counter 0 and sets the stream up (libsrtp's
        // provisional stream); later ones are placed against what the stream established.
        let known = streams.index(forKey: ssrc)
        let roc: UInt32
        let delta: Int
        if let known {
            (roc, delta) = streams.values[known].estimate(sequenceNumber)
            guard streams.values[known].fresh(delta) else { throw .replayed }
        } else {
            (roc, delta) = (0, 0)
        }
        let packetIndex = SRTPPacketIndex(ssrc: ssrc, rolloverCounter: roc, sequenceNumber: sequenceNumber)
        let authentic =
            switch cipher {
            case .gcm(let gcm): gcm.open(packet, headerLength: headerLength, length: length, index: packetIndex)
            case .cm(let cm): cm.open(packet, headerLength: headerLength, length: length, index: packetIndex)
            }
        guard authentic else { throw .authenticationFailed }
        if let known {
            streams.values[known].accept(delta)
        } else {
            streams[ssrc] = Stream(first: UInt64(sequenceNumber))
        }
        return length - tagLength
    }
}

/// What a packet's IV is made of.
struct SRTPPacketIndex {
    var ssrc: UInt32
    var rolloverCounter: UInt32
    var sequenceNumber: UInt16
}
