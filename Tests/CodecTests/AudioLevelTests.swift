import Foundation
import Testing

@testable import Codec

/// RFC 6464 levels of PCM blocks: −dBov of the RMS, voice above −50 dBov.
@Suite("Audio level")
struct AudioLevelTests {
    static func sine(amplitude: Double) -> AudioFrame<Int16> {
        AudioFrame(
            samples: (0..<960).map { Int16(amplitude * 32767 * sin(2 * Double.pi * 440 * Double($0) / 48_000)) },
            sampleRate: 48_000, channels: 1)
    }

    @Test func levelsOfLoudQuietAndSilentBlocks() {
        // A full-scale sine has an RMS of 1/√2: −3 dBov.
        #expect(AudioLevel(Self.sine(amplitude: 1)) == AudioLevel(level: 3, voiceActivity: true))
        #expect(AudioLevel(Self.sine(amplitude: 0.01)).level == 43)  // −40 dB − 3 dB
        #expect(AudioLevel(Self.sine(amplitude: 0.001)) == AudioLevel(level: 63, voiceActivity: false))
        #expect(
            AudioLevel(AudioFrame(silenceOf: 960, sampleRate: 48_000, channels: 1))
                == AudioLevel(level: 127, voiceActivity: false))
        #expect(AudioLevel(AudioFrame<Int16>(samples: [], sampleRate: 48_000, channels: 1)).level == 127)
    }
}
