import CMeetKitShim
import COpus

/// An Opus decoder (libopus): packets in, PCM frames out at any Opus output rate, with
/// packet-loss concealment and in-band FEC recovery.
///
/// Opus decodes to any of 8, 12, 16, 24 or 48 kHz whatever the encoder's rate: a speech
/// engine asks for 16 kHz mono directly instead of resampling.
///
/// ```swift
/// let decoder = try OpusDecoder(sampleRate: 16_000, channels: 1)
/// let pcm = try decoder.decode(packet)                  // AudioFrame<Int16>
/// let filler = try decoder.concealLoss()                // a packet went missing
/// let recovered = try decoder.recoverLoss(using: next)  // or rebuild it from the next one's FEC
/// ```
///
/// Not thread-safe: use one decoder from one task at a time.
public final class OpusDecoder {
    /// Output sample rate.
    public let sampleRate: Int
    /// Output channels.
    public let channels: Int
    private let state: OpaquePointer
    /// The longest frame libopus decodes (120 ms), in samples per channel.
    private let maxFrame: Int
    /// Output position in samples per channel, used to timestamp frames without one.
    private var position: Int64 = 0
    /// The soft-clipping state of 16-bit decoding, one value per channel (see
    /// `mk_opus_decode_int16`): libopus keeps its own only for its own 16-bit decoding.
    private let softClip = UnsafeMutablePointer<Float>.allocate(capacity: 2)

    /// Creates a decoder producing `sampleRate` Hz (8000, 12000, 16000, 24000 or 48000) with
    /// `channels` channels (1 or 2).
    public init(sampleRate: Int = 48_000, channels: Int = 1) throws(OpusError) {
        guard [8000, 12000, 16000, 24000, 48000].contains(sampleRate) else {
            throw .invalidConfiguration("sample rate \(sampleRate) Hz")
        }
        guard channels == 1 || channels == 2 else { throw .invalidConfiguration("\(channels) channels") }
        var error: Int32 = 0
        guard let state = opus_decoder_create(Int32(sampleRate), Int32(channels), &error), error == OPUS_OK else {
            throw OpusError(code: error)
        }
        self.state = state
        self.sampleRate = sampleRate
        self.channels = channels
        maxFrame = sampleRate * 120 / 1000
        softClip.initialize(repeating: 0, count: 2)
    }

    deinit {
        opus_decoder_destroy(state)
        softClip.deallocate()
    }

    /// Samples per channel (at the output rate) of the last packet decoded or concealed;
    /// 20 ms worth before anything was decoded.
    public var lastPacketDuration: Int {
        var value: Int32 = 0
        _ = mk_opus_decoder_get(state, OPUS_GET_LAST_PACKET_DURATION_REQUEST, &value)
        return value > 0 ? Int(value) : sampleRate / 50
    }

    /// Decodes one packet into 16-bit PCM.
    ///
    /// - Parameter timestamp: the packet's presentation time; when nil the frame continues
    ///   from the previous output.
    /// - Throws: ``OpusError/invalidPacket(reason:)`` for bytes that are not an Opus packet.
    public func decode(_ packet: [UInt8], timestamp: MediaTime? = nil) throws(OpusError) -> AudioFrame<Int16> {
        try decode(ValidatedOpusPacket(packet[...]), timestamp: timestamp)
    }

    /// Decodes a packet already checked (e.g. by the RTP depacketizer), reading it in place.
    public func decode(_ packet: ValidatedOpusPacket, timestamp: MediaTime? = nil) throws(OpusError) -> AudioFrame<
        Int16
    > {
        // Decoded straight into the frame's own array, sized by the packet's duration: no
        // scratch buffer to copy out of (a receiver of 150 streams kept 150 of them).
        try frame16(run16(packet.bytes, frameSize: frameSize(of: packet), fec: false), timestamp: timestamp)
    }

    /// Decodes one packet into float PCM. See ``decode(_:timestamp:)``.
    public func decodeFloat(_ packet: [UInt8], timestamp: MediaTime? = nil) throws(OpusError) -> AudioFrame<Float> {
        let frameSize = frameSize(of: try ValidatedOpusPacket(packet[...]))
        var n: Int32 = 0
        let samples = [Float](unsafeUninitializedCapacity: frameSize * channels) { out, count in
            n = packet.withUnsafeBufferPointer { p in
                opus_decode_float(state, p.baseAddress, Int32(p.count), out.baseAddress!, Int32(frameSize), 0)
            }
            count = n > 0 ? Int(n) * channels : 0
        }
        guard n >= 0 else { throw OpusError(code: n) }
        // libopus's float decoding leaves nothing to continue for a later 16-bit frame.
        softClip.update(repeating: 0, count: 2)
        return AudioFrame(
            samples: samples, sampleRate: sampleRate, channels: channels, timestamp: stamp(timestamp, count: Int(n)))
    }

    /// Packet-loss concealment: synthesises audio for a packet that never arrived, so
    /// playback has no gap. The output is `samples` long per channel (default: the last
    /// packet's duration), rounded down to a multiple of 2.5 ms.
    public func concealLoss(samples: Int? = nil, timestamp: MediaTime? = nil) throws(OpusError) -> AudioFrame<Int16> {
        try frame16(run16(nil, frameSize: try lossSize(samples), fec: false), timestamp: timestamp)
    }

    /// Rebuilds a lost packet from the in-band FEC data carried by the packet that followed
    /// it (RFC 6716 §2.1.7). When `nextPacket` carries no FEC, libopus falls back to
    /// concealment. Then decode `nextPacket` itself normally with ``decode(_:timestamp:)``.
    public func recoverLoss(
        using nextPacket: [UInt8], samples: Int? = nil, timestamp: MediaTime? = nil
    ) throws(OpusError) -> AudioFrame<Int16> {
        try recoverLoss(using: ValidatedOpusPacket(nextPacket[...]), samples: samples, timestamp: timestamp)
    }

    /// ``recoverLoss(using:samples:timestamp:)`` from a packet already checked.
    public func recoverLoss(
        using nextPacket: ValidatedOpusPacket, samples: Int? = nil, timestamp: MediaTime? = nil
    ) throws(OpusError) -> AudioFrame<Int16> {
        try frame16(run16(nextPacket.bytes, frameSize: try lossSize(samples), fec: true), timestamp: timestamp)
    }

    /// Forgets all decoder state, e.g. when the stream's source changes.
    public func reset() {
        _ = mk_opus_decoder_reset(state)
        softClip.update(repeating: 0, count: 2)
    }

    /// The samples per channel a checked packet decodes to at this decoder's rate (every
    /// rate divides 48 kHz, and every Opus duration is a multiple of 2.5 ms).
    private func frameSize(of packet: ValidatedOpusPacket) -> Int {
        min(packet.samplesPerChannel48k * sampleRate / 48_000, maxFrame)
    }

    private func lossSize(_ samples: Int?) throws(OpusError) -> Int {
        let quantum = sampleRate / 400  // 2.5 ms
        let wanted = samples ?? lastPacketDuration
        let size = Swift.min(wanted, maxFrame) / quantum * quantum
        guard size > 0 else {
            throw .invalidFrameSize(samplesPerChannel: wanted, sampleRate: sampleRate, channels: channels)
        }
        return size
    }

    /// Decodes (or conceals, without a packet) `frameSize` samples per channel at most into
    /// an array of that capacity, holding what libopus's `opus_decode` produces (through
    /// `mk_opus_decode_int16`, which skips soft clipping when it would change nothing).
    private func run16(_ packet: ArraySlice<UInt8>?, frameSize: Int, fec: Bool) throws(OpusError) -> [Int16] {
        var n: Int32 = 0
        let (state, channels, softClip) = (state, channels, softClip)
        let samples = [Int16](unsafeUninitializedCapacity: frameSize * channels) { out, count in
            func run(_ bytes: UnsafePointer<UInt8>?, _ length: Int) -> Int32 {
                mk_opus_decode_int16(
                    state, bytes, Int32(length), out.baseAddress!, Int32(frameSize), Int32(channels), fec ? 1 : 0,
                    softClip)
            }
            if let packet {
                n = packet.withUnsafeBufferPointer { run($0.baseAddress, $0.count) }
            } else {
                n = run(nil, 0)
            }
            count = n > 0 ? Int(n) * channels : 0
        }
        guard n >= 0 else { throw OpusError(code: n) }
        return samples
    }

    private func stamp(_ timestamp: MediaTime?, count: Int) -> MediaTime {
        let ts = timestamp?.converted(to: Int32(sampleRate)) ?? MediaTime(value: position, timescale: Int32(sampleRate))
        position = ts.value + Int64(count)
        return ts
    }

    private func frame16(_ samples: [Int16], timestamp: MediaTime?) -> AudioFrame<Int16> {
        AudioFrame(
            samples: samples, sampleRate: sampleRate, channels: channels,
            timestamp: stamp(timestamp, count: samples.count / channels))
    }
}
