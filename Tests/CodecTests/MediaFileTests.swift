import Codec
import Foundation
import MeetKitTestSupport
import Testing

/// A fresh temporary directory per test.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "meetkit-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Media files")
struct MediaFileTests {
    /// Writes 5 s of a 16 kHz mono tone as WAV.
    static func writeWAV(_ path: String, seconds: Int = 5) throws -> [Int16] {
        let wav = try WAVWriter(path: path, sampleRate: 16_000, channels: 1)
        var tone = ToneGenerator(frequency: 440, sampleRate: 16_000)
        var all: [Int16] = []
        for _ in 0..<(seconds * 50) {
            let frame = tone.nextFrame(samplesPerChannel: 320)
            all += frame.samples
            try wav.write(frame)
        }
        try wav.finish()
        return all
    }

    @Test func wavRoundTripAndFFprobe() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/tone.wav"
        let written = try Self.writeWAV(path)
        let read = try WAVReader(path: path)
        #expect(read.sampleRate == 16_000 && read.channels == 1)
        #expect(read.samples == written)
        let probe = try FFprobeReport.probe(path)
        #expect(probe.codecName == "pcm_s16le")
        #expect(probe.channels == 1)
        #expect(probe.sampleRate == 16_000)
        #expect(abs((probe.duration ?? 0) - 5.0) <= 0.02)
    }

    /// A WAV abandoned without finish() (a crash) still holds every flushed second.
    @Test func interruptedWAVIsValid() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/cut.wav"
        do {
            let wav = try WAVWriter(path: path, sampleRate: 16_000, channels: 1)
            var tone = ToneGenerator(frequency: 300, sampleRate: 16_000)
            for _ in 0..<125 { try wav.write(tone.nextFrame(samplesPerChannel: 320)) }  // 2.5 s
        }
        let read = try WAVReader(path: path)
        #expect(read.duration.seconds >= 2.0)
        let probe = try FFprobeReport.probe(path)
        #expect((probe.duration ?? 0) >= 2.0)
    }

    @Test func stereoWAVAndSilence() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/stereo.wav"
        let wav = try WAVWriter(path: path, sampleRate: 48_000, channels: 2)
        try wav.write(samples: [1, -1, 2, -2])
        try wav.writeSilence(samplesPerChannel: 48_000)
        #expect(throws: MediaFileError.self) { try wav.write(samples: [1, 2, 3]) }
        #expect(throws: MediaFileError.self) {
            try wav.write(AudioFrame<Int16>(silenceOf: 10, sampleRate: 16_000, channels: 2))
        }
        try wav.finish()
        #expect(throws: MediaFileError.finished) { try wav.write(samples: [0, 0]) }
        let read = try WAVReader(path: path)
        #expect(read.samplesPerChannel == 48_002)
        #expect(read.channel(1).prefix(2) == [Int16(-1).normalized, Int16(-2).normalized])
    }

    @Test func oggOpusRoundTripAndFFprobe() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/tone.opus"
        let encoder = try OpusEncoder()
        let ogg = try OggOpusWriter(
            path: path, channels: 1, preSkip: encoder.lookahead, comments: ["TITLE=MeetKit test"], serial: 1234)
        var tone = ToneGenerator(frequency: 1000)
        var packets: [[UInt8]] = []
        for _ in 0..<250 {
            let packet = try encoder.encode(tone.nextFrame(samplesPerChannel: 960))
            packets.append(packet.data)
            try ogg.write(packet)
        }
        try ogg.finish()
        #expect(ogg.duration == MediaTime(value: 250 * 960 - 312, timescale: 48_000))
        let read = try OggOpusReader(path: path)
        #expect(read.packets == packets)
        #expect(read.channels == 1 && read.preSkip == 312)
        #expect(read.vendor == "MeetKit" && read.comments == ["TITLE=MeetKit test"])
        #expect(read.finalGranulePosition == 250 * 960)
        let probe = try FFprobeReport.probe(path)
        #expect(probe.codecName == "opus")
        #expect(probe.channels == 1)
        #expect(probe.sampleRate == 48_000)
        #expect(abs((probe.duration ?? 0) - 5.0) <= 0.02, "duration \(probe.duration ?? -1)")
        #expect(probe.packetCount == 250)
    }

    @Test func ivfRoundTripAndFFprobe() throws {
        let dir = try temporaryDirectory()
        for (name, timebase) in [("fps", (1, 30)), ("rtp", (1, 90_000))] {
            let path = dir + "/pattern-\(name).ivf"
            let encoder = try VP8Encoder(configuration: .init(width: 640, height: 360))
            let ivf = try IVFWriter(path: path, width: 640, height: 360, timebase: timebase)
            var pattern = TestPatternGenerator(width: 640, height: 360, frameRate: 30)
            var frames: [EncodedFrame] = []
            for _ in 0..<150 {
                let frame = try #require(try encoder.encode(pattern.nextFrame()))
                frames.append(frame)
                try ivf.write(frame)
            }
            try ivf.finish()
            let reader = try IVFReader(path: path)
            #expect(
                reader.width == 640 && reader.height == 360 && reader.declaredLength == (name == "fps" ? 150 : 450_000))
            var n = 0
            while let frame = try reader.nextFrame() {
                #expect(frame.data == frames[n].data)
                #expect(frame.timestamp == frames[n].timestamp)
                #expect(frame.isKeyframe == frames[n].isKeyframe)
                n += 1
            }
            #expect(n == 150)
            let probe = try FFprobeReport.probe(path)
            #expect(probe.codecName == "vp8")
            #expect(probe.width == 640 && probe.height == 360)
            #expect(probe.packetCount == 150)
            let duration = probe.duration ?? 0
            #expect(abs(duration - 5.0) <= 1.0 / 30 + 0.001, "\(name) IVF duration \(duration)")
        }
    }

    // MARK: bad input

    @Test func truncatedAndCorruptWAV() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/t.wav"
        _ = try Self.writeWAV(path, seconds: 1)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(throws: MediaFileError.self) { try WAVReader(bytes: Array(bytes.prefix(30))) }
        #expect {
            try WAVReader(bytes: Array(bytes.prefix(1000)))
        } throws: { error in
            guard case .truncated(let context, _, _) = error as? MediaFileError else { return false }
            return context == "data chunk"
        }
        var notRIFF = bytes
        notRIFF[0] = UInt8(ascii: "X")
        #expect(throws: MediaFileError.invalidFormat("not a RIFF/WAVE file")) { try WAVReader(bytes: notRIFF) }
        var float = bytes
        float[20] = 3  // IEEE float format tag
        #expect(throws: MediaFileError.unsupported("WAV format tag 3 (only PCM)")) { try WAVReader(bytes: float) }
        #expect(throws: MediaFileError.self) { try WAVReader(path: dir + "/missing.wav") }
    }

    @Test func truncatedAndCorruptOggOpus() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/t.opus"
        let encoder = try OpusEncoder()
        let ogg = try OggOpusWriter(path: path, channels: 1)
        var tone = ToneGenerator(frequency: 700)
        for _ in 0..<100 { try ogg.write(try encoder.encode(tone.nextFrame(samplesPerChannel: 960))) }
        try ogg.finish()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect {
            try OggOpusReader(bytes: Array(bytes.dropLast(10)))
        } throws: { error in
            if case .truncated = error as? MediaFileError { return true }
            return false
        }
        var flipped = bytes
        flipped[bytes.count - 100] ^= 0x40
        #expect {
            try OggOpusReader(bytes: flipped)
        } throws: { error in
            if case .checksumMismatch = error as? MediaFileError { return true }
            return false
        }
        var notOpus = bytes
        notOpus[28] = UInt8(ascii: "V")  // "OpusHead" → "VpusHead"; CRC now fails first
        #expect(throws: MediaFileError.self) { try OggOpusReader(bytes: notOpus) }
        #expect(throws: MediaFileError.self) { try OggOpusReader(bytes: Array("OggS but nothing".utf8)) }
        // Writing something that is not Opus is refused.
        #expect(throws: MediaFileError.self) {
            try OggOpusWriter(path: dir + "/x.opus", channels: 1).write(packet: [])
        }
    }

    @Test func truncatedAndCorruptIVF() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/t.ivf"
        let encoder = try VP8Encoder(configuration: .init(width: 160, height: 120))
        let ivf = try IVFWriter(path: path, width: 160, height: 120)
        var pattern = TestPatternGenerator(width: 160, height: 120)
        for _ in 0..<10 { try ivf.write(try #require(try encoder.encode(pattern.nextFrame()))) }
        try ivf.finish()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = try IVFReader(bytes: Array(bytes.dropLast(5)))
        #expect {
            while try reader.nextFrame() != nil {}
        } throws: { error in
            if case .truncated = error as? MediaFileError { return true }
            return false
        }
        #expect(reader.framesRead == 9)
        #expect(throws: MediaFileError.invalidFormat("no DKIF signature")) {
            try IVFReader(bytes: [UInt8](repeating: 0, count: 40))
        }
        #expect(throws: MediaFileError.self) { try IVFReader(bytes: Array(bytes.prefix(20))) }
        var vp9 = bytes
        vp9[10] = UInt8(ascii: "9")
        #expect(throws: MediaFileError.unsupported("IVF codec VP90 (only VP80)")) { try IVFReader(bytes: vp9) }
    }

    /// Random and mutated bytes through every reader: typed errors or data, never a crash.
    @Test func fuzzedFilesNeverCrashReaders() throws {
        let dir = try temporaryDirectory()
        _ = try Self.writeWAV(dir + "/f.wav", seconds: 1)
        let encoder = try OpusEncoder()
        let ogg = try OggOpusWriter(path: dir + "/f.opus", channels: 1)
        var tone = ToneGenerator(frequency: 700)
        for _ in 0..<20 { try ogg.write(try encoder.encode(tone.nextFrame(samplesPerChannel: 960))) }
        try ogg.finish()
        let vp8 = try VP8Encoder(configuration: .init(width: 64, height: 48))
        let ivf = try IVFWriter(path: dir + "/f.ivf", width: 64, height: 48)
        for i in 0..<5 {
            try ivf.write(try #require(try vp8.encode(TestPatternGenerator(width: 64, height: 48).frame(at: i))))
        }
        try ivf.finish()
        var rng = SplitMix64(seed: 5)
        for name in ["f.wav", "f.opus", "f.ivf"] {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
            for round in 0..<300 {
                var bytes = original
                if round % 3 == 0 {
                    bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
                } else {
                    for _ in 0..<(1 + Int(rng.next() % 6)) {
                        bytes[Int(rng.next() % UInt64(min(bytes.count, 200)))] = UInt8(truncatingIfNeeded: rng.next())
                    }
                }
                _ = try? WAVReader(bytes: bytes)
                _ = try? OggOpusReader(bytes: bytes)
                if let reader = try? IVFReader(bytes: bytes) { while (try? reader.nextFrame()) != nil {} }
            }
        }
    }
}
