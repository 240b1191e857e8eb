import MeetKitTestSupport
import Testing

@testable import MeetKitDTLS
@testable import Transport

/// MeetKit's own SRTP receiver (OpenSSL) against libsrtp's inbound context, fed the
/// same datagrams: libsrtp protects (it stays the sender), and each datagram delivered —
/// reordered, duplicated, very late, tampered with, cut short — must get the same answer
/// from both: the same clear bytes, or the same refusal.
@Suite("SRTP receiver against libsrtp")
struct SRTPReceiverTests {
    /// A sender and the two receivers of its packets (one fixed-key association of `profile`).
    static func sessions(_ profile: SRTPProfile, seed: UInt64) throws -> (
        sender: SRTPSession, own: SRTPSession, libsrtp: SRTPSession
    ) {
        var rng = SplitMix64(seed: seed)
        let key = (0..<profile.keyLength).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let salt = (0..<profile.saltLength).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let keys = SRTPKeyingMaterial(
            profile: profile, localKey: key, localSalt: salt, remoteKey: key, remoteSalt: salt)
        return (
            try SRTPSession(keys: keys), try SRTPSession(keys: keys),
            try SRTPSession(keys: keys, libsrtpReceivesRTP: true)
        )
    }

    /// One clear RTP packet of stream `ssrc`: sometimes with CSRCs, header extensions
    /// (one- or two-byte form) or padding, a payload of 0–300 bytes.
    static func clearPacket(seq: UInt16, ssrc: UInt32, rng: inout SplitMix64) -> [UInt8] {
        var header = RTPHeader(
            payloadType: 111, sequenceNumber: seq, timestamp: UInt32(seq) &* 960, ssrc: ssrc,
            marker: rng.next() % 5 == 0)
        if rng.next() % 4 == 0 {
            header.csrcs = (0..<Int(rng.next() % 4)).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
        }
        switch rng.next() % 4 {
        case 0: header.setExtension(id: 1, [UInt8(rng.next() % 128)])
        case 1: header.setExtension(id: 200, [UInt8](repeating: 7, count: Int(rng.next() % 20)))
        default: break
        }
        let payload = (0..<Int(rng.next() % 301)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let padding = rng.next() % 6 == 0 ? Int(rng.next() % 8) + 1 : 0
        return RTPPacket(header: header, payload: payload[...], paddingLength: padding).serialized()
    }

    /// The answer of one receiver to one datagram.
    enum Outcome: Equatable {
        case clear([UInt8])
        case refused(SRTPError)
    }

    static func outcome(_ session: SRTPSession, _ datagram: [UInt8]) -> Outcome {
        var buffer = datagram
        do {
            try session.unprotectRTP(inPlace: &buffer)
            return .clear(buffer)
        } catch {
            return .refused(error)
        }
    }

    @Test(arguments: SRTPProfile.allCases, [1, 2, 3] as [UInt64])
    func decidesAsLibsrtpDoesPacketByPacket(profile: SRTPProfile, seed: UInt64) throws {
        let (sender, own, libsrtp) = try Self.sessions(profile, seed: seed)
        var rng = SplitMix64(seed: seed &* 977)
        // Three streams; one starts just before its sequence number wraps, one in the
        // upper half (the first packets' rollover counter is 0 either way).
        let starts: [UInt32: UInt16] = [0x1111_1111: 65_400, 0x2222_2222: 40_000, 0x3333_3333: 5]
        var next = starts
        var sent: [[UInt8]] = []
        for _ in 0..<3_000 {
            let ssrc = [UInt32](starts.keys).sorted()[Int(rng.next() % 3)]
            let seq = next[ssrc]!
            // Now and then a stream skips ahead (losses, or a jump beyond the window).
            next[ssrc] = seq &+ (rng.next() % 50 == 0 ? UInt16(rng.next() % 2_000) + 1 : 1)
            sent.append(try sender.protectRTP(Self.clearPacket(seq: seq, ssrc: ssrc, rng: &rng)))
        }
        // Delivery: mostly in order, with swaps nearby, duplicates, packets held back by
        // up to 1 500 places (some beyond the replay window), tampered bytes and cut tails.
        var delivered: [[UInt8]] = []
        var held: [(due: Int, datagram: [UInt8])] = []
        for (i, datagram) in sent.enumerated() {
            switch rng.next() % 20 {
            case 0: held.append((i + Int(rng.next() % 1_500), datagram))
            case 1: delivered += [datagram, datagram]
            case 2:
                var forged = datagram
                forged[Int(rng.next() % UInt64(forged.count))] ^= UInt8(1 << (rng.next() % 8))
                delivered += [forged, datagram]
            case 3: delivered += [Array(datagram.prefix(Int(rng.next() % UInt64(datagram.count)))), datagram]
            case 4 where !delivered.isEmpty: delivered.insert(datagram, at: delivered.count - 1)
            default: delivered.append(datagram)
            }
            delivered += held.filter { $0.due <= i }.map(\.datagram)
            held.removeAll { $0.due <= i }
        }
        delivered += held.map(\.datagram)

        var accepted = 0
        for datagram in delivered {
            let mine = Self.outcome(own, datagram)
            var reference = Self.outcome(libsrtp, datagram)
            // libsrtp reports a packet too short for its tag as a cipher failure; both refuse it.
            if case .refused(.library) = reference { reference = .refused(.malformed) }
            #expect(mine == reference, "datagram of \(datagram.count) bytes")
            if case .clear = mine { accepted += 1 }
        }
        #expect(own.statistics == libsrtp.statistics)
        #expect(own.statistics.replays > 50 && own.statistics.authenticationFailures > 50)
        #expect(accepted > 2_500, "most packets are authentic and fresh")
    }

    @Test(arguments: SRTPProfile.allCases)
    func refusedPacketsLeaveNoUnauthenticatedPlaintext(profile: SRTPProfile) throws {
        let (sender, own, _) = try Self.sessions(profile, seed: 9)
        let clear = rtpPacket(seq: 10, payload: [UInt8](repeating: 0x5A, count: 64))
        var forged = try sender.protectRTP(clear)
        forged[forged.count - 1] ^= 0x80  // the tag
        let ciphertext = Array(forged[12..<76])
        #expect(throws: SRTPError.authenticationFailed) { try own.unprotectRTP(inPlace: &forged) }
        if profile == .aeadAES128GCM {
            #expect(forged[12..<76].allSatisfy { $0 == 0 }, "the payload is zeroed, not left decrypted")
        } else {
            #expect(Array(forged[12..<76]) == ciphertext, "the tag is checked before anything is decrypted")
        }
        // The forgery changed nothing: the genuine packet is still fresh.
        var genuine = try sender.protectRTP(clear)
        genuine = try own.unprotectRTP(genuine)
        #expect(genuine == clear)
    }

    @Test(arguments: SRTPProfile.allCases)
    func replayWindowEdges(profile: SRTPProfile) throws {
        let (sender, own, _) = try Self.sessions(profile, seed: 10)
        var wire: [UInt16: [UInt8]] = [:]
        for seq in UInt16(0)...2_000 { wire[seq] = try sender.protectRTP(rtpPacket(seq: seq)) }
        _ = try own.unprotectRTP(wire[0]!)
        _ = try own.unprotectRTP(wire[1_500]!)
        // 1 023 behind the highest is inside the window, 1 024 behind is too old.
        #expect(try own.unprotectRTP(wire[477]!) == rtpPacket(seq: 477))
        #expect(throws: SRTPError.replayed) { try own.unprotectRTP(wire[476]!) }
        #expect(throws: SRTPError.replayed) { try own.unprotectRTP(wire[477]!) }
        // Skipped indices are not marked: the window slid over them without taking them.
        #expect(try own.unprotectRTP(wire[1_499]!) == rtpPacket(seq: 1_499))
        _ = try own.unprotectRTP(wire[2_000]!)
        #expect(try own.unprotectRTP(wire[1_000]!) == rtpPacket(seq: 1_000))
        #expect(own.statistics.replays == 2 && own.statistics.unprotected == 6)
    }

    @Test(arguments: SRTPProfile.allCases)
    func latePacketsFromBeforeTheWrapKeepTheirRolloverCounter(profile: SRTPProfile) throws {
        let (sender, own, libsrtp) = try Self.sessions(profile, seed: 13)
        var wire: [UInt16: [UInt8]] = [:]
        for seq in (UInt16(65_530)...65_535).map({ $0 }) + (0...5) {
            wire[seq] = try sender.protectRTP(rtpPacket(seq: seq))
        }
        // After the wrap (rollover counter 1), packets sent before it (counter 0) arrive.
        let order: [UInt16] = [65_530, 0, 1, 2, 3, 4, 5, 65_531, 65_535, 65_533, 0, 65_532]
        for seq in order {
            #expect(Self.outcome(own, wire[seq]!) == Self.outcome(libsrtp, wire[seq]!), "seq \(seq)")
        }
        #expect(own.statistics.unprotected == 11 && own.statistics.replays == 1)
    }

    @Test func sessionKeysAreDerivedAsRFC3711Says() throws {
        // RFC 3711 Appendix B.3: the AES-CM PRF with a 112-bit master salt. A 12-byte salt
        // sits at the front of the same 14-byte field (as libsrtp places it); the test
        // above shows libsrtp agrees. This pins the PRF itself to the RFC's vectors.
        let masterKey = hex("E1F97A0D3E018BE0D64FA32C06DE4139")
        let masterSalt = hex("0EC675AD498AFEEBB6960B3AABE6")
        let key = try SRTPReceiver.derive(masterKey: masterKey, masterSalt: masterSalt, label: 0x00, length: 16)
        #expect(key == hex("C61E7A93744F39EE10734AFE3FF7A087"))
        let salt = try SRTPReceiver.derive(masterKey: masterKey, masterSalt: masterSalt, label: 0x02, length: 14)
        #expect(salt == hex("30CBBC08863D8C85D49DB34A9AE1"))
        // 20 bytes: two blocks of the key stream.
        let authKey = try SRTPReceiver.derive(masterKey: masterKey, masterSalt: masterSalt, label: 0x01, length: 20)
        #expect(authKey == hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"))
    }

    @Test(arguments: SRTPProfile.allCases)
    func hostileDatagramsAreRefusedWithoutHarm(profile: SRTPProfile) throws {
        let (_, own, libsrtp) = try Self.sessions(profile, seed: 11)
        var rng = SplitMix64(seed: 12)
        for _ in 0..<5_000 {
            var bytes = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if !bytes.isEmpty { bytes[0] = 0x80 | (bytes[0] & 0x3F) }
            let mine = Self.outcome(own, bytes)
            guard case .refused(let error) = mine else {
                Issue.record("a random datagram was accepted")
                continue
            }
            if case .refused(let reference) = Self.outcome(libsrtp, bytes), reference != .library(code: reference.code)
            {
                #expect(error == reference)
            }
        }
        #expect(own.statistics.unprotected == 0)
    }
}

extension SRTPError {
    /// libsrtp's status code of a `.library` error, 0 for the others.
    fileprivate var code: Int32 {
        if case .library(let code) = self { return code }
        return 0
    }
}
