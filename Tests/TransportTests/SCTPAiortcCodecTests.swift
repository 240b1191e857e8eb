import Foundation
import MeetKitTestSupport
import Testing

@testable import MeetKitSCTP

/// MeetKit's SCTP packets read by aiortc's codec, and aiortc's read by MeetKit's: the same
/// bytes mean the same fields on both sides, checksum included
/// (`Scripts/interop/aiortc_sctp_codec.py`).
@Suite("SCTP codec against aiortc")
struct SCTPAiortcCodecTests {
    @Test func bothWays() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python, arguments: [InteropPeers.script("aiortc_sctp_codec.py")])
        defer { peer.terminate() }
        // MeetKit → aiortc: every kind aiortc knows, field by field.
        let data = SCTPDataChunk(
            tsn: 0xFFFF_FFFE, streamIdentifier: 3, streamSequenceNumber: 9, payloadProtocolIdentifier: 53,
            unordered: true, beginning: true, ending: false, userData: [1, 2, 3, 4, 5][...])
        let sack = SCTPSackChunk(
            cumulativeTSNAck: 41, advertisedReceiverWindow: 9000, gapBlocks: [.init(start: 2, end: 3)],
            duplicateTSNs: [40, 39])
        for (chunk, expected) in [
            (
                SCTPChunk.data(data),
                ["tsn": 0xFFFF_FFFE, "stream": 3, "ssn": 9, "ppid": 53, "flags": 0x06] as [String: Int]
            ),
            (.sack(sack), ["cum": 41, "rwnd": 9000]),
            (
                .forwardTSN(
                    SCTPForwardTSNChunk(
                        newCumulativeTSN: 77, streams: [.init(streamIdentifier: 3, streamSequenceNumber: 9)])),
                ["cum": 77]
            ),
            (.shutdown(cumulativeTSNAck: 12), ["cum": 12]),
            (
                .initiation(
                    SCTPInitChunk(
                        initiateTag: 5, advertisedReceiverWindow: 1 << 20, outboundStreams: 65535,
                        inboundStreams: 65535, initialTSN: 8, parameters: [SCTPParameter(.forwardTSNSupported)])),
                ["tag": 5, "rwnd": 1 << 20, "outbound": 65535, "tsn": 8]
            ),
        ] {
            let packet = SCTPPacket(sourcePort: 5000, destinationPort: 5001, verificationTag: 0xABCD, chunks: [chunk])
            try peer.writeJSON(["parse": hexString(packet.serialized())])
            let reply = try await peer.readJSON()
            #expect(reply["ok"] as? Bool == true, "aiortc refused \(chunk): \(reply)")
            #expect(reply["tag"] as? Int == 0xABCD)
            let parsed = try #require((reply["chunks"] as? [[String: Any]])?.first)
            #expect(parsed["type"] as? Int == Int(chunk.type))
            for (field, value) in expected { #expect(parsed[field] as? Int == value, "\(field) of \(chunk)") }
            if case .sack = chunk {
                #expect(parsed["gaps"] as? [[Int]] == [[2, 3]] && parsed["dups"] as? [Int] == [40, 39])
            }
            if case .data = chunk { #expect(parsed["data"] as? String == "0102030405") }
        }
        // A flipped bit: aiortc refuses the checksum too.
        var corrupt = SCTPPacket(sourcePort: 1, destinationPort: 2, verificationTag: 3, chunks: [.cookieAck])
            .serialized()
        corrupt[4] ^= 1
        try peer.writeJSON(["parse": hexString(corrupt)])
        #expect(try await peer.readJSON()["ok"] as? Bool == false)

        // aiortc → MeetKit.
        try peer.writeJSON(["emit": true])
        let packets = try #require(try await peer.readJSON()["packets"] as? [String]).map {
            try SCTPPacket(parsing: hex($0))
        }
        try #require(packets.count == 4)
        guard case .initiation(let i) = packets[0].chunks.first else { Issue.record("INIT: \(packets[0])"); return }
        #expect(i.initiateTag == 0x0102_0304 && i.initialTSN == 4_000_000_000 && i.outboundStreams == 65535)
        #expect(i.supports(chunkType: SCTPChunk.forwardTSNType) && i.supports(chunkType: SCTPChunk.reconfigType))
        #expect(
            packets[1].chunks == [
                .data(
                    SCTPDataChunk(
                        tsn: 7, streamIdentifier: 1, streamSequenceNumber: 2, payloadProtocolIdentifier: 51,
                        userData: Array("hello".utf8)[...]))
            ])
        #expect(
            packets[2].chunks == [
                .sack(
                    SCTPSackChunk(
                        cumulativeTSNAck: 100, advertisedReceiverWindow: 5000,
                        gapBlocks: [.init(start: 2, end: 3), .init(start: 6, end: 6)], duplicateTSNs: [99])),
                .forwardTSN(
                    SCTPForwardTSNChunk(
                        newCumulativeTSN: 200,
                        streams: [
                            .init(streamIdentifier: 1, streamSequenceNumber: 5),
                            .init(streamIdentifier: 3, streamSequenceNumber: 0),
                        ])),
            ])
        #expect(
            packets[3].chunks == [
                .reconfig([
                    .outgoingResetRequest(
                        requestSequenceNumber: 10, responseSequenceNumber: 9, senderLastTSN: 199, streams: [1, 3])
                ])
            ])
    }
}
