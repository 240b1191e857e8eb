import MeetKitTestSupport
import Testing

@testable import Transport

/// A minimal RTP packet (RFC 3550 §5.1): V=2, payload type, sequence, timestamp, SSRC.
func rtpPacket(seq: UInt16, ssrc: UInt32 = 0x1234_5678, payload: [UInt8] = Array(repeating: 0xAB, count: 160))
    -> [UInt8]
{
    [0x80, 111, UInt8(seq >> 8), UInt8(seq & 0xFF), 0, 0, 0x03, 0xC0]
        + [UInt8(ssrc >> 24), UInt8((ssrc >> 16) & 0xFF), UInt8((ssrc >> 8) & 0xFF), UInt8(ssrc & 0xFF)] + payload
}

@Suite("SRTP through libsrtp2")
struct SRTPTests {
    /// Mirrored sessions from a real DTLS handshake's keys.
    static func sessions(_ profile: SRTPProfile) throws -> (SRTPSession, SRTPSession) {
        var pair = try DTLSPair(clientProfiles: [profile], serverProfiles: [profile])
        pair.run()
        let c = try #require(pair.clientKeys)
        let s = try #require(pair.serverKeys)
        return (try SRTPSession(keys: c), try SRTPSession(keys: s))
    }

    @Test(arguments: SRTPProfile.allCases)
    func roundTripAcrossSequenceRollover(profile: SRTPProfile) throws {
        let (alice, bob) = try Self.sessions(profile)
        var seq: UInt16 = 65_500
        for _ in 0..<100 {
            let clear = rtpPacket(seq: seq)
            let wire = try alice.protectRTP(clear)
            #expect(wire.count == clear.count + (profile == .aeadAES128GCM ? 16 : 10))
            #expect(Array(wire[0..<12]) == Array(clear[0..<12]), "the header stays in the clear")
            #expect(Array(wire[12..<172]) != Array(clear[12..<172]), "the payload is encrypted")
            #expect(try bob.unprotectRTP(wire) == clear)
            seq &+= 1
        }
        #expect(bob.statistics.unprotected == 100)
    }

    @Test(arguments: SRTPProfile.allCases)
    func rtcpRoundTrip(profile: SRTPProfile) throws {
        let (alice, bob) = try Self.sessions(profile)
        // An RTCP receiver report with no blocks: V=2, PT=201, length 1, SSRC.
        let rr: [UInt8] = [0x80, 201, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF]
        let wire = try bob.protectRTCP(rr)
        #expect(try alice.unprotectRTCP(wire) == rr)
    }

    @Test func forgedReplayedAndGarbagePacketsAreRefusedAndCounted() throws {
        let (alice, bob) = try Self.sessions(.aeadAES128GCM)
        let wire = try alice.protectRTP(rtpPacket(seq: 7))
        _ = try bob.unprotectRTP(wire)
        #expect(throws: SRTPError.replayed) { try bob.unprotectRTP(wire) }
        var tampered = try alice.protectRTP(rtpPacket(seq: 8))
        tampered[20] ^= 0x01
        #expect(throws: SRTPError.authenticationFailed) { try bob.unprotectRTP(tampered) }
        #expect(throws: SRTPError.malformed) { try bob.unprotectRTP([0x80, 1, 2]) }
        #expect(throws: SRTPError.malformed) { try bob.unprotectRTP([UInt8](repeating: 0x00, count: 40)) }
        let (_, stranger) = try Self.sessions(.aeadAES128GCM)
        #expect(throws: SRTPError.authenticationFailed) {
            try stranger.unprotectRTP(try alice.protectRTP(rtpPacket(seq: 9)))
        }
        var rng = SplitMix64(seed: 4)
        for _ in 0..<2000 {
            let bytes = [0x80] + (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? bob.unprotectRTP(bytes)
            _ = try? bob.unprotectRTCP(bytes)
        }
        let stats = bob.statistics
        #expect(stats.replays == 1 && stats.authenticationFailures >= 1 && stats.malformed >= 2)
        #expect(stats.unprotected == 1)
    }
}

@Suite("SRTP in place")
struct SRTPInPlaceTests {
    @Test func inPlaceMatchesCopying() throws {
        let (alice, bob) = try SRTPTests.sessions(.aeadAES128GCM)
        let clear = rtpPacket(seq: 1)
        var wire = try alice.protectRTP(clear)
        try bob.unprotectRTP(inPlace: &wire)
        #expect(wire == clear)
        var replay = try alice.protectRTP(rtpPacket(seq: 2))
        let copy = replay
        try bob.unprotectRTP(inPlace: &replay)
        var again = copy
        #expect(throws: SRTPError.replayed) { try bob.unprotectRTP(inPlace: &again) }
        var short: [UInt8] = [0x80, 1]
        #expect(throws: SRTPError.malformed) { try bob.unprotectRTP(inPlace: &short) }
    }
}
