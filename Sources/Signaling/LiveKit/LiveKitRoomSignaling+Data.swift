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

/// Counts of the data streams (texts and bytes) a LiveKit client received and sent.
public struct LiveKitDataStreamStatistics: Sendable, Equatable {
    /// Streams received whole and reported.
    public var received = 0
    /// Of those, the ones that came deflate-raw compressed.
    public var receivedCompressed = 0
    /// Streams dropped: too large, too many open at once, corrupt compressed content, or an
    /// unknown compression.
    public var dropped = 0
    /// Streams sent.
    public var sent = 0
    /// Of those, the ones sent compressed (every recipient advertised deflate-raw).
    public var sentCompressed = 0
    /// Of those, the ones sent inline: the whole content in the header, no chunk, no trailer.
    public var sentInline = 0
}

// Data over LiveKit: DataPackets on the `_reliable` and `_lossy` channels — user packets
// and text streams (header, chunks, trailer; or the whole text inline in the header).
extension LiveKitRoomSignaling {
    /// The data stream version this client reads (LiveKit's `client_protocol`): 2 — whole
    /// contents inline in the header — with deflate-raw compression as a capability.
    static let clientProtocol: Int32 = 2

    /// Counts of the data streams received and sent.
    public var dataStreams: LiveKitDataStreamStatistics { state.withLock { $0.streams } }

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
                    guard s.incoming.count < Self.maxOpenTextStreams else {
                        s.streams.dropped += 1
                        return
                    }
                    s.incoming[header.streamID] = incoming
                }
            }
        case .streamChunk(let chunk)?:
            state.withLock { s in
                guard var incoming = s.incoming[chunk.streamID] else { return }
                incoming.size += chunk.content.count
                guard incoming.size <= Self.maxTextStreamSize else {
                    s.incoming[chunk.streamID] = nil
                    s.streams.dropped += 1
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
        var content = chunks.reduce(into: Data()) { $0.append($1) }
        switch incoming.header.compression {
        case .none: break
        case .deflateRaw:
            // The whole stream was compressed once, then cut into chunks.
            // A truncated stream inflates without error: its announced length tells.
            let inflated = try? DeflateRaw.inflate(content, maxSize: Self.maxTextStreamSize)
            guard let inflated, !incoming.header.hasTotalLength || inflated.count == incoming.header.totalLength
            else {
                logger.debug("compressed data stream dropped", metadata: ["stream": "\(incoming.header.streamID)"])
                state.withLock { $0.streams.dropped += 1 }
                return
            }
            content = inflated
        case .UNRECOGNIZED:
            state.withLock { $0.streams.dropped += 1 }
            return
        }
        state.withLock { s in
            s.streams.received += 1
            if incoming.header.compression == .deflateRaw { s.streams.receivedCompressed += 1 }
        }
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

    /// Sends `text` as a text stream on `topic`, as LiveKit's senders do: inline in its
    /// header when every recipient reads that (and it fits), else a header, chunks of at
    /// most 15 000 bytes cut at character boundaries and a trailer — all reliable;
    /// deflate-raw compressed when every recipient advertises it.
    public func sendText(_ text: String, topic: String, attributes: [String: String]) async throws -> String {
        var textHeader = Livekit_DataStream.TextHeader()
        textHeader.operationType = .create
        return try await sendText(text, topic: topic, attributes: attributes, header: textHeader, id: nil)
    }

    /// Sends a new version of the text stream `id`: the same stream id, operation `update`
    /// and its version — what LiveKit's chat receivers take as an edit of that message.
    public func sendTextUpdate(
        _ text: String, id: String, version: Int, topic: String, attributes: [String: String]
    ) async throws {
        var textHeader = Livekit_DataStream.TextHeader()
        textHeader.operationType = .update
        textHeader.version = Int32(clamping: version)
        _ = try await sendText(text, topic: topic, attributes: attributes, header: textHeader, id: id)
    }

    private func sendText(
        _ text: String, topic: String, attributes: [String: String], header: Livekit_DataStream.TextHeader,
        id: String?
    ) async throws -> String {
        try await sendStream(
            id: id, topic: topic, mimeType: "text/plain", attributes: attributes, content: .textHeader(header),
            bytes: Data(text.utf8)
        ) { Self.chunks(of: text, maxBytes: Self.textChunkSize).map { Data($0.utf8) } }
    }

    /// Sends `bytes` as a byte stream named `name` on `topic` (what LiveKit's `send_bytes`
    /// sends), inline, chunked and compressed as ``sendText(_:topic:attributes:)`` is.
    public func sendBytes(
        _ bytes: [UInt8], name: String, mimeType: String, topic: String, attributes: [String: String]
    ) async throws -> String {
        var byteHeader = Livekit_DataStream.ByteHeader()
        byteHeader.name = name
        let content = Data(bytes)
        return try await sendStream(
            topic: topic, mimeType: mimeType, attributes: attributes, content: .byteHeader(byteHeader), bytes: content
        ) { Self.pieces(of: content) }
    }

    /// What every recipient of a broadcast (every remote participant) reads: whole
    /// contents inline, and deflate-raw compression. An empty room reads everything.
    var streamEligibility: (inline: Bool, compression: Bool) {
        state.withLock { s in
            let recipients = s.remote.values
            let inline = recipients.allSatisfy { $0.clientProtocol >= Self.clientProtocol }
            let compression =
                inline && recipients.allSatisfy { $0.capabilities.contains(.capCompressionDeflateRaw) }
            return (inline, compression)
        }
    }

    /// `content` in pieces of at most ``textChunkSize`` bytes.
    static func pieces(of content: Data) -> [Data] {
        stride(from: 0, to: content.count, by: textChunkSize).map {
            content.subdata(in: $0..<min($0 + textChunkSize, content.count))
        }
    }

    /// One data stream; returns its id. Its whole content (`bytes`) goes inline when every
    /// recipient reads that and the header stays within a chunk's size, else as a header,
    /// chunks and a trailer: the compressed content cut anywhere, or `uncompressedChunks`.
    private func sendStream(
        id: String? = nil, topic: String, mimeType: String, attributes: [String: String],
        content: Livekit_DataStream.Header.OneOf_ContentHeader, bytes: Data, uncompressedChunks: () -> [Data]
    ) async throws -> String {
        let id = id ?? UUID().uuidString
        var header = Livekit_DataStream.Header()
        header.streamID = id
        header.timestamp = Int64(Date().timeIntervalSince1970 * 1000)
        header.topic = topic
        header.mimeType = mimeType
        header.totalLength = UInt64(bytes.count)
        header.attributes = attributes
        header.contentHeader = content
        var packet = Livekit_DataPacket()
        packet.kind = .reliable
        let eligible = streamEligibility
        let compressed = eligible.compression ? DeflateRaw.compress(bytes) : nil
        if eligible.inline {
            var inline = header
            if let compressed, compressed.count < bytes.count {
                inline.inlineContent = compressed
                inline.compression = .deflateRaw
            } else {
                inline.inlineContent = bytes
            }
            packet.value = .streamHeader(inline)
            if (try? packet.serializedBytes() as [UInt8])?.count ?? .max <= Self.textChunkSize {
                try await send(packet, reliable: true)
                state.withLock { s in
                    s.streams.sent += 1
                    s.streams.sentInline += 1
                    if inline.compression == .deflateRaw { s.streams.sentCompressed += 1 }
                }
                return id
            }
        }
        if compressed != nil { header.compression = .deflateRaw }
        packet.value = .streamHeader(header)
        try await send(packet, reliable: true)
        for (index, piece) in (compressed.map(Self.pieces(of:)) ?? uncompressedChunks()).enumerated() {
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
        state.withLock { s in
            s.streams.sent += 1
            if compressed != nil { s.streams.sentCompressed += 1 }
        }
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
