import Codec
import Foundation

/// Generates a sine tone, or a linear chirp, as consecutive PCM frames with running
/// timestamps. Deterministic: the same settings give the same samples.
///
/// ```swift
/// var tone = ToneGenerator(frequency: 1000, sampleRate: 48_000)
/// let frame = tone.nextFrame(samplesPerChannel: 960)   // 20 ms of 1 kHz
/// ```
public struct ToneGenerator: Sendable {
    /// Start frequency in Hz.
    public var frequency: Double
    /// Frequency reached after `sweepSeconds` when sweeping (a chirp); nil for a pure tone.
    public var sweepTo: Double?
    /// Length of one sweep, after which it starts again.
    public var sweepSeconds: Double
    /// Peak amplitude in [0, 1].
    public var amplitude: Double
    /// Samples per second.
    public let sampleRate: Int
    /// Channels (the same signal in each).
    public let channels: Int
    /// Samples per channel generated so far.
    public private(set) var position: Int64 = 0
    private var phase: Double = 0

    /// A pure tone of `frequency` Hz.
    public init(frequency: Double, amplitude: Double = 0.5, sampleRate: Int = 48_000, channels: Int = 1) {
        self.frequency = frequency
        self.sweepTo = nil
        self.sweepSeconds = 1
        self.amplitude = amplitude
        self.sampleRate = sampleRate
        self.channels = channels
    }

    /// A chirp sweeping linearly from `from` to `to` Hz in `seconds`, repeatedly.
    public static func chirp(
        from: Double, to: Double, seconds: Double, amplitude: Double = 0.5, sampleRate: Int = 48_000, channels: Int = 1
    ) -> ToneGenerator {
        var generator = ToneGenerator(frequency: from, amplitude: amplitude, sampleRate: sampleRate, channels: channels)
        generator.sweepTo = to
        generator.sweepSeconds = seconds
        return generator
    }

    /// The instantaneous frequency at the current position.
    public var currentFrequency: Double {
        guard let end = sweepTo else { return frequency }
        let t = (Double(position) / Double(sampleRate)).truncatingRemainder(dividingBy: sweepSeconds)
        return frequency + (end - frequency) * t / sweepSeconds
    }

    /// The next `samplesPerChannel` samples as float values in [-1, 1].
    public mutating func nextSamples(_ samplesPerChannel: Int) -> [Float] {
        var out = [Float](repeating: 0, count: samplesPerChannel * channels)
        for i in 0..<samplesPerChannel {
            let value = Float(amplitude * sin(phase))
            for c in 0..<channels { out[i * channels + c] = value }
            phase += 2 * Double.pi * currentFrequency / Double(sampleRate)
            if phase > 2 * Double.pi { phase -= 2 * Double.pi }
            position += 1
        }
        return out
    }

    /// The next frame of 16-bit samples.
    public mutating func nextFrame(samplesPerChannel: Int) -> AudioFrame<Int16> {
        let start = position
        let samples = nextSamples(samplesPerChannel).map { Int16(normalized: $0) }
        return AudioFrame(
            samples: samples, sampleRate: sampleRate, channels: channels,
            timestamp: MediaTime(value: start, timescale: Int32(sampleRate)))
    }

    /// The next frame of float samples.
    public mutating func nextFloatFrame(samplesPerChannel: Int) -> AudioFrame<Float> {
        let start = position
        return AudioFrame(
            samples: nextSamples(samplesPerChannel), sampleRate: sampleRate, channels: channels,
            timestamp: MediaTime(value: start, timescale: Int32(sampleRate)))
    }
}
