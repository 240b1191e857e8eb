import CMeetKitShim
import COpus

/// Settings of an ``OpusEncoder``. Defaults suit a WebRTC voice track.
public struct OpusEncoderConfiguration: Sendable, Equatable {
    /// What the encoder optimises for (RFC 6716 §2.1.9).
    public enum Application: Sendable, Equatable {
        /// Speech: best intelligibility (OPUS_APPLICATION_VOIP).
        case voip
        /// Music and mixed content: best fidelity (OPUS_APPLICATION_AUDIO).
        case audio
        /// Lowest delay, CELT only (OPUS_APPLICATION_RESTRICTED_LOWDELAY).
        case lowDelay

        var raw: Int32 {
            switch self {
            case .voip: OPUS_APPLICATION_VOIP
            case .audio: OPUS_APPLICATION_AUDIO
            case .lowDelay: OPUS_APPLICATION_RESTRICTED_LOWDELAY
            }
        }
    }

    /// Input sample rate: 8000, 12000, 16000, 24000 or 48000 Hz. WebRTC uses 48000.
    public var sampleRate: Int = 48_000
    /// 1 (mono) or 2 (stereo).
    public var channels: Int = 1
    /// Voice or music.
    public var application: Application = .voip
    /// Duration of each packet in milliseconds: 10, 20, 40 or 60 (2.5 and 5 are accepted too,
    /// expressed as `frameDurationMicroseconds`).
    public var frameDurationMicroseconds: Int = 20_000
    /// Target bitrate in bits per second (500…512000), or nil for libopus's automatic choice.
    public var bitrate: Int? = 32_000
    /// Computational complexity 0…10.
    public var complexity: Int = 9
    /// Whether packets carry in-band forward error correction for the previous packet.
    public var inbandFEC: Bool = false
    /// Expected packet loss in percent (0…100); FEC is only produced when this is positive.
    public var expectedPacketLossPercent: Int = 0
    /// Discontinuous transmission: silence is sent as tiny packets of at most 2 bytes.
    public var dtx: Bool = false
    /// Constant bitrate instead of variable.
    public var constantBitrate: Bool = false

    /// The default configuration, with the given overrides applied by the caller.
    public init() {}

    /// Samples per channel in one packet.
    public var samplesPerFrame: Int { sampleRate * frameDurationMicroseconds / 1_000_000 }
}

/// An Opus encoder (libopus): PCM frames in, Opus packets out.
///
/// ```swift
/// var config = OpusEncoderConfiguration()
/// config.inbandFEC = true
/// config.expectedPacketLossPercent = 10
/// let encoder = try OpusEncoder(configuration: config)
/// let packet = try encoder.encode(frame)          // frame: 960 samples of 48 kHz mono
/// ```
///
/// Not thread-safe: use one encoder from one task at a time.
public final class OpusEncoder {
    /// The configuration in force.
    public private(set) var configuration: OpusEncoderConfiguration
    private let state: OpaquePointer
    /// Output scratch, reused for every packet. 4000 bytes is libopus's recommended maximum.
    private var scratch = [UInt8](repeating: 0, count: 4000)

    /// Creates an encoder. Throws ``OpusError/invalidConfiguration(_:)`` for values
    /// libopus refuses.
    public init(configuration: OpusEncoderConfiguration = .init()) throws(OpusError) {
        let c = configuration
        guard [8000, 12000, 16000, 24000, 48000].contains(c.sampleRate) else {
            throw .invalidConfiguration("sample rate \(c.sampleRate) Hz")
        }
        guard c.channels == 1 || c.channels == 2 else { throw .invalidConfiguration("\(c.channels) channels") }
        guard [2500, 5000, 10_000, 20_000, 40_000, 60_000].contains(c.frameDurationMicroseconds) else {
            throw .invalidConfiguration("frame duration \(c.frameDurationMicroseconds) µs")
        }
        guard (0...10).contains(c.complexity) else { throw .invalidConfiguration("complexity \(c.complexity)") }
        guard (0...100).contains(c.expectedPacketLossPercent) else {
            throw .invalidConfiguration("expected packet loss \(c.expectedPacketLossPercent)%")
        }
        if let bitrate = c.bitrate, !(500...512_000).contains(bitrate) {
            throw .invalidConfiguration("bitrate \(bitrate) bit/s")
        }
        var error: Int32 = 0
        guard let state = opus_encoder_create(Int32(c.sampleRate), Int32(c.channels), c.application.raw, &error),
            error == OPUS_OK
        else { throw OpusError(code: error) }
        self.state = state
        self.configuration = c
        do {
            try apply(c)
        } catch {
            opus_encoder_destroy(state)
            throw error
        }
    }

    deinit { opus_encoder_destroy(state) }

    private func set(_ request: Int32, _ value: Int32) throws(OpusError) {
        let rc = mk_opus_encoder_set(state, request, value)
        guard rc == OPUS_OK else { throw OpusError(code: rc) }
    }

    private func apply(_ c: OpusEncoderConfiguration) throws(OpusError) {
        try set(OPUS_SET_BITRATE_REQUEST, c.bitrate.map { Int32($0) } ?? OPUS_AUTO)
        try set(OPUS_SET_COMPLEXITY_REQUEST, Int32(c.complexity))
        try set(OPUS_SET_INBAND_FEC_REQUEST, c.inbandFEC ? 1 : 0)
        try set(OPUS_SET_PACKET_LOSS_PERC_REQUEST, Int32(c.expectedPacketLossPercent))
        try set(OPUS_SET_DTX_REQUEST, c.dtx ? 1 : 0)
        try set(OPUS_SET_VBR_REQUEST, c.constantBitrate ? 0 : 1)
    }

    /// Changes the target bitrate (bits per second) from the next packet on, e.g. after
    /// congestion feedback.
    public func setBitrate(_ bitrate: Int) throws(OpusError) {
        guard (500...512_000).contains(bitrate) else { throw .invalidConfiguration("bitrate \(bitrate) bit/s") }
        try set(OPUS_SET_BITRATE_REQUEST, Int32(bitrate))
        configuration.bitrate = bitrate
    }

    /// Changes the expected loss (percent) that in-band FEC protects against.
    public func setExpectedPacketLoss(percent: Int) throws(OpusError) {
        guard (0...100).contains(percent) else { throw .invalidConfiguration("expected packet loss \(percent)%") }
        try set(OPUS_SET_PACKET_LOSS_PERC_REQUEST, Int32(percent))
        configuration.expectedPacketLossPercent = percent
    }

    /// Samples (at 48 kHz) the encoder delays its input by; this is the Ogg Opus pre-skip.
    public var lookahead: Int {
        var value: Int32 = 0
        _ = mk_opus_encoder_get(state, OPUS_GET_LOOKAHEAD_REQUEST, &value)
        // OPUS_GET_LOOKAHEAD counts samples at the encoder's rate; pre-skip is at 48 kHz.
        return Int(value) * 48_000 / configuration.sampleRate
    }

    /// Encodes interleaved samples in place into `output`, returning the packet's length.
    /// This is the allocation-free path; `samples` must hold exactly one frame.
    public func encode(
        _ samples: UnsafeBufferPointer<Int16>, into output: UnsafeMutableBufferPointer<UInt8>
    ) throws(OpusError) -> Int {
        let perChannel = try checkFrame(count: samples.count)
        let n = opus_encode(state, samples.baseAddress!, Int32(perChannel), output.baseAddress!, Int32(output.count))
        guard n >= 0 else { throw OpusError(code: n) }
        return Int(n)
    }

    /// Float variant of ``encode(_:into:)-(UnsafeBufferPointer<Int16>,_)``.
    public func encode(
        _ samples: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<UInt8>
    ) throws(OpusError) -> Int {
        let perChannel = try checkFrame(count: samples.count)
        let n = opus_encode_float(
            state, samples.baseAddress!, Int32(perChannel), output.baseAddress!, Int32(output.count))
        guard n >= 0 else { throw OpusError(code: n) }
        return Int(n)
    }

    /// Encodes one frame of 16-bit PCM into an Opus packet.
    ///
    /// The frame must have the encoder's sample rate and channel count and one of the
    /// allowed durations, otherwise ``OpusError/invalidFrameSize(samplesPerChannel:sampleRate:channels:)``.
    /// The packet's timestamp is the frame's, converted to 48 kHz (Opus's RTP clock).
    public func encode(_ frame: AudioFrame<Int16>) throws(OpusError) -> EncodedFrame {
        try checkFormat(frame)
        let count = try frame.samples.withUnsafeBufferPointer { pcm throws(OpusError) in
            try scratch.withUnsafeMutableBufferPointer { out throws(OpusError) in try encode(pcm, into: out) }
        }
        return finish(count: count, frame: frame)
    }

    /// Encodes one frame of float PCM into an Opus packet. See ``encode(_:)-(AudioFrame<Int16>)``.
    public func encode(_ frame: AudioFrame<Float>) throws(OpusError) -> EncodedFrame {
        try checkFormat(frame)
        let count = try frame.samples.withUnsafeBufferPointer { pcm throws(OpusError) in
            try scratch.withUnsafeMutableBufferPointer { out throws(OpusError) in try encode(pcm, into: out) }
        }
        return finish(count: count, frame: frame)
    }

    private func checkFormat<S>(_ frame: AudioFrame<S>) throws(OpusError) {
        guard frame.sampleRate == configuration.sampleRate, frame.channels == configuration.channels else {
            throw .invalidFrameSize(
                samplesPerChannel: frame.samplesPerChannel, sampleRate: frame.sampleRate, channels: frame.channels)
        }
    }

    private func checkFrame(count: Int) throws(OpusError) -> Int {
        let c = configuration
        guard count % c.channels == 0, count / c.channels == c.samplesPerFrame else {
            throw .invalidFrameSize(
                samplesPerChannel: count / c.channels, sampleRate: c.sampleRate, channels: c.channels)
        }
        return count / c.channels
    }

    private func finish<S>(count: Int, frame: AudioFrame<S>) -> EncodedFrame {
        let perChannel = Int64(frame.samplesPerChannel)
        let duration = MediaTime(value: perChannel * 48_000 / Int64(configuration.sampleRate), timescale: 48_000)
        return EncodedFrame(
            codec: .opus, data: Array(scratch[0..<count]), timestamp: frame.timestamp.converted(to: 48_000),
            duration: duration, isKeyframe: true)
    }
}
