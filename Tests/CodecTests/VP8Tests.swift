import Codec
import MeetKitTestSupport
import Testing

@Suite("VP8 encoder and decoder")
struct VP8Tests {
    /// The moving pattern at 640x360, 1 Mbit/s: every frame decodes, PSNR (all planes) above
    /// 30 dB. libvpx 1.12 measures about 37 dB here; a broken path (wrong strides, swapped
    /// planes, a frame shown from the wrong reference) falls far below 27 dB.
    @Test func roundTripPSNR() throws {
        var config = VP8EncoderConfiguration(width: 640, height: 360)
        config.bitrate = 1_000_000
        let encoder = try VP8Encoder(configuration: config)
        let decoder = try VP8Decoder()
        var pattern = TestPatternGenerator(width: 640, height: 360, frameRate: 30)
        var psnrs: [Double] = []
        var bytes = 0
        for _ in 0..<60 {
            let source = pattern.nextFrame()
            let encoded = try #require(try encoder.encode(source))
            bytes += encoded.data.count
            let decoded = try #require(try decoder.decode(encoded))
            #expect(decoded.width == 640 && decoded.height == 360)
            #expect(decoded.timestamp == source.timestamp)
            psnrs.append(SignalAnalysis.psnr(source, decoded))
        }
        let steady = psnrs[10...]
        let mean = steady.reduce(0, +) / Double(steady.count)
        let kbps = Double(bytes * 8) / 2.0 / 1000
        print("VP8 640x360: mean PSNR \(mean) dB, min \(steady.min()!) dB, \(kbps) kbit/s")
        #expect(mean > 30)
        #expect(steady.min()! > 27)
        #expect(decoder.framesDecoded == 60)
        // Rate control holds the target within a factor of two over two seconds.
        #expect(kbps > 500 && kbps < 2000)
    }

    @Test func keyframeRequestYieldsKeyframe() throws {
        let encoder = try VP8Encoder(configuration: .init(width: 320, height: 240))
        var pattern = TestPatternGenerator(width: 320, height: 240)
        var kinds: [Bool] = []
        for i in 0..<20 {
            if i == 12 { encoder.requestKeyframe() }
            let frame = try #require(try encoder.encode(pattern.nextFrame()))
            #expect(try VP8FrameHeader(frame.data).isKeyframe == frame.isKeyframe)
            kinds.append(frame.isKeyframe)
        }
        #expect(kinds[0], "the first frame is a keyframe")
        #expect(kinds[12], "the requested frame is a keyframe")
        #expect(kinds.enumerated().filter { $0.element }.map(\.offset) == [0, 12])
        let forced = try #require(try encoder.encode(pattern.nextFrame(), forceKeyframe: true))
        #expect(forced.isKeyframe)
        let header = try VP8FrameHeader(forced.data)
        #expect(header.width == 320 && header.height == 240)
    }

    @Test func frameSizeChangeReinitialises() throws {
        let encoder = try VP8Encoder(configuration: .init(width: 320, height: 240))
        let decoder = try VP8Decoder()
        _ = try decoder.decode(
            try #require(try encoder.encode(TestPatternGenerator(width: 320, height: 240).frame(at: 0))))
        let big = TestPatternGenerator(width: 640, height: 480).frame(at: 1)
        let frame = try #require(try encoder.encode(big))
        #expect(frame.isKeyframe)
        let picture = try #require(try decoder.decode(frame))
        #expect(picture.width == 640 && picture.height == 480)
    }

    @Test func decoderWaitsForKeyframeAndRejectsCorruptFrames() throws {
        let encoder = try VP8Encoder(configuration: .init(width: 320, height: 240))
        var pattern = TestPatternGenerator(width: 320, height: 240)
        var frames: [EncodedFrame] = []
        for _ in 0..<6 { frames.append(try #require(try encoder.encode(pattern.nextFrame()))) }
        let decoder = try VP8Decoder()
        // Starting on an inter frame: refused.
        #expect(throws: VP8Error.waitingForKeyframe) { try decoder.decode(frames[1]) }
        // A truncated keyframe: reported, not shown.
        var truncated = frames[0]
        truncated.data = Array(truncated.data.prefix(truncated.data.count / 3))
        #expect(throws: VP8Error.self) { try decoder.decode(truncated) }
        #expect(decoder.framesDecoded == 0)
        // The real keyframe and what follows decode.
        for f in frames[0..<3] { #expect(try decoder.decode(f) != nil) }
        // A lost frame: inter frames refused until the next keyframe.
        decoder.frameLost()
        #expect(throws: VP8Error.waitingForKeyframe) { try decoder.decode(frames[4]) }
        encoder.requestKeyframe()
        let key = try #require(try encoder.encode(pattern.nextFrame()))
        #expect(try decoder.decode(key) != nil)
        #expect(decoder.framesDecoded == 4)
        #expect(decoder.framesRejected == 3)
    }

    @Test func garbageNeverCrashesTheDecoder() throws {
        var rng = SplitMix64(seed: 42)
        let encoder = try VP8Encoder(configuration: .init(width: 160, height: 120))
        let key = try #require(try encoder.encode(TestPatternGenerator(width: 160, height: 120).frame(at: 0)))
        for round in 0..<300 {
            let decoder = try VP8Decoder()
            var data: [UInt8]
            if round % 2 == 0 {
                data = (0..<Int(rng.next() % 400)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if round % 4 == 0, data.count > 10 { data[0] &= 0xFE; data[3] = 0x9d; data[4] = 0x01; data[5] = 0x2a }
            } else {
                // A real keyframe with bytes flipped past its header.
                data = key.data
                for _ in 0..<8 {
                    let i = 10 + Int(rng.next() % UInt64(data.count - 10))
                    data[i] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            }
            _ = try? decoder.decode(data, timestamp: .zero)
        }
        #expect(throws: VP8Error.self) { try VP8FrameHeader([0x00, 0x01]) }
        #expect(throws: VP8Error.self) { try VP8FrameHeader([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2b, 1, 0, 1, 0]) }
    }

    @Test func multithreadedAndBitrateChange() throws {
        var config = VP8EncoderConfiguration(width: 640, height: 360)
        config.threads = 2
        config.bitrate = 2_000_000
        let encoder = try VP8Encoder(configuration: config)
        let decoder = try VP8Decoder(threads: 2)
        var pattern = TestPatternGenerator(width: 640, height: 360)
        var early = 0
        var late = 0
        for i in 0..<40 {
            if i == 20 { try encoder.setBitrate(400_000) }
            let frame = try #require(try encoder.encode(pattern.nextFrame()))
            if (5..<20).contains(i) { early += frame.data.count }
            if (25..<40).contains(i) { late += frame.data.count }
            #expect(try decoder.decode(frame)?.width == 640)
        }
        #expect(late < early / 2, "lowering the bitrate shrinks the frames: \(early) → \(late) bytes")
    }

    @Test func invalidConfigurationsAreTypedErrors() {
        #expect(throws: VP8Error.self) { try VP8Encoder(configuration: .init(width: 0, height: 240)) }
        var config = VP8EncoderConfiguration(width: 320, height: 240)
        config.threads = 0
        #expect(throws: VP8Error.self) { try VP8Encoder(configuration: config) }
        #expect(throws: VP8Error.self) { try VP8Decoder(threads: 99) }
    }
}
