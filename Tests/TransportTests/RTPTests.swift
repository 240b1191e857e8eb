import Codec
import MeetKitTestSupport
import Testing

@testable import Transport

@Suite("RTP and RTCP packets")
struct RTPTests {
    @Test func rtpRoundTripWithOneByteExtensions() throws {
        var header = RTPHeader(payloadType: 111, sequenceNumber: 65535, timestamp: 0xDEAD_BEEF, ssrc: 42, marker: true)
        header.setAudioLevel(id: 1, voiceActivity: true, level: 30)
        header.setAbsSendTime(id: 2, 0x12_3456)
        header.setTransportSequenceNumber(id: 3, 777)
        header.setMid(id: 4, "0")
        header.csrcs = [7, 8]
        let packet = RTPPacket(header: header, payload: [1, 2, 3, 4, 5][...], paddingLength: 3)
        let bytes = packet.serialized()
        #expect(bytes[0] == 0xB2, "V=2, P, X, CC=2")
        let parsed = try RTPPacket(parsing: bytes)
        #expect(parsed.header.extensionProfile == 0xBEDE)
        #expect(parsed.header.audioLevel(id: 1)! == (true, 30))
        #expect(parsed.header.absSendTime(id: 2) == 0x12_3456)
        #expect(parsed.header.transportSequenceNumber(id: 3) == 777)
        #expect(parsed.header.mid(id: 4) == "0")
        #expect(parsed.header.csrcs == [7, 8] && parsed.header.marker && parsed.header.sequenceNumber == 65535)
        #expect(Array(parsed.payload) == [1, 2, 3, 4, 5] && parsed.paddingLength == 3)
        #expect(parsed.serialized() == bytes)
        #expect(
            parsed.payloadPacket
                == RTPPayloadPacket(
                    sequenceNumber: 65535, timestamp: 0xDEAD_BEEF, marker: true, payload: [1, 2, 3, 4, 5]))
    }

    @Test func twoByteExtensionsWhenNeeded() throws {
        var header = RTPHeader(payloadType: 96, sequenceNumber: 1, timestamp: 2, ssrc: 3)
        header.setMid(id: 20, "a-very-long-mid-value")  // ID above 14 and 21 bytes
        header.setExtension(id: 5, [])  // empty element: two-byte form only
        let parsed = try RTPPacket(parsing: RTPPacket(header: header, payload: [9][...]).serialized())
        #expect(parsed.header.extensionProfile == 0x1000)
        #expect(parsed.header.mid(id: 20) == "a-very-long-mid-value")
        #expect(parsed.header.extensionData(id: 5) == [])
    }

    @Test func malformedRTPIsATypedError() {
        #expect(throws: RTPError.truncated(needed: 12, available: 3)) { try RTPPacket(parsing: [0x80, 0, 0]) }
        #expect(throws: RTPError.badVersion(1)) { try RTPPacket(parsing: [UInt8](repeating: 0x40, count: 12)) }
        // CC=15 but no CSRCs.
        #expect(throws: RTPError.self) { try RTPPacket(parsing: [0x8F] + [UInt8](repeating: 0, count: 11)) }
        // Extension length beyond the packet.
        #expect(throws: RTPError.self) {
            try RTPPacket(parsing: [0x90] + [UInt8](repeating: 0, count: 11) + [0xBE, 0xDE, 0, 9])
        }
        // Padding larger than the payload.
        #expect(throws: RTPError.self) { try RTPPacket(parsing: [0xA0] + [UInt8](repeating: 0, count: 11) + [1, 200]) }
        var rng = SplitMix64(seed: 31)
        for _ in 0..<20_000 {
            let bytes =
                [0x80 | UInt8(rng.next() % 64)]
                + (0..<Int(rng.next() % 80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if let p = try? RTPPacket(parsing: bytes) { _ = p.serialized() }
            if let r = try? RTCPPacket.parseCompound(bytes) { _ = RTCPPacket.serializeCompound(r) }
        }
    }

    @Test func rtcpRoundTripOfEveryType() throws {
        let block = RTCPReportBlock(
            ssrc: 5, fractionLost: 25, cumulativeLost: -3, highestSequence: 70_000, jitter: 12,
            lastSenderReport: 0x1234_5678,
            delaySinceLastSenderReport: 65536)
        let feedback = TransportCCFeedback(
            senderSSRC: 1, mediaSSRC: 2, baseSequence: 65530, referenceTime: -5, feedbackCount: 9,
            deltas: [4, nil, 255, 256, -40, nil, nil, 0, 1000, 3])
        let packets: [RTCPPacket] = [
            .senderReport(
                ssrc: 1, ntpTimestamp: 0xE000_0000_8000_0000, rtpTimestamp: 960, packetCount: 50, octetCount: 5000,
                reports: [block]),
            .receiverReport(ssrc: 2, reports: [block, block]),
            .sourceDescription([(ssrc: 1, items: [(type: 1, text: "cname-abc")]), (ssrc: 9, items: [])]),
            .goodbye(ssrcs: [1, 2], reason: "left"),
            .nack(senderSSRC: 1, mediaSSRC: 2, lost: [100, 101, 116, 200]),
            .pictureLossIndication(senderSSRC: 1, mediaSSRC: 2),
            .fullIntraRequest(senderSSRC: 1, entries: [(ssrc: 2, sequence: 7)]),
            .remb(senderSSRC: 1, bitrate: 1_500_000, ssrcs: [2, 3]),
            .transportCC(feedback),
            .unknown(type: 204, count: 3, body: [1, 2, 3, 4]),
        ]
        let compound = RTCPPacket.serializeCompound(packets)
        let parsed = try RTCPPacket.parseCompound(compound)
        #expect(parsed.count == packets.count)
        for (a, b) in zip(parsed, packets) { #expect(a == b, "\(b)") }
        if case .nack(_, _, let lost) = parsed[4] { #expect(lost == [100, 101, 116, 200]) }
        if case .remb(_, let bitrate, let ssrcs) = parsed[7] {
            #expect(abs(Double(bitrate) - 1_500_000) / 1_500_000 < 0.001 && ssrcs == [2, 3])
        }
        if case .transportCC(let f) = parsed[8] { #expect(f == feedback) }
        if case .receiverReport(_, let reports) = parsed[1] { #expect(reports[0].cumulativeLost == -3) }
    }

    /// Byte layouts checked by hand against the RFCs.
    @Test func knownLayouts() throws {
        // PLI (RFC 4585 §6.3.1): V=2 FMT=1 PT=206 length=2.
        #expect(
            RTCPPacket.pictureLossIndication(senderSSRC: 1, mediaSSRC: 2).serialized() == [
                0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2,
            ])
        // NACK: PID 100 with BLP bit 0 (101) and bit 15 (116).
        let nack = RTCPPacket.nack(senderSSRC: 0, mediaSSRC: 0, lost: [100, 101, 116]).serialized()
        #expect(Array(nack.suffix(4)) == [0, 100, 0x80, 0x01])
        // transport-cc with a run-length chunk: 5 packets "received, small delta".
        let body: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 2, 0, 10, 0, 5, 0, 0, 1, 0] + [0x20, 0x05] + [4, 4, 4, 4, 4]
        var packet: [UInt8] = [0x8F, 205, 0, UInt8((4 + body.count + 1) / 4)] + body
        while packet.count % 4 != 0 { packet.append(0) }
        packet[3] = UInt8(packet.count / 4 - 1)
        let parsed = try RTCPPacket.parseCompound(packet)
        guard case .transportCC(let f)? = parsed.first else {
            Issue.record("not transport-cc: \(parsed)")
            return
        }
        #expect(f.baseSequence == 10 && f.referenceTime == 1 && f.deltas == [4, 4, 4, 4, 4])
    }

    @Test func malformedRTCPIsATypedError() {
        #expect(throws: RTPError.self) { try RTCPPacket.parseCompound([0x81, 201, 0, 9, 0, 0, 0, 1]) }
        #expect(throws: RTPError.self) { try RTCPPacket.parseCompound([0x41, 201, 0, 1, 0, 0, 0, 1]) }
        #expect(throws: RTPError.self) { try RTCPPacket.parseCompound([0x81, 200, 0, 1, 0, 0, 0, 1]) }  // SR too short
        #expect(throws: RTPError.self) {
            try RTCPPacket.parseCompound([0x8F, 205, 0, 4] + [UInt8](repeating: 0, count: 10) + [0, 40, 0, 0, 0, 0])
        }
    }
}

@Suite("NACK history and RTX")
struct RetransmissionTests {
    @Test func historyAnswersRecentSequenceNumbersOnly() {
        var history = RTPSendHistory(capacity: 100)  // rounded to 128
        for i in 0..<300 {
            let seq = UInt16(truncatingIfNeeded: 65_400 + i)
            history.store(
                RTPPacket(
                    header: RTPHeader(payloadType: 96, sequenceNumber: seq, timestamp: 0, ssrc: 1),
                    payload: [UInt8(i & 0xFF)][...]))
        }
        let last = UInt16(truncatingIfNeeded: 65_400 + 299)
        #expect(history.packet(sequenceNumber: last)?.payload.first == UInt8(299 & 0xFF))
        #expect(history.packet(sequenceNumber: last &- 127) != nil)
        #expect(history.packet(sequenceNumber: last &- 128) == nil, "overwritten")
    }

    @Test func rtxWrapsAndUnwraps() throws {
        var header = RTPHeader(payloadType: 96, sequenceNumber: 4242, timestamp: 90_000, ssrc: 0xAAAA, marker: true)
        header.setTransportSequenceNumber(id: 3, 17)
        let original = RTPPacket(header: header, payload: [1, 2, 3][...])
        var rtx = RTXStream(ssrc: 0xBBBB, payloadType: 97, firstSequenceNumber: 65535)
        let wrapped = rtx.wrap(original)
        #expect(
            wrapped.header.ssrc == 0xBBBB && wrapped.header.payloadType == 97 && wrapped.header.sequenceNumber == 65535)
        #expect(Array(wrapped.payload) == [0x10, 0x92, 1, 2, 3], "OSN 4242 then the payload")
        #expect(rtx.nextSequenceNumber == 0)
        let back = try RTXStream.unwrap(
            try RTPPacket(parsing: wrapped.serialized()), mediaSSRC: 0xAAAA, mediaPayloadType: 96)
        #expect(back.header.sequenceNumber == 4242 && Array(back.payload) == [1, 2, 3] && back.header.marker)
        #expect(throws: RTPError.self) {
            try RTXStream.unwrap(RTPPacket(header: header, payload: [9][...]), mediaSSRC: 1, mediaPayloadType: 96)
        }
    }
}
