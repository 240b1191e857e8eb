import Foundation
import LiveKitProtocol
import SwiftProtobuf

/// A text or byte stream being received: its header and the chunks so far.
struct IncomingStream {
    var header: Livekit_DataStream.Header
    var participantID: String?
    var identity: String
    var chunks: [UInt64: Data] = [:]
    var size = 0
}

// Data over LiveKit: DataPackets on the `_reliable` and `_lossy` channels — user packets
// and text streams (header, chunks, trailer; or the whole text inline in the header).
extension LiveKitRoomSignaling {
    /// The largest text or byte stream kept while it arrives, and how many may be open at once.
    static let maxTextStreamSize = 1 << 20
    static let maxOpenTextStreams = 32
    /// The largest chunk sent (LiveKit's JS sender uses at most 15 000 bytes).
    static let textChunkSize = 15_000

    /// `_reliable` (ordered) and `_lossy` (unordered, never retransmitted), as LiveKit's
    /// clients open them on the publisher connection.
    public var publisherDataChannels: [DataChannelRequest] {
        [
            DataChannelRequest(label: "_reliable", ordered: true),
            DataChannelRequest(label: "_lossy", ordered: false, maxRetransmits: 0),
        ]
    }

    public func attachDataSender(_ send: @escaping @Sendable (_ label: String, _ bytes: [UInt8]) async throws -> Void) {
        state.withLock { $0.dataSender = send }
    }

    /// Decodes a DataPacket: user packets are reported at once, text streams once whole.
    /// What does not decode, and text streams beyond the limits, are dropped.
    public func receiveData(_ bytes: [UInt8], label: String) {
        guard let packet = try? Livekit_DataPacket(serializedBytes: bytes) else {
            logger.debug("undecodable data packet dropped", metadata: ["label": "\(label)"])
            return
        }
        let sender = packet.participantSid.isEmpty ? nil : packet.participantSid
        switch packet.value {
        case .user(let user)?:
            let identity = packet.participantIdentity.isEmpty ? user.participantIdentity : packet.participantIdentity
            sink.yield(
                .data(
                    RoomData(
                        participantID: sender ?? (user.participantSid.isEmpty ? nil : user.participantSid),
                        identity: identity, topic: user.topic.isEmpty ? nil : user.topic,
                        payload: [UInt8](user.payload),
                        reliable: label == "_reliable")))
        case .chatMessage(let chat)? where !chat.deleted:
            // LiveKit's legacy chat packet: a chat message like the `lk.chat` stream's.
            sink.yield(
                .text(
                    RoomText(
                        participantID: sender, identity: packet.participantIdentity, topic: "lk.chat",
                        text: chat.message, id: chat.id)))
        case .transcription(let t)?:
            sink.yield(
                .transcription(
                    RoomTranscription(
                        speakerIdentity: t.transcribedParticipantIdentity, trackID: t.trackID,
                        segments: t.segments.map {
                            RoomTranscription.Segment(
                                id: $0.id, text: $0.text, start: $0.startTime, end: $0.endTime, isFinal: $0.final,
                                language: $0.language)
                        })))
        case .streamHeader(let header)?:
            guard header.contentHeader != nil else { return }
            let incoming = IncomingStream(header: header, participantID: sender, identity: packet.participantIdentity)
            if header.hasInlineContent {
                finish(incoming, chunks: [header.inlineContent])
            } else {
                state.withLock { s in
                    guard s.incoming.count < Self.maxOpenTextStreams else { return }
                    s.incoming[header.streamID] = incoming
                }
            }
        case .streamChunk(let chunk)?:
            state.withLock { s in
                guard var incoming = s.incoming[chunk.streamID] else { return }
                incoming.size += chunk.content.count
                guard incoming.size <= Self.maxTextStreamSize else {
                    s.incoming[chunk.streamID] = nil
                    return
                }
                incoming.chunks[chunk.chunkIndex] = chunk.content
                s.incoming[chunk.streamID] = incoming
            }
        case .streamTrailer(let trailer)?:
            guard let incoming = state.withLock({ $0.incoming.removeValue(forKey: trailer.streamID) }) else { return }
            finish(incoming, chunks: incoming.chunks.sorted { $0.key < $1.key }.map(\.value))
        default:
            break
        }
    }

    private func finish(_ incoming: IncomingStream, chunks: [Data]) {
        // Compressed content is not advertised by this client, so not expected: dropped.
        guard incoming.header.compression == .none else { return }
        let content = chunks.reduce(into: Data()) { $0.append($1) }
        let h = incoming.header
        if case .byteHeader(let bytes)? = h.contentHeader {
            sink.yield(
                .bytes(
                    RoomBytes(
                        participantID: incoming.participantID, identity: incoming.identity, topic: h.topic,
                        name: bytes.name, mimeType: h.mimeType, bytes: [UInt8](content), id: h.streamID,
                        attributes: h.attributes)))
        } else {
            sink.yield(
                .text(
                    RoomText(
                        participantID: incoming.participantID, identity: incoming.identity, topic: h.topic,
                        text: String(decoding: content, as: UTF8.self), id: h.streamID, attributes: h.attributes)))
        }
    }

    /// Sends a user packet on `_reliable` or `_lossy`.
    public func sendData(_ payload: [UInt8], topic: String?, reliable: Bool, to identities: [String]) async throws {
        var user = Livekit_UserPacket()
        user.payload = Data(payload)
        if let topic { user.topic = topic }
        user.destinationIdentities = identities
        var packet = Livekit_DataPacket()
        packet.kind = reliable ? .reliable : .lossy
        packet.destinationIdentities = identities
        packet.value = .user(user)
        try await send(packet, reliable: reliable)
    }

    /// Sends `text` as a text stream on `topic`: a header, chunks of at most 15 000 bytes
    /// cut at character boundaries, a trailer — all reliable.
    public func sendText(_ text: String, topic: String, attributes: [String: String]) async throws -> String {
        var textHeader = Livekit_DataStream.TextHeader()
        textHeader.operationType = .create
        return try await sendStream(
            topic: topic, mimeType: "text/plain", attributes: attributes, content: .textHeader(textHeader),
            chunks: Self.chunks(of: text, maxBytes: Self.textChunkSize).map { Data($0.utf8) })
    }

    /// Sends `bytes` as a byte stream named `name` on `topic` (what LiveKit's `send_bytes`
    /// sends): a header, chunks of at most 15 000 bytes, a trailer — all reliable.
    public func sendBytes(
        _ bytes: [UInt8], name: String, mimeType: String, topic: String, attributes: [String: String]
    ) async throws -> String {
        var byteHeader = Livekit_DataStream.ByteHeader()
        byteHeader.name = name
        let chunks = stride(from: 0, to: bytes.count, by: Self.textChunkSize).map {
            Data(bytes[$0..<min($0 + Self.textChunkSize, bytes.count)])
        }
        return try await sendStream(
            topic: topic, mimeType: mimeType, attributes: attributes, content: .byteHeader(byteHeader),
            chunks: chunks)
    }

    /// One data stream: its header, its chunks, its trailer; returns its id.
    private func sendStream(
        topic: String, mimeType: String, attributes: [String: String],
        content: Livekit_DataStream.Header.OneOf_ContentHeader, chunks: [Data]
    ) async throws -> String {
        let id = UUID().uuidString
        var header = Livekit_DataStream.Header()
        header.streamID = id
        header.timestamp = Int64(Date().timeIntervalSince1970 * 1000)
        header.topic = topic
        header.mimeType = mimeType
        header.totalLength = UInt64(chunks.reduce(0) { $0 + $1.count })
        header.attributes = attributes
        header.contentHeader = content
        var packet = Livekit_DataPacket()
        packet.kind = .reliable
        packet.value = .streamHeader(header)
        try await send(packet, reliable: true)
        for (index, piece) in chunks.enumerated() {
            var chunk = Livekit_DataStream.Chunk()
            chunk.streamID = id
            chunk.chunkIndex = UInt64(index)
            chunk.content = piece
            packet.value = .streamChunk(chunk)
            try await send(packet, reliable: true)
        }
        var trailer = Livekit_DataStream.Trailer()
        trailer.streamID = id
        packet.value = .streamTrailer(trailer)
        try await send(packet, reliable: true)
        return id
    }

    /// `text` in pieces of at most `maxBytes` UTF-8 bytes, none splitting a character.
    static func chunks(of text: String, maxBytes: Int) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        var bytes = 0
        var index = text.startIndex
        while index < text.endIndex {
            let size = text[index].utf8.count
            if bytes + size > maxBytes, index > start {
                out.append(text[start..<index])
                start = index
                bytes = 0
            }
            bytes += size
            index = text.index(after: index)
        }
        if start < text.endIndex { out.append(text[start...]) }
        return out
    }

    private func send(_ packet: Livekit_DataPacket, reliable: Bool) async throws {
        var packet = packet
        let sender = state.withLock { s -> (@Sendable (String, [UInt8]) async throws -> Void)? in
            if reliable {
                s.reliableSequence += 1
                packet.sequence = s.reliableSequence
            }
            return s.dataSender
        }
        let label = reliable ? "_reliable" : "_lossy"
        guard let sender else { throw RoomSignalingError.dataChannelUnavailable(label) }
        try await sender(label, try packet.serializedBytes())
    }
}
