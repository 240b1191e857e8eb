import Foundation
import LiveKitProtocol
import MeetKitTestSupport
import SwiftProtobuf
import Testing

@testable import Signaling

/// How LiveKit's data packets become room events, fed straight to the adapter: legacy chat
/// and transcription packets, text streams whole, chunked out of order or too large, and
/// bytes that are not a packet.
@Suite("LiveKit data packets")
struct LiveKitDataTests {
    /// The events `packets` produce (the adapter is not connected: decoding only).
    func events(of packets: [[UInt8]], label: String = "_reliable") async -> [RoomSignalingEvent] {
        let signaling = LiveKitRoomSignaling(url: "ws://127.0.0.1:9", token: "unused")
        for bytes in packets { signaling.receiveData(bytes, label: label) }
        await signaling.leave()  // ends the event stream
        var out: [RoomSignalingEvent] = []
        for await event in signaling.events { out.append(event) }
        return out
    }

    func packet(_ value: Livekit_DataPacket.OneOf_Value, from identity: String = "olivia") throws -> [UInt8] {
        var packet = Livekit_DataPacket()
        packet.participantIdentity = identity
        packet.participantSid = "PA_olivia"
        packet.value = value
        return try packet.serializedBytes()
    }

    @Test func legacyChatAndTranscriptionPackets() async throws {
        var chat = Livekit_ChatMessage()
        chat.id = "m1"
        chat.message = "Bonjour"
        var deleted = chat
        deleted.deleted = true
        var segment = Livekit_TranscriptionSegment()
        segment.id = "s1"
        segment.text = "bonjour à tous"
        segment.startTime = 100
        segment.endTime = 900
        segment.final = true
        segment.language = "fr"
        var transcription = Livekit_Transcription()
        transcription.transcribedParticipantIdentity = "olivia"
        transcription.trackID = "TR_a"
        transcription.segments = [segment]
        let events = await events(of: [
            try packet(.chatMessage(chat)), try packet(.chatMessage(deleted)),
            try packet(.transcription(transcription)),
        ])
        #expect(
            events == [
                .text(
                    RoomText(
                        participantID: "PA_olivia", identity: "olivia", topic: "lk.chat", text: "Bonjour", id: "m1")),
                .transcription(
                    RoomTranscription(
                        speakerIdentity: "olivia", trackID: "TR_a",
                        segments: [
                            .init(id: "s1", text: "bonjour à tous", start: 100, end: 900, isFinal: true, language: "fr")
                        ])),
            ])
    }

    @Test func textStreamsWholeChunkedOutOfOrderOrTooLarge() async throws {
        func header(_ id: String, inline: String? = nil) -> Livekit_DataStream.Header {
            var h = Livekit_DataStream.Header()
            h.streamID = id
            h.topic = "lk.chat"
            h.contentHeader = .textHeader(Livekit_DataStream.TextHeader())
            if let inline { h.inlineContent = Data(inline.utf8) }
            return h
        }
        func chunk(_ id: String, _ index: UInt64, _ text: String) -> Livekit_DataStream.Chunk {
            var c = Livekit_DataStream.Chunk()
            c.streamID = id
            c.chunkIndex = index
            c.content = Data(text.utf8)
            return c
        }
        func trailer(_ id: String) -> Livekit_DataStream.Trailer {
            var t = Livekit_DataStream.Trailer()
            t.streamID = id
            return t
        }
        let big = String(repeating: "x", count: 300_000)
        let events = await events(of: [
            try packet(.streamHeader(header("inline", inline: "tout d'un coup"))),
            try packet(.streamHeader(header("chunked"))),
            try packet(.streamChunk(chunk("chunked", 1, "monde"))),
            try packet(.streamChunk(chunk("chunked", 0, "bonjour "))),
            try packet(.streamTrailer(trailer("chunked"))),
            try packet(.streamHeader(header("huge"))),
            try packet(.streamChunk(chunk("huge", 0, big))), try packet(.streamChunk(chunk("huge", 1, big))),
            try packet(.streamChunk(chunk("huge", 2, big))), try packet(.streamChunk(chunk("huge", 3, big))),
            try packet(.streamTrailer(trailer("huge"))),
            try packet(.streamTrailer(trailer("never-opened"))),
            [0xff, 0xff, 0xff, 0x01],  // not a packet
        ])
        let texts = events.compactMap { if case .text(let t) = $0 { t } else { nil } }
        #expect(texts.map(\.id) == ["inline", "chunked"], "a stream over 1 MiB is dropped: \(texts.map(\.id))")
        #expect(texts.map(\.text) == ["tout d'un coup", "bonjour monde"])
        #expect(texts.allSatisfy { $0.identity == "olivia" && $0.participantID == "PA_olivia" })
    }

    /// Deflate-raw streams (which this client advertises): inline and chunked ones are
    /// inflated; corrupt, truncated, bomb-sized and unknown compressions are dropped and counted.
    @Test func compressedStreamsAreInflatedAndHostileOnesDropped() async throws {
        func header(
            _ id: String, bytes: Bool = false, length: Int = 0,
            compression: Livekit_DataStream.CompressionType = .deflateRaw
        ) -> Livekit_DataStream.Header {
            var h = Livekit_DataStream.Header()
            h.streamID = id
            h.totalLength = UInt64(length)  // of the content once inflated
            h.topic = "t"
            h.compression = compression
            if bytes {
                var b = Livekit_DataStream.ByteHeader()
                b.name = id + ".bin"
                h.contentHeader = .byteHeader(b)
            } else {
                h.contentHeader = .textHeader(Livekit_DataStream.TextHeader())
            }
            return h
        }
        func chunked(_ id: String, _ content: Data, length: Int, bytes: Bool = false) throws -> [[UInt8]] {
            let pieces = LiveKitRoomSignaling.pieces(of: content)
            var out = [try packet(.streamHeader(header(id, bytes: bytes, length: length)))]
            for (i, piece) in pieces.enumerated().reversed() {  // out of order
                var c = Livekit_DataStream.Chunk()
                c.streamID = id
                c.chunkIndex = UInt64(i)
                c.content = piece
                out.append(try packet(.streamChunk(c)))
            }
            var t = Livekit_DataStream.Trailer()
            t.streamID = id
            return out + [try packet(.streamTrailer(t))]
        }
        let phrase = String(repeating: "Bonjour à toutes et à tous, ", count: 40)
        var inline = header("inline", length: phrase.utf8.count)
        inline.inlineContent = DeflateRaw.compress(Array(phrase.utf8))
        #expect(inline.inlineContent.count < phrase.utf8.count / 5)
        let file = Self.letters(200_000, seed: 7)
        let compressedFile = DeflateRaw.compress(file)
        #expect(compressedFile.count > LiveKitRoomSignaling.textChunkSize, "more than one chunk")
        var corrupt = header("corrupt")
        corrupt.inlineContent = Data((0..<64).map { UInt8(($0 * 37 + 11) % 256) })
        var unknown = header("unknown", compression: .UNRECOGNIZED(7))
        unknown.inlineContent = Data("?".utf8)
        let bomb = DeflateRaw.compress([UInt8](repeating: 0, count: 8 << 20))  // 8 MiB of zeros
        #expect(bomb.count < 16_000)

        let signaling = LiveKitRoomSignaling(url: "ws://127.0.0.1:9", token: "unused")
        var packets = [try packet(.streamHeader(inline))]
        packets += try chunked("file", compressedFile, length: file.count, bytes: true)
        packets += [try packet(.streamHeader(corrupt)), try packet(.streamHeader(unknown))]
        packets += try chunked("truncated", compressedFile.prefix(compressedFile.count / 2), length: file.count)
        packets += try chunked("bomb", bomb, length: 8 << 20)
        for bytes in packets { signaling.receiveData(bytes, label: "_reliable") }
        await signaling.leave()
        var texts: [RoomText] = [], files: [RoomBytes] = []
        for await event in signaling.events {
            if case .text(let t) = event { texts.append(t) }
            if case .bytes(let b) = event { files.append(b) }
        }
        #expect(texts.map(\.id) == ["inline"] && texts.first?.text == phrase)
        #expect(files.map(\.id) == ["file"] && files.first?.bytes == file && files.first?.name == "file.bin")
        #expect(
            signaling.dataStreams
                == LiveKitDataStreamStatistics(received: 2, receivedCompressed: 2, dropped: 4),
            "\(signaling.dataStreams)")
    }

    /// `count` letters of an 8-letter alphabet, pseudo-random from `seed`: three bits of
    /// entropy a byte, so deflate-raw compresses them to about 40 % — still several chunks
    /// for some tens of kilobytes.
    static func letters(_ count: Int, seed: UInt32) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(ascii: "a") + UInt8(state >> 29)
        }
    }

    @Test func deflateRawRoundTripsAndRefusesWhatItCannotRead() throws {
        for content in [
            [UInt8](), Array("a".utf8), (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) },
        ] {
            let compressed = DeflateRaw.compress(content)
            #expect(try DeflateRaw.inflate(compressed, maxSize: 1 << 20) == Data(content))
        }
        let zeros = DeflateRaw.compress([UInt8](repeating: 0, count: 100_000))
        #expect(throws: DeflateRaw.Failure.tooLarge) { try DeflateRaw.inflate(zeros, maxSize: 50_000) }
        #expect(throws: DeflateRaw.Failure.self) {
            try DeflateRaw.inflate(Data([0xff, 0xfe, 0x00, 0x13]), maxSize: 1000)
        }
    }

    @Test func chunksAreCutAtCharacterBoundaries() {
        let text = "é👋" + String(repeating: "a", count: 10) + "漢字"
        for limit in [1, 2, 4, 5, 7, 16] {
            let pieces = LiveKitRoomSignaling.chunks(of: text, maxBytes: limit)
            #expect(pieces.joined() == text)
            // A piece is over the limit only when one character alone is.
            #expect(pieces.allSatisfy { $0.utf8.count <= limit || $0.count == 1 }, "limit \(limit): \(pieces)")
        }
        #expect(LiveKitRoomSignaling.chunks(of: "", maxBytes: 10).isEmpty)
    }
}
