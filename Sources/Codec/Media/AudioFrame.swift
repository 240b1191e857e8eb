/// A PCM sample type MeetKit's audio frames carry: signed 16-bit or 32-bit float.
public protocol PCMSample: Sendable, Equatable, Numeric {
    /// The sample as a float in [-1, 1].
    var normalized: Float { get }
    /// The nearest sample to a float in [-1, 1] (clipped).
    init(normalized: Float)
}

extension Int16: PCMSample {
    @inlinable public var normalized: Float { Float(self) / 32768 }
    @inlinable public init(normalized: Float) {
        let scaled = (normalized * 32768).rounded()
        self = Int16(Swift.max(-32768, Swift.min(32767, scaled)))
    }
}

extension Float: PCMSample {
    @inlinable public var normalized: Float { self }
    @inlinable public init(normalized: Float) { self = normalized }
}

/// A block of PCM audio: interleaved samples, their rate, channel count and start time.
///
/// Samples are stored in one array (copy-on-write), so passing a frame between layers
/// does not copy its samples. Encoders read them in place.
///
/// ```swift
/// let silence = AudioFrame<Int16>(silenceOf: 960, sampleRate: 48_000, channels: 1)
/// silence.duration.seconds   // 0.02
/// ```
public struct AudioFrame<Sample: PCMSample>: Sendable, Equatable {
    /// Interleaved samples: `samplesPerChannel * channels` values.
    public var samples: [Sample]
    /// Samples per second per channel.
    public var sampleRate: Int
    /// Number of interleaved channels (1 = mono, 2 = stereo).
    public var channels: Int
    /// Time of the first sample, on a clock of `sampleRate` ticks per second.
    public var timestamp: MediaTime

    /// A frame of the given interleaved samples. `timestamp` defaults to zero.
    public init(samples: [Sample], sampleRate: Int, channels: Int, timestamp: MediaTime? = nil) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.channels = channels
        self.timestamp = timestamp ?? MediaTime(value: 0, timescale: Int32(clamping: sampleRate))
    }

    /// A frame of digital silence.
    public init(silenceOf samplesPerChannel: Int, sampleRate: Int, channels: Int, timestamp: MediaTime? = nil) {
        self.init(
            samples: [Sample](repeating: .zero, count: samplesPerChannel * channels), sampleRate: sampleRate,
            channels: channels, timestamp: timestamp)
    }

    /// Samples in each channel.
    public var samplesPerChannel: Int { channels > 0 ? samples.count / channels : 0 }

    /// How long the frame plays.
    public var duration: MediaTime {
        MediaTime(value: Int64(samplesPerChannel), timescale: Int32(clamping: sampleRate))
    }
}

/// Audio frames of signed 16-bit samples, the format of WAV files and speech engines.
public typealias PCM16Frame = AudioFrame<Int16>
/// Audio frames of 32-bit float samples in [-1, 1].
public typealias PCMFloatFrame = AudioFrame<Float>
