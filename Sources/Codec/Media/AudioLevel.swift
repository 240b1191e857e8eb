import Foundation

/// The level of a block of audio as RFC 6464 carries it in an RTP header extension, so
/// that an SFU can tell who is talking without decoding: −dBov of the block's RMS (0 the
/// loudest, 127 silence) and a voice-activity flag.
///
/// ```swift
/// let level = AudioLevel(pcmBlock)     // level 20, voiceActivity true for a loud tone
/// ```
public struct AudioLevel: Sendable, Hashable {
    /// −dBov, 0…127.
    public var level: UInt8
    /// Whether the block is louder than ``voiceThreshold``.
    public var voiceActivity: Bool

    /// The level under which a block counts as voice (−50 dBov): a simple energy detector,
    /// what browsers' default also amounts to for clean speech.
    public static let voiceThreshold: UInt8 = 50

    /// The level of `block` (all channels together).
    public init(_ block: AudioFrame<Int16>) {
        guard !block.samples.isEmpty else {
            self.init(level: 127, voiceActivity: false)
            return
        }
        var sum = 0.0
        for s in block.samples {
            let x = Double(s) / 32768
            sum += x * x
        }
        let rms = (sum / Double(block.samples.count)).squareRoot()
        let dBov = rms > 0 ? -20 * log10(rms) : 127
        let level = UInt8(max(0, min(127, dBov.rounded())))
        self.init(level: level, voiceActivity: level < Self.voiceThreshold)
    }

    /// A level from its parts.
    public init(level: UInt8, voiceActivity: Bool) {
        self.level = level
        self.voiceActivity = voiceActivity
    }
}
