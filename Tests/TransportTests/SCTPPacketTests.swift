import MeetKitTestSupport
import Testing

@testable import MeetKitSCTP

/// The SCTP packet codec (RFC 9260 §3): CRC32c, every chunk kind both ways, and hostile
/// bytes.
@Suite("SCTP packets")
struct SCTPPacketTests {
    /// RFC 3720 Appendix B.4's CRC32c examples, and the usual check value of "123456789".
    @Test func crc32cVectors() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        // Eight bytes at a time and one at a time agree at every length and alignment.
        var random = SplitMix64(seed: 1)
        let bytes = (0..<100).map { _ in UInt8.random(in: 0...255, using: &random) }
        for start in 0..<9 {
            for end in start...bytes.count {
                let slice = Array(bytes[start..<end])
                var slow = CRC32C.initial
                for b in slice { slow = withUnsafeBytes(of: b) { CRC32C.update(slow, $0) } }
                #expect(CRC32C.checksum(slice) == CRC32C.finish(slow))
            }
        }
    }

    static let everyKind: [SCTPChunk] = [
        .initiation(
            SCTPInitChunk(
                initiateTag: 0x1234_5678, advertisedReceiverWindow: 1 << 20, outboundStreams: 1024,
                inboundStreams: 65535, initialTSN: 0xFFFF_FFF0,
                parameters: [
                    SCTPParameter(.forwardTSNSupported),
                    SCTPParameter(.supportedExtensions, value: [SCTPChunk.forwardTSNType, SCTPChunk.reconfigType]),
                ])),
        .initiationAck(
            SCTPInitChunk(
                initiateTag: 7, advertisedReceiverWindow: 65536, outboundStreams: 16, inboundStreams: 16,
                initialTSN: 1, parameters: [SCTPParameter(.stateCookie, value: [1, 2, 3, 4, 5])])),
        .cookieEcho(cookie: [1, 2, 3, 4, 5]),
        .cookieAck,
        .data(
            SCTPDataChunk(
                tsn: 42, streamIdentifier: 3, streamSequenceNumber: 9, payloadProtocolIdentifier: 51,
                unordered: true, beginning: true, ending: false, immediate: true, userData: [0x68, 0x69, 0x21][...])),
        .sack(
            SCTPSackChunk(
                cumulativeTSNAck: 41, advertisedReceiverWindow: 9000,
                gapBlocks: [.init(start: 2, end: 3), .init(start: 5, end: 5)], duplicateTSNs: [40])),
        .heartbeat(info: [9, 8, 7]),
        .heartbeatAck(info: [9, 8, 7]),
        .forwardTSN(
            SCTPForwardTSNChunk(newCumulativeTSN: 50, streams: [.init(streamIdentifier: 3, streamSequenceNumber: 9)])),
        .reconfig([
            .outgoingResetRequest(
                requestSequenceNumber: 1, responseSequenceNumber: 0, senderLastTSN: 49, streams: [3, 5]),
            .response(responseSequenceNumber: 7, result: .performed),
        ]),
        .reconfig([.incomingResetRequest(requestSequenceNumber: 2, streams: [])]),
        .shutdown(cumulativeTSNAck: 50),
        .shutdownAck,
        .shutdownComplete(reflected: true),
        .error(causes: [SCTPErrorCause(code: SCTPErrorCause.unrecognizedChunkType, information: [0x77, 0, 0, 4])]),
        .abort(
            reflected: false,
            causes: [SCTPErrorCause(code: SCTPErrorCause.userInitiatedAbort, information: Array("bye".utf8))]),
        .unknown(type: 0xC7, flags: 3, value: [1, 2, 3, 4, 5, 6]),
    ]

    @Test func everyChunkKindRoundTrips() throws {
        for chunk in Self.everyKind {
            let packet = SCTPPacket(
                sourcePort: 5000, destinationPort: 5001, verificationTag: 0xDEAD_BEEF, chunks: [chunk])
            let bytes = packet.serialized()
            #expect(bytes.count % 4 == 0, "chunks are padded to four bytes")
            let parsed = try SCTPPacket(parsing: bytes)
            #expect(parsed == packet, "\(chunk)")
            #expect(parsed.chunks.first?.type == chunk.type)
        }
        // All in one packet (bundling, RFC 9260 §6.10).
        let all = SCTPPacket(sourcePort: 5000, destinationPort: 5000, verificationTag: 1, chunks: Self.everyKind)
        #expect(try SCTPPacket(parsing: all.serialized()) == all)
    }

    /// Field positions and the checksum's byte order, written out by hand from RFC 9260
    /// §3.1, §3.3.1 and Appendix A (the CRC32c least significant byte first).
    @Test func dataChunkLayout() throws {
        let chunk = SCTPDataChunk(
            tsn: 0x0102_0304, streamIdentifier: 0x0506, streamSequenceNumber: 0x0708,
            payloadProtocolIdentifier: 0x0909_0A0B, unordered: false, beginning: true, ending: true,
            userData: [0xAA][...])
        let bytes = SCTPPacket(
            sourcePort: 5000, destinationPort: 5000, verificationTag: 0x1122_3344, chunks: [.data(chunk)]
        )
        .serialized()
        let header: [UInt8] = [0x13, 0x88, 0x13, 0x88, 0x11, 0x22, 0x33, 0x44]
        let body: [UInt8] = [
            0, 0x03, 0, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 0x0A, 0x0B, 0xAA, 0, 0, 0,
        ]
        #expect(Array(bytes[0..<8]) == header)
        #expect(Array(bytes[12...]) == body)
        let crc = CRC32C.checksum(header + [0, 0, 0, 0] + body)
        #expect(
            Array(bytes[8..<12]) == [
                UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24),
            ])
    }

    @Test func refusedWithTypedErrors() {
        let good = SCTPPacket(sourcePort: 1, destinationPort: 2, verificationTag: 3, chunks: [.cookieAck]).serialized()
        var corrupt = good
        corrupt[5] ^= 1
        do {
            _ = try SCTPPacket(parsing: corrupt)
            Issue.record("a flipped bit went through")
        } catch {
            guard case .badChecksum = error else {
                Issue.record("a flipped bit is a checksum error, not \(error)")
                return
            }
        }
        #expect(throws: SCTPError.truncated(needed: 12, available: 11)) {
            try SCTPPacket(parsing: Array(good.prefix(11)))
        }
        // Hand-made bodies with a valid checksum: a chunk length under 4, past the end, a
        // SACK announcing more gap blocks than it holds, DATA without user data.
        func packet(_ body: [UInt8]) -> [UInt8] {
            var bytes: [UInt8] = [0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0] + body
            SCTPPacket.stampChecksum(&bytes)
            return bytes
        }
        #expect(throws: SCTPError.malformed("chunk 11 of length 2")) { try SCTPPacket(parsing: packet([11, 0, 0, 2])) }
        #expect(throws: SCTPError.truncated(needed: 12 + 64, available: 16)) {
            try SCTPPacket(parsing: packet([11, 0, 0, 64]))
        }
        #expect(throws: SCTPError.truncated(needed: 12 + 4 * 0xFFFF, available: 12)) {
            try SCTPPacket(parsing: packet([3, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0, 0]))
        }
        #expect(throws: SCTPError.malformed("DATA chunk without user data")) {
            try SCTPPacket(parsing: packet([0, 3, 0, 16] + [UInt8](repeating: 0, count: 12)))
        }
        #expect(throws: SCTPError.malformed("a packet without chunks")) { try SCTPPacket(parsing: packet([])) }
    }

    /// Random bytes and mutations of valid packets, each with its checksum made right so
    /// that the chunk parsers see them: every one parses or throws ``SCTPError``.
    @Test func hostileBytesNeverTrap() {
        var random = SplitMix64(seed: 7)
        let valid = Self.everyKind.map {
            SCTPPacket(sourcePort: 5000, destinationPort: 5000, verificationTag: 9, chunks: [$0]).serialized()
        }
        var parsed = 0
        var refused = 0
        for i in 0..<20_000 {
            var bytes: [UInt8]
            if i % 4 == 0 {
                bytes = (0..<Int.random(in: 12...200, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            } else {
                bytes = valid[Int.random(in: 0..<valid.count, using: &random)]
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let at = Int.random(in: 12..<bytes.count, using: &random)
                    bytes[at] = UInt8.random(in: 0...255, using: &random)
                }
                if i % 3 == 0 { bytes.removeLast(Int.random(in: 0...(bytes.count - 12), using: &random)) }
            }
            SCTPPacket.stampChecksum(&bytes)
            do {
                _ = try SCTPPacket(parsing: bytes)
                parsed += 1
            } catch {
                refused += 1
            }
        }
        #expect(parsed > 100 && refused > 100, "both outcomes seen: \(parsed) parsed, \(refused) refused")
    }
}
