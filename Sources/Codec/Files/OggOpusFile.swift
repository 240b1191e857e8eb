/// Writes Ogg Opus files (RFC 7845): an identification header (OpusHead), a comment
/// header (OpusTags), then the Opus packets, with granule positions counting 48 kHz
/// samples including the pre-skip.
///
/// Pages are written at least once a second of audio, so an interrupted recording keeps
/// everything but the last second; ``finish()`` writes the end-of-stream page.
///
/// ```swift
/// let ogg = try OggOpusWriter(path: "speaker-1.opus", channels: 1, preSkip: encoder.lookahead)
/// try ogg.write(packet)        // EncodedFrame from OpusEncoder or OpusRTPDepacketizer
/// try ogg.finish()
/// ```
public final class OggOpusWriter {
    /// Channels declared in the header.
    public let channels: Int
    /// Samples at 48 kHz the decoder discards at the start (the encoder's lookahead).
    public let preSkip: Int
    /// 48 kHz samples of all packets written.
    public private(set) var granulePosition: Int64 = 0
    /// Packets written.
    public private(set) var packetsWritten = 0
    private let sink: FileSink
    private let serial: UInt32
    private var sequence: UInt32 = 0
    private var pendingSegments: [UInt8] = []
    private var pendingBody: [UInt8] = []
    private var pendingSamples: Int64 = 0
    private var done = false

    /// Creates (or truncates) `path` and writes both headers.
    /// - Parameters:
    ///   - channels: 1 or 2 (channel mapping family 0).
    ///   - preSkip: 48 kHz samples to skip; 312 is what libopus encoders produce.
    ///   - inputSampleRate: informational rate of the original audio.
    ///   - vendor: the OpusTags vendor string.
    ///   - comments: `KEY=value` user comments (RFC 7845 §5.2).
    ///   - serial: the Ogg stream serial number; random when nil.
    public init(
        path: String, channels: Int, preSkip: Int = 312, inputSampleRate: Int = 48_000, vendor: String = "MeetKit",
        comments: [String] = [], serial: UInt32? = nil
    ) throws(MediaFileError) {
        guard channels == 1 || channels == 2 else { throw .invalidFrame("\(channels) channels (mapping family 0)") }
        guard (0...65535).contains(preSkip) else { throw .invalidFrame("pre-skip \(preSkip)") }
        self.channels = channels
        self.preSkip = preSkip
        self.serial = serial ?? UInt32.random(in: 1...UInt32.max)
        sink = try FileSink(path: path)
        var head: [UInt8] = []
        head.appendASCII("OpusHead")
        head.append(1)  // version
        head.append(UInt8(channels))
        head.appendLE(UInt16(preSkip))
        head.appendLE(UInt32(inputSampleRate))
        head.appendLE(Int16(0))  // output gain
        head.append(0)  // mapping family
        try writePage(flags: OggPage.beginOfStream, granule: 0, packet: head)
        var tags: [UInt8] = []
        tags.appendASCII("OpusTags")
        tags.appendLE(UInt32(vendor.utf8.count))
        tags.appendASCII(vendor)
        tags.appendLE(UInt32(comments.count))
        for c in comments {
            tags.appendLE(UInt32(c.utf8.count))
            tags.appendASCII(c)
        }
        try writePage(flags: 0, granule: 0, packet: tags)
    }

    /// Seconds of audio written (granule position less pre-skip).
    public var duration: MediaTime { MediaTime(value: max(0, granulePosition - Int64(preSkip)), timescale: 48_000) }

    private static func lacing(_ count: Int) -> [UInt8] {
        [UInt8](repeating: 255, count: count / 255) + [UInt8(count % 255)]
    }

    private func writePage(flags: UInt8, granule: Int64, packet: [UInt8]) throws(MediaFileError) {
        // A packet needing more than 255 lacing values spans pages; the pages before its
        // end carry granule -1 and the next one is flagged as continued.
        var segments = Self.lacing(packet.count)[...]
        var body = packet[...]
        var pageFlags = flags
        while segments.count > 255 {
            let take = segments.prefix(255)
            let bytes = take.reduce(0) { $0 + Int($1) }
            try emit(
                OggPage(
                    flags: pageFlags, granulePosition: -1, serial: serial, sequence: sequence, segments: Array(take),
                    body: Array(body.prefix(bytes))))
            body = body.dropFirst(bytes)
            segments = segments.dropFirst(255)
            pageFlags = OggPage.continued
        }
        try emit(
            OggPage(
                flags: pageFlags, granulePosition: granule, serial: serial, sequence: sequence,
                segments: Array(segments), body: Array(body)))
    }

    private func emit(_ page: OggPage) throws(MediaFileError) {
        try sink.write(page.encoded())
        sequence &+= 1
    }

    /// Appends one Opus packet. Its duration comes from its TOC byte.
    /// - Throws: ``MediaFileError/invalidFrame(_:)`` for something that is not an Opus packet.
    public func write(_ frame: EncodedFrame) throws(MediaFileError) {
        guard frame.codec == .opus else { throw .invalidFrame("\(frame.codec) frame in an Ogg Opus file") }
        try write(packet: frame.data)
    }

    /// Appends one Opus packet given as bytes.
    public func write(packet: [UInt8]) throws(MediaFileError) {
        guard !done else { throw .finished }
        let info: OpusPacket
        do {
            info = try OpusPacket(packet)
        } catch {
            throw .invalidFrame(error.description)
        }
        // Its lacing values, appended in place (a recording bot writes 7 500 packets a second).
        let fullSegments = packet.count / 255
        if pendingSegments.count + fullSegments + 1 > 255 { try flushPage(endOfStream: false) }
        pendingSegments.append(contentsOf: repeatElement(255, count: fullSegments))
        pendingSegments.append(UInt8(packet.count % 255))
        pendingBody.append(contentsOf: packet)
        granulePosition += Int64(info.samplesPerChannel48k)
        pendingSamples += Int64(info.samplesPerChannel48k)
        packetsWritten += 1
        if pendingSamples >= 48_000 { try flushPage(endOfStream: false) }
    }

    /// Writes the packets held so far as a page.
    public func flush() throws(MediaFileError) {
        guard !done else { throw .finished }
        if !pendingSegments.isEmpty { try flushPage(endOfStream: false) }
    }

    private func flushPage(endOfStream: Bool) throws(MediaFileError) {
        try emit(
            OggPage(
                flags: endOfStream ? OggPage.endOfStream : 0, granulePosition: granulePosition, serial: serial,
                sequence: sequence, segments: pendingSegments, body: pendingBody))
        pendingSegments.removeAll(keepingCapacity: true)
        pendingBody.removeAll(keepingCapacity: true)
        pendingSamples = 0
    }

    /// Writes the last page, flagged end-of-stream, and closes the file. Calling it twice
    /// does nothing more.
    public func finish() throws(MediaFileError) {
        guard !done else { return }
        try flushPage(endOfStream: true)
        done = true
        try sink.close()
    }
}

/// Reads Ogg Opus files (RFC 7845): the headers and every audio packet of the first Opus
/// stream, checking page CRCs and header fields.
///
/// ```swift
/// let file = try OggOpusReader(path: "speaker-1.opus")
/// let decoder = try OpusDecoder(sampleRate: 48_000, channels: file.channels)
/// for packet in file.packets { _ = try decoder.decode(packet) }
/// ```
public struct OggOpusReader: Sendable {
    /// Channels from OpusHead.
    public let channels: Int
    /// Pre-skip from OpusHead, in 48 kHz samples.
    public let preSkip: Int
    /// Original input rate from OpusHead (informational).
    public let inputSampleRate: Int
    /// Output gain from OpusHead, in Q7.8 dB.
    public let outputGain: Int16
    /// Vendor string from OpusTags.
    public let vendor: String
    /// User comments from OpusTags.
    public let comments: [String]
    /// Audio packets in order.
    public let packets: [[UInt8]]
    /// Granule position of the last page.
    public let finalGranulePosition: Int64

    /// Playing time: the final granule position less the pre-skip.
    public var duration: MediaTime {
        MediaTime(value: max(0, finalGranulePosition - Int64(preSkip)), timescale: 48_000)
    }

    /// Reads a file.
    public init(path: String) throws(MediaFileError) { try self.init(source: ByteSource(path: path)) }

    /// Reads a file already in memory.
    public init(bytes: [UInt8]) throws(MediaFileError) { try self.init(source: ByteSource(bytes: bytes)) }

    init(source: ByteSource) throws(MediaFileError) {
        var serial: UInt32?
        var partial: [UInt8] = []
        var collected: [[UInt8]] = []
        var granule: Int64 = 0
        while try !source.atEnd() {
            let page = try OggPage.read(from: source)
            if serial == nil {
                guard page.flags & OggPage.beginOfStream != 0 else {
                    throw .invalidFormat("first page does not begin a stream")
                }
                guard page.body.starts(with: Array("OpusHead".utf8)) else {
                    throw .unsupported("first Ogg stream is not Opus")
                }
                serial = page.serial
            }
            guard page.serial == serial else { continue }  // other multiplexed streams
            if page.flags & OggPage.continued == 0, !partial.isEmpty {
                throw .invalidFormat("page \(page.sequence) drops an unfinished packet")
            }
            var offset = 0
            for lace in page.segments {
                partial += page.body[offset..<(offset + Int(lace))]
                offset += Int(lace)
                if lace < 255 {
                    collected.append(partial)
                    partial.removeAll()
                }
            }
            if page.granulePosition != -1, collected.count > 2 { granule = page.granulePosition }
            if page.flags & OggPage.endOfStream != 0 { break }
        }
        guard collected.count >= 2 else {
            throw .truncated(context: "Opus headers", offset: source.position, needed: 1)
        }
        let head = collected[0][...]
        guard head.count >= 19, head.starts(with: Array("OpusHead".utf8)) else {
            throw .invalidFormat("OpusHead of \(head.count) bytes")
        }
        guard head[8] >> 4 == 0 else { throw .unsupported("OpusHead version \(head[8])") }
        let ch = Int(head[9])
        guard head[18] == 0 else { throw .unsupported("channel mapping family \(head[18])") }
        guard ch == 1 || ch == 2 else { throw .invalidFormat("\(ch) channels with mapping family 0") }
        channels = ch
        preSkip = Int(head.le(10, 2))
        inputSampleRate = Int(head.le(12, 4))
        outputGain = Int16(bitPattern: UInt16(head.le(16, 2)))
        let tags = collected[1][...]
        guard tags.count >= 16, tags.starts(with: Array("OpusTags".utf8)) else {
            throw .invalidFormat("second packet is not OpusTags")
        }
        var i = 8
        func field(_ what: String) throws(MediaFileError) -> String {
            guard tags.count >= i + 4 else { throw .invalidFormat("OpusTags ends inside \(what) length") }
            let n = Int(tags.le(i, 4))
            guard n <= tags.count - i - 4 else { throw .invalidFormat("OpusTags \(what) of \(n) bytes overruns") }
            defer { i += 4 + n }
            return String(decoding: tags[(tags.startIndex + i + 4)..<(tags.startIndex + i + 4 + n)], as: UTF8.self)
        }
        vendor = try field("vendor")
        guard tags.count >= i + 4 else { throw .invalidFormat("OpusTags ends before the comment count") }
        let count = Int(tags.le(i, 4))
        i += 4
        guard count <= tags.count / 4 else { throw .invalidFormat("OpusTags claims \(count) comments") }
        var list: [String] = []
        for _ in 0..<count { list.append(try field("comment")) }
        comments = list
        // A packet left unfinished by the last page (a recording cut between pages) is
        // dropped; every whole packet must be valid Opus.
        let audio = Array(collected.dropFirst(2))
        for (n, p) in audio.enumerated() {
            do {
                try OpusPacket.validate(p)
            } catch {
                throw .invalidFormat("audio packet \(n): \(error.description)")
            }
        }
        packets = audio
        finalGranulePosition = granule
    }
}
