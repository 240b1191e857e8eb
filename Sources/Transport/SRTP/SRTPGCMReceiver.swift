import COpenSSL

/// The receiving side of SRTP for RTP packets protected with AEAD_AES_128_GCM (RFC 7714),
/// on OpenSSL's AES-GCM: the session key and salt derived from the master key and salt
/// (RFC 3711 §4.3.1, AES-CM PRF; RFC 7714 §11), the packet index estimated per SSRC
/// (RFC 3711 §3.3.1), a replay window of 1024 packets per SSRC (§3.3.2), the 12-byte IV of
/// RFC 7714 §8.1 and the RTP header (with CSRCs and extensions) authenticated as associated
/// data (§7.1).
///
/// It decides as libsrtp's inbound context does — the same index guess, the same window,
/// state changed only by an authentic packet (tests compare the two packet by packet) — at
/// about half the cost of Debian's libsrtp2, whose AES-GCM goes through NSS with five
/// allocations and a new cipher context per packet. It allocates nothing per packet once a
/// stream is known. Not thread-safe: one owner (``SRTPSession``).
final class SRTPGCMReceiver {
    /// Bytes of the authentication tag after the ciphertext.
    static let tagLength = 16
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
            seen = [UInt64](repeating: 0, count: SRTPGCMReceiver.windowSize / 64)
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
            guard -delta < SRTPGCMReceiver.windowSize else { return false }
            return !isMarked(highest &+ UInt64(bitPattern: Int64(delta)))
        }

        /// Records an accepted packet `delta` away from the highest.
        mutating func accept(_ delta: Int) {
            guard delta > 0 else {
                mark(highest &+ UInt64(bitPattern: Int64(delta)))
                return
            }
            if delta >= SRTPGCMReceiver.windowSize {
                for i in seen.indices { seen[i] = 0 }
            } else {
                // The indices skipped over leave the window's old meaning behind.
                for step in 1..<delta { unmark(highest &+ UInt64(step)) }
            }
            highest &+= UInt64(delta)
            mark(highest)
        }

        private func isMarked(_ index: UInt64) -> Bool {
            let bit = Int(index & UInt64(SRTPGCMReceiver.windowSize - 1))
            return seen[bit >> 6] & (1 << UInt64(bit & 63)) != 0
        }

        private mutating func mark(_ index: UInt64) {
            let bit = Int(index & UInt64(SRTPGCMReceiver.windowSize - 1))
            seen[bit >> 6] |= 1 << UInt64(bit & 63)
        }

        private mutating func unmark(_ index: UInt64) {
            let bit = Int(index & UInt64(SRTPGCMReceiver.windowSize - 1))
            seen[bit >> 6] &= ~(1 << UInt64(bit & 63))
        }
    }

    /// OpenSSL's AES-128-GCM context, keyed once with the session key.
    private let cipher: OpaquePointer
    /// The session salt (12 bytes) as two big-endian words, for the IV.
    private let saltHigh: UInt64
    private let saltLow: UInt32
    /// The IV of the packet at hand (12 bytes, reused).
    private let iv: UnsafeMutableRawPointer
    /// Per SSRC, what its authentic packets established.
    private(set) var streams: [UInt32: Stream] = [:]

    /// A receiver for the sender whose master key is `masterKey` (16 bytes) and master salt
    /// `masterSalt` (12 bytes).
    init(masterKey: [UInt8], masterSalt: [UInt8]) throws(SRTPError) {
        guard masterKey.count == 16, masterSalt.count == 12 else { throw .setup("AES-GCM master key or salt length") }
        let sessionKey = try Self.derive(masterKey: masterKey, masterSalt: masterSalt, label: 0x00, length: 16)
        let sessionSalt = try Self.derive(masterKey: masterKey, masterSalt: masterSalt, label: 0x02, length: 12)
        guard let cipher = EVP_CIPHER_CTX_new() else { throw .setup("EVP_CIPHER_CTX_new") }
        guard EVP_DecryptInit_ex(cipher, EVP_aes_128_gcm(), nil, sessionKey, nil) == 1 else {
            EVP_CIPHER_CTX_free(cipher)
            throw .setup("AES-GCM key")
        }
        self.cipher = cipher
        saltHigh = sessionSalt[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        saltLow = sessionSalt[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
        iv = UnsafeMutableRawPointer.allocate(byteCount: 12, alignment: 8)
    }

    deinit {
        EVP_CIPHER_CTX_free(cipher)
        iv.deallocate()
    }

    /// A session key or salt (RFC 3711 §4.3.1 with a key derivation rate of 0): the first
    /// `length` bytes of AES-CM keyed with the master key, its counter block the master salt
    /// (placed at the front of the 14-byte AES-CM salt, as libsrtp places a 12-byte one)
    /// with `label` at byte 7.
    static func derive(masterKey: [UInt8], masterSalt: [UInt8], label: UInt8, length: Int) throws(SRTPError)
        -> [UInt8]
    {
        var block = [UInt8](repeating: 0, count: 16)
        block.replaceSubrange(0..<masterSalt.count, with: masterSalt)
        block[7] ^= label
        var out = [UInt8](repeating: 0, count: 32)
        var written: Int32 = 0
        guard let context = EVP_CIPHER_CTX_new() else { throw .setup("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex(context, EVP_aes_128_ecb(), nil, masterKey, nil) == 1,
            EVP_CIPHER_CTX_set_padding(context, 0) == 1,
            EVP_EncryptUpdate(context, &out, &written, block, 16) == 1, written == 16
        else { throw .setup("AES key derivation") }
        return Array(out[0..<length])
    }

    /// Verifies and decrypts the SRTP packet of `length` bytes at `packet` in place and
    /// returns the clear packet's length (the tag dropped). A refused packet changes no
    /// state, and its payload is zeroed rather than left decrypted but unauthenticated.
    /// - Throws: ``SRTPError/malformed`` (not RTP, or shorter than its header and tag say),
    ///   ``SRTPError/replayed`` (seen, or older than the window),
    ///   ``SRTPError/authenticationFailed``.
    func unprotect(_ packet: UnsafeMutableRawPointer, length: Int) throws(SRTPError) -> Int {
        guard length >= 12 + Self.tagLength else { throw .malformed }
        let first = packet.load(as: UInt8.self)
        guard first >> 6 == 2 else { throw .malformed }
        var headerLength = 12 + 4 * Int(first & 0x0F)
        if first & 0x10 != 0 {
            guard length >= headerLength + 4 else { throw .malformed }
            let words = UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: headerLength + 2, as: UInt16.self))
            headerLength += 4 + 4 * Int(words)
        }
        let cipherLength = length - headerLength - Self.tagLength
        guard cipherLength >= 0 else { throw .malformed }
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

        // IV = (0x0000 || SSRC || ROC || SEQ) XOR salt (RFC 7714 §8.1).
        iv.storeBytes(of: ((UInt64(ssrc) << 16 | UInt64(roc >> 16)) ^ saltHigh).bigEndian, as: UInt64.self)
        iv.storeBytes(
            of: ((UInt32(roc & 0xFFFF) << 16 | UInt32(sequenceNumber)) ^ saltLow).bigEndian, toByteOffset: 8,
            as: UInt32.self)
        let body = packet + headerLength
        var written: Int32 = 0
        let authentic =
            EVP_DecryptInit_ex(cipher, nil, nil, nil, iv.assumingMemoryBound(to: UInt8.self)) == 1
            && EVP_DecryptUpdate(cipher, nil, &written, packet.assumingMemoryBound(to: UInt8.self), Int32(headerLength))
                == 1
            && EVP_DecryptUpdate(
                cipher, body.assumingMemoryBound(to: UInt8.self), &written, body.assumingMemoryBound(to: UInt8.self),
                Int32(cipherLength)) == 1
            && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), body + cipherLength) == 1
            && EVP_DecryptFinal_ex(cipher, (body + cipherLength).assumingMemoryBound(to: UInt8.self), &written) == 1
        guard authentic else {
            body.initializeMemory(as: UInt8.self, repeating: 0, count: cipherLength)
            throw .authenticationFailed
        }
        if let known {
            streams.values[known].accept(delta)
        } else {
            streams[ssrc] = Stream(first: UInt64(sequenceNumber))
        }
        return length - Self.tagLength
    }
}
