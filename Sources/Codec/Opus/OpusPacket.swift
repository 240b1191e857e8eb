import COpus

/// What the first byte (TOC) and framing of an Opus packet say (RFC 6716 §3.1–3.2).
///
/// ```swift
/// let info = try OpusPacket(packet)
/// info.samplesPerChannel48k   // 960 for a 20 ms packet
/// ```
public struct OpusPacket: Sendable, Equatable {
    /// The coding mode selected by the TOC's configuration number.
    public enum Mode: Sendable, Equatable {
        /// SILK only (speech, configurations 0–11).
        case silk
        /// SILK + CELT (configurations 12–15).
        case hybrid
        /// CELT only (configurations 16–31).
        case celt
    }

    /// The audio bandwidth coded.
    public enum Bandwidth: Int, Sendable, Equatable {
        /// 4 kHz.
        case narrowband = 4000
        /// 6 kHz.
        case mediumband = 6000
        /// 8 kHz.
        case wideband = 8000
        /// 12 kHz.
        case superWideband = 12000
        /// 20 kHz.
        case fullband = 20000
    }

    /// Configuration number 0…31 (TOC bits 0–4).
    public let configuration: Int
    /// Mode from the configuration.
    public let mode: Mode
    /// Bandwidth from the configuration.
    public let bandwidth: Bandwidth
    /// Duration of each frame in microseconds (2500…60000).
    public let frameDurationMicroseconds: Int
    /// Whether the packet is stereo (TOC bit 5).
    public let isStereo: Bool
    /// Number of frames in the packet (1…48).
    public let frameCount: Int

    /// Total duration in samples per channel at 48 kHz.
    public var samplesPerChannel48k: Int { frameCount * frameDurationMicroseconds * 48 / 1000 }

    /// Parses and validates `packet` against RFC 6716 §3.4 (R1–R7).
    /// - Throws: ``OpusError/invalidPacket(reason:)``.
    public init(_ packet: [UInt8]) throws(OpusError) { try self.init(packet[...]) }

    /// Parses and validates the Opus packet `packet` (a slice of a larger buffer).
    /// - Throws: ``OpusError/invalidPacket(reason:)``.
    public init(_ packet: ArraySlice<UInt8>) throws(OpusError) {
        let samples = try OpusPacket.checkFraming(packet)
        let toc = Int(packet[packet.startIndex])
        configuration = toc >> 3
        isStereo = toc & 0x04 != 0
        switch configuration {
        case 0...11:
            mode = .silk
            bandwidth = [.narrowband, .mediumband, .wideband][configuration / 4]
        case 12...15:
            mode = .hybrid
            bandwidth = configuration < 14 ? .superWideband : .fullband
        default:
            mode = .celt
            bandwidth = [.narrowband, .wideband, .superWideband, .fullband][(configuration - 16) / 4]
        }
        frameDurationMicroseconds = Self.frameDurationMicroseconds(configuration: configuration)
        // The framing check measured the whole packet: its frames all last one frame's time.
        frameCount = samples / (frameDurationMicroseconds * 48 / 1000)
    }

    /// Whether the packet is a DTX "nothing to send" packet (two bytes or fewer).
    public static func isDiscontinuousTransmission(_ packet: [UInt8]) -> Bool { packet.count <= 2 }

    /// Checks the framing rules of RFC 6716 §3.4 with libopus's own parser.
    /// - Throws: ``OpusError/invalidPacket(reason:)``.
    public static func validate(_ packet: [UInt8]) throws(OpusError) { _ = try checkFraming(packet[...]) }

    /// Checks the framing of `packet` and returns its duration in samples per channel at
    /// 48 kHz. Allocates nothing. Packets of one or two frames (codes 0–2, what real-time
    /// senders send) are checked here by RFC 6716 §3.4's rules; code 3 packets by libopus's
    /// own parser (tests hold the two to the same answers).
    @inlinable static func checkFraming(_ packet: ArraySlice<UInt8>) throws(OpusError) -> Int {
        guard let toc = packet.first else { throw .invalidPacket(reason: "empty packet") }
        let n = packet.count
        let i = packet.startIndex
        let maxFrame = 1275
        switch toc & 0x03 {
        case 0:
            guard n - 1 <= maxFrame else { throw .invalidPacket(reason: "a frame of \(n - 1) bytes (R2)") }
            return samplesPerFrame48k(toc)
        case 1:
            guard (n - 1) % 2 == 0, (n - 1) / 2 <= maxFrame else {
                throw .invalidPacket(reason: "two equal frames in \(n - 1) bytes (R3)")
            }
            return 2 * samplesPerFrame48k(toc)
        case 2:
            guard n >= 2 else { throw .invalidPacket(reason: "code 2 packet without a frame length (R4)") }
            var header = 2
            var first = Int(packet[i + 1])
            if first >= 252 {
                guard n >= 3 else { throw .invalidPacket(reason: "code 2 packet with a cut frame length (R4)") }
                first += 4 * Int(packet[i + 2])
                header = 3
            }
            guard first <= n - header, n - header - first <= maxFrame else {
                throw .invalidPacket(reason: "code 2 frame lengths do not fit \(n) bytes (R4)")
            }
            return 2 * samplesPerFrame48k(toc)
        default:
            return try checkFramingWithLibopus(packet)
        }
    }

    /// A frame's duration from the TOC's configuration number (RFC 6716 §3.1, Table 2).
    @inlinable static func frameDurationMicroseconds(configuration: Int) -> Int {
        switch configuration {
        case 0...11: configuration % 4 == 3 ? 60_000 : 10_000 << (configuration % 4)  // SILK: 10, 20, 40, 60 ms
        case 12...15: 10_000 << (configuration % 2)  // hybrid: 10, 20 ms
        default: 2_500 << (configuration % 4)  // CELT: 2.5, 5, 10, 20 ms
        }
    }

    /// A frame's duration at 48 kHz from a TOC byte.
    @inlinable static func samplesPerFrame48k(_ toc: UInt8) -> Int {
        frameDurationMicroseconds(configuration: Int(toc >> 3)) * 48 / 1000
    }

    /// The framing check by libopus's parser (`opus_packet_parse`), for any packet.
    @usableFromInline static func checkFramingWithLibopus(_ packet: ArraySlice<UInt8>) throws(OpusError) -> Int {
        guard !packet.isEmpty else { throw .invalidPacket(reason: "empty packet") }
        var toc: UInt8 = 0
        var offset: Int32 = 0
        // libopus writes up to 48 frame sizes; a stack buffer keeps this path allocation-free.
        let (rc, samplesPerFrame) = packet.withUnsafeBufferPointer { p in
            let rc = withUnsafeTemporaryAllocation(of: Int16.self, capacity: 48) { sizes in
                opus_packet_parse(p.baseAddress!, Int32(p.count), &toc, nil, sizes.baseAddress!, &offset)
            }
            return (rc, opus_packet_get_samples_per_frame(p.baseAddress!, 48_000))
        }
        // The parser's count of frames times the TOC's frame size: the packet's duration.
        let samples = rc * samplesPerFrame
        guard rc > 0 else {
            throw .invalidPacket(reason: "framing of \(packet.count) bytes violates RFC 6716 §3.4 (code \(rc))")
        }
        // R5: at most 120 ms of audio in one packet.
        guard samples > 0, samples <= 5760 else {
            throw .invalidPacket(reason: "packet lasts \(samples) samples at 48 kHz (max 5760)")
        }
        return Int(samples)
    }
}

/// An Opus packet whose framing was checked (RFC 6716 §3.4), kept as a slice of the bytes
/// it arrived in: decoders take it without checking again and without copying it. The
/// receive path builds one per RTP packet with no allocation.
///
/// ```swift
/// let opus = try ValidatedOpusPacket(rtpPacket.payload)
/// let pcm = try decoder.decode(opus)
/// ```
public struct ValidatedOpusPacket: Sendable {
    /// The packet's bytes.
    public let bytes: ArraySlice<UInt8>
    /// Its duration in samples per channel at 48 kHz.
    public let samplesPerChannel48k: Int

    /// Checks `bytes` as one Opus packet.
    /// - Throws: ``OpusError/invalidPacket(reason:)``.
    @inlinable public init(_ bytes: ArraySlice<UInt8>) throws(OpusError) {
        samplesPerChannel48k = try OpusPacket.checkFraming(bytes)
        self.bytes = bytes
    }
}
