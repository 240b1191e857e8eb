/// Encodes a continuous PCM stream delivered in blocks of any length into Opus packets of
/// one frame duration each (20 ms by default): the bridge between a push source (a
/// microphone callback, a WAV file, a synthetic generator) and an RTP sender.
///
/// Samples are buffered until a whole Opus frame is available; packet timestamps follow
/// the stream continuously from the first block's timestamp, on Opus's 48 kHz clock. The
/// encoder is created at the rate and channel count of the first block (8, 12, 16, 24 or
/// 48 kHz; Opus resamples internally) and re-created if they change.
///
/// ```swift
/// let stream = OpusStreamEncoder()
/// for packet in try stream.encode(microphoneBlock) { try pc.send(packet, mid: audioMid) }
/// ```
public final class OpusStreamEncoder {
    /// Settings applied to every encoder this stream creates (rate and channels are taken
    /// from the audio).
    public var configuration: OpusEncoderConfiguration
    /// Packets produced.
    public private(set) var packetsEncoded = 0
    private var encoder: OpusEncoder?
    private var pending: [Int16] = []
    private var nextTimestamp: Int64 = 0

    /// A stream encoder; `configuration`'s sample rate and channels are overridden by the
    /// audio's.
    public init(configuration: OpusEncoderConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Samples per channel waiting for a whole frame.
    public var bufferedSamplesPerChannel: Int { pending.count / max(1, encoder?.configuration.channels ?? 1) }

    /// Adds a block of audio; returns the packets completed by it (possibly none).
    /// - Throws: ``OpusError`` when the format is not encodable (e.g. 44.1 kHz).
    public func encode(_ block: AudioFrame<Int16>) throws(OpusError) -> [EncodedFrame] {
        if encoder == nil || encoder!.configuration.sampleRate != block.sampleRate
            || encoder!.configuration.channels != block.channels
        {
            var c = configuration
            c.sampleRate = block.sampleRate
            c.channels = block.channels
            encoder = try OpusEncoder(configuration: c)
            pending.removeAll(keepingCapacity: true)
            nextTimestamp = block.timestamp.converted(to: Int32(clamping: block.sampleRate)).value
        }
        let encoder = encoder!
        pending.append(contentsOf: block.samples)
        let frameLength = encoder.configuration.samplesPerFrame * block.channels
        var packets: [EncodedFrame] = []
        var start = 0
        while pending.count - start >= frameLength {
            let frame = AudioFrame(
                samples: Array(pending[start..<(start + frameLength)]), sampleRate: block.sampleRate,
                channels: block.channels,
                timestamp: MediaTime(value: nextTimestamp, timescale: Int32(clamping: block.sampleRate)))
            packets.append(try encoder.encode(frame))
            nextTimestamp += Int64(encoder.configuration.samplesPerFrame)
            start += frameLength
        }
        pending.removeFirst(start)
        packetsEncoded += packets.count
        return packets
    }
}
