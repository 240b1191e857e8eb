import Foundation
import MeetKitTestSupport
import Testing

@testable import Codec

@Suite("Opus encoder and decoder")
struct OpusTests {
    /// Encodes `frames` 20 ms frames of `generator` and returns the reference samples and packets.
    static func encode(
        _ generator: inout ToneGenerator, frames: Int, configuration: OpusEncoderConfiguration
    ) throws -> (reference: [Float], packets: [EncodedFrame]) {
        let encoder = try OpusEncoder(configuration: configuration)
        var reference: [Float] = []
        var packets: [EncodedFrame] = []
        for _ in 0..<frames {
            let frame = generator.nextFrame(samplesPerChannel: configuration.samplesPerFrame)
            reference += frame.samples.map(\.normalized)
            packets.append(try encoder.encode(frame))
        }
        return (reference, packets)
    }

    /// 1 kHz tone at 48 kHz mono through Opus at 64 kbit/s.
    ///
    /// Threshold: Opus is a perceptual codec, so what is measured is the waveform error its
    /// quantiser leaves. A stationary 1 kHz tone at 64 kbit/s measures about 44 dB with
    /// libopus 1.3.1. 30 dB (0.1 % error energy) leaves 14 dB for other libopus versions
    /// and builds, and is far above what a broken path gives: a wrong delay, rate, gain or
    /// channel layout measures below 6 dB.
    @Test func toneRoundTripKeepsWaveform() throws {
        var config = OpusEncoderConfiguration()
        config.application = .audio
        config.bitrate = 64_000
        var tone = ToneGenerator(frequency: 1000, amplitude: 0.5)
        let (reference, packets) = try Self.encode(&tone, frames: 100, configuration: config)
        let decoder = try OpusDecoder(sampleRate: 48_000, channels: 1)
        var output: [Float] = []
        for p in packets { output += try decoder.decode(p.data).samples.map(\.normalized) }
        #expect(output.count == reference.count)
        let snr = SignalAnalysis.snr(reference: reference, output: output, maxLag: 1000, skip: 4800)
        print("Opus 1 kHz round trip SNR: \(snr) dB")
        #expect(snr > 30)
    }

    /// The decoder's output lags the input by the encoder's lookahead, which is what
    /// Ogg Opus files declare as pre-skip. A chirp, unlike a tone, has a single best lag.
    @Test func outputDelayIsTheLookahead() throws {
        let config = OpusEncoderConfiguration()
        var chirp = ToneGenerator.chirp(from: 200, to: 3000, seconds: 1)
        let (reference, packets) = try Self.encode(&chirp, frames: 50, configuration: config)
        let decoder = try OpusDecoder()
        var output: [Float] = []
        for p in packets { output += try decoder.decode(p.data).samples.map(\.normalized) }
        let lag = SignalAnalysis.bestLag(reference: reference, output: output, maxLag: 1000)
        let lookahead = try OpusEncoder(configuration: config).lookahead
        #expect(lookahead == 312)
        // SILK's filters add a couple of samples of group delay on top of the lookahead.
        #expect(abs(lag - lookahead) <= 4, "measured delay \(lag), lookahead \(lookahead)")
    }

    /// Decoding at 16 kHz mono, what speech engines want: the tone is still there.
    @Test func decodesAt16kHz() throws {
        var tone = ToneGenerator(frequency: 440, amplitude: 0.5)
        let (_, packets) = try Self.encode(&tone, frames: 50, configuration: OpusEncoderConfiguration())
        let decoder = try OpusDecoder(sampleRate: 16_000, channels: 1)
        var output: [Float] = []
        for p in packets {
            let frame = try decoder.decode(p.data)
            #expect(frame.sampleRate == 16_000)
            #expect(frame.samplesPerChannel == 320)
            output += frame.samples.map(\.normalized)
        }
        #expect(output.count == 50 * 320)
        let f = SignalAnalysis.dominantFrequency(in: Array(output[3200...]), sampleRate: 16_000)
        #expect(abs(f - 440) <= 10)
    }

    /// A missing packet is concealed: the output keeps its length and has no silent gap.
    @Test func lostPacketIsConcealed() throws {
        var tone = ToneGenerator(frequency: 1000, amplitude: 0.5)
        let (_, packets) = try Self.encode(&tone, frames: 50, configuration: OpusEncoderConfiguration())
        let decoder = try OpusDecoder()
        var output: [Float] = []
        var concealed: ArraySlice<Float> = []
        for (i, p) in packets.enumerated() {
            if i == 25 {
                let frame = try decoder.concealLoss()
                #expect(frame.samplesPerChannel == 960)
                let start = output.count
                output += frame.samples.map(\.normalized)
                concealed = output[start...]
            } else {
                output += try decoder.decode(p.data).samples.map(\.normalized)
            }
        }
        #expect(output.count == 50 * 960)
        let levelAround = SignalAnalysis.rms(output[(24 * 960)..<(25 * 960)])
        let levelConcealed = SignalAnalysis.rms(concealed)
        #expect(levelConcealed > 0.5 * levelAround, "concealment \(levelConcealed) vs \(levelAround)")
    }

    /// FEC rebuilds a lost packet from the next one measurably better than concealment.
    @Test func fecRecoversBetterThanConcealment() throws {
        var config = OpusEncoderConfiguration()
        config.inbandFEC = true
        config.expectedPacketLossPercent = 20
        config.bitrate = 32_000
        // A sweeping chirp: concealment cannot extrapolate it, the FEC copy carries it.
        var chirp = ToneGenerator.chirp(from: 300, to: 1500, seconds: 0.37, amplitude: 0.5)
        let (reference, packets) = try Self.encode(&chirp, frames: 150, configuration: config)
        let lost = Set(stride(from: 20, to: 140, by: 7))
        let lag = try OpusEncoder(configuration: config).lookahead

        func decode(useFEC: Bool) throws -> [Float] {
            let decoder = try OpusDecoder()
            var output: [Float] = []
            for (i, p) in packets.enumerated() {
                if lost.contains(i) {
                    let frame =
                        useFEC ? try decoder.recoverLoss(using: packets[i + 1].data) : try decoder.concealLoss()
                    output += frame.samples.map(\.normalized)
                } else {
                    output += try decoder.decode(p.data).samples.map(\.normalized)
                }
            }
            return output
        }
        func errorInLostFrames(_ output: [Float]) -> Double {
            var signal = 0.0
            var noise = 0.0
            for i in lost {
                for n in (i * 960)..<((i + 1) * 960) {
                    let s = Double(reference[n])
                    signal += s * s
                    noise += (Double(output[n + lag]) - s) * (Double(output[n + lag]) - s)
                }
            }
            return 10 * log10(signal / noise)
        }
        let withFEC = try decode(useFEC: true)
        let withPLC = try decode(useFEC: false)
        #expect(withFEC.count == packets.count * 960)
        let fecSNR = errorInLostFrames(withFEC)
        let plcSNR = errorInLostFrames(withPLC)
        print("Opus lost frames: FEC \(fecSNR) dB, PLC \(plcSNR) dB")
        #expect(fecSNR > plcSNR + 3, "FEC \(fecSNR) dB should beat PLC \(plcSNR) dB by 3 dB")
    }

    @Test func stereoAndFrameDurations() throws {
        for ms in [10, 20, 40, 60] {
            var config = OpusEncoderConfiguration()
            config.channels = 2
            config.frameDurationMicroseconds = ms * 1000
            var tone = ToneGenerator(frequency: 600, sampleRate: 48_000, channels: 2)
            let (_, packets) = try Self.encode(&tone, frames: 5, configuration: config)
            let info = try OpusPacket(packets[4].data)
            #expect(info.samplesPerChannel48k == ms * 48)
            #expect(info.isStereo)
            let decoder = try OpusDecoder(sampleRate: 24_000, channels: 2)
            let frame = try decoder.decode(packets[4].data)
            #expect(frame.samplesPerChannel == ms * 24)
            #expect(frame.samples.count == ms * 48)
        }
    }

    @Test func dtxSendsTinyPacketsForSilence() throws {
        var config = OpusEncoderConfiguration()
        config.dtx = true
        let encoder = try OpusEncoder(configuration: config)
        var tiny = 0
        for i in 0..<50 {
            let silence = AudioFrame<Int16>(
                silenceOf: 960, sampleRate: 48_000, channels: 1,
                timestamp: .init(value: Int64(i) * 960, timescale: 48_000))
            if OpusPacket.isDiscontinuousTransmission(try encoder.encode(silence).data) { tiny += 1 }
        }
        #expect(tiny > 30)
    }

    @Test func wrongFrameSizesAreTypedErrors() throws {
        let encoder = try OpusEncoder()
        let short = AudioFrame<Int16>(silenceOf: 900, sampleRate: 48_000, channels: 1)
        #expect(throws: OpusError.invalidFrameSize(samplesPerChannel: 900, sampleRate: 48_000, channels: 1)) {
            try encoder.encode(short)
        }
        let wrongRate = AudioFrame<Int16>(silenceOf: 320, sampleRate: 16_000, channels: 1)
        #expect(throws: OpusError.self) { try encoder.encode(wrongRate) }
        let stereo = AudioFrame<Float>(silenceOf: 960, sampleRate: 48_000, channels: 2)
        #expect(throws: OpusError.self) { try encoder.encode(stereo) }
        var bad = OpusEncoderConfiguration()
        bad.frameDurationMicroseconds = 30_000
        #expect(throws: OpusError.self) { try OpusEncoder(configuration: bad) }
        #expect(throws: OpusError.self) { try OpusDecoder(sampleRate: 44_100) }
    }

    @Test func randomBytesNeverCrashTheDecoder() throws {
        let decoder = try OpusDecoder()
        var rng = SplitMix64(seed: 7)
        var rejected = 0
        for _ in 0..<2000 {
            let count = Int(rng.next() % 300)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            do {
                let frame = try decoder.decode(bytes)
                #expect(frame.samplesPerChannel <= 5760)
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > 0)
        #expect(throws: OpusError.invalidPacket(reason: "empty packet")) { try decoder.decode([]) }
    }

    /// The framing check written in Swift for one- and two-frame packets gives libopus's
    /// parser's answer — accepted or refused, and the duration — for every TOC byte and
    /// for random and boundary lengths, including the 1275-byte frame limit and the
    /// two-byte frame lengths of code 2.
    @Test func framingCheckAgreesWithLibopus() {
        var rng = SplitMix64(seed: 11)
        var checked = 0
        var accepted = 0
        var lengths = Array(0..<8) + [251, 252, 253, 254, 255, 256, 1275, 1276, 1277, 2550, 2551, 2552, 2553]
        lengths += (0..<40).map { _ in Int(rng.next() % 2600) }
        for toc in 0...255 where toc & 0x03 != 3 {
            for length in lengths {
                for variant in 0..<4 {
                    var packet = [UInt8(toc)] + (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    if toc & 0x03 == 2, packet.count > 2 {
                        // Frame-length bytes around the one- and two-byte boundary.
                        packet[1] = [UInt8(251), 252, 255, UInt8(truncatingIfNeeded: rng.next())][variant]
                    }
                    let swift = try? OpusPacket.checkFraming(packet[...])
                    let libopus = try? OpusPacket.checkFramingWithLibopus(packet[...])
                    #expect(swift == libopus, "TOC \(toc), \(packet.count) bytes")
                    checked += 1
                    if swift != nil { accepted += 1 }
                }
            }
        }
        #expect(checked > 10_000 && accepted > 1_000 && accepted < checked)
    }

    /// What a packet's TOC and framing say — frame duration by configuration (RFC 6716
    /// Table 2) and frame count, for codes 0 to 3 (code 3: a count byte, constant-size frames).
    @Test func packetInfoFromTOCAndFraming() throws {
        let durations = [
            10_000, 20_000, 40_000, 60_000, 10_000, 20_000, 40_000, 60_000, 10_000, 20_000, 40_000, 60_000,
            10_000, 20_000, 10_000, 20_000, 2_500, 5_000, 10_000, 20_000, 2_500, 5_000, 10_000, 20_000,
            2_500, 5_000, 10_000, 20_000, 2_500, 5_000, 10_000, 20_000,
        ]
        for configuration in 0..<32 {
            let toc = UInt8(configuration << 3)
            let one = try OpusPacket([toc, 1, 2, 3])
            #expect(one.frameDurationMicroseconds == durations[configuration] && one.frameCount == 1)
            let two = try OpusPacket([toc | 1, 1, 2, 3, 4])
            #expect(two.frameCount == 2 && two.samplesPerChannel48k == 2 * durations[configuration] * 48 / 1000)
            // Code 3, constant size: as many 2-byte frames as fit in 120 ms.
            let frames = min(48, 120_000 / durations[configuration])
            let three = try OpusPacket([toc | 3, UInt8(frames)] + [UInt8](repeating: 7, count: 2 * frames))
            #expect(three.frameCount == frames, "configuration \(configuration)")
            #expect(three.samplesPerChannel48k == frames * durations[configuration] * 48 / 1000)
        }
        #expect(try OpusPacket([0xF8, 1]).mode == .celt && OpusPacket([0xF8, 1]).bandwidth == .fullband)
        #expect(try OpusPacket([0x20, 1]).mode == .silk && OpusPacket([0x20, 1]).bandwidth == .mediumband)
        #expect(try OpusPacket([0x68, 1]).mode == .hybrid && OpusPacket([0x68, 1]).bandwidth == .superWideband)
    }
}
