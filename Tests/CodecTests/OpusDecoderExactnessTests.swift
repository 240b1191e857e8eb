import CMeetKitShim
import COpus
import Foundation
import MeetKitTestSupport
import Testing

@testable import Codec

/// MeetKit's 16-bit decoding skips libopus's soft-clipping pass when no sample needs it
/// (`mk_opus_decode_int16`); what it hands out must stay what libopus's own `opus_decode`
/// gives, sample for sample, clipping or not.
@Suite("Opus 16-bit decoding matches libopus")
struct OpusDecoderExactnessTests {
    /// 20 ms stereo frames at 48 kHz: a full-scale square wave (its decoded overshoot lies
    /// beyond full scale, so soft clipping works) or a quiet tone.
    static func frames(loud: Bool, count: Int, start: Int) -> [AudioFrame<Int16>] {
        (0..<count).map { f in
            let samples = (0..<960).flatMap { i -> [Int16] in
                let t = (f + start) * 960 + i
                let phase = Double(t) * 2 * Double.pi * 440 / 48_000
                let tone = Int16(3000 * sin(phase))
                let left: Int16 = loud ? ((t / 60) % 2 == 0 ? .max : .min) : tone
                let right: Int16 = loud ? ((t / 44) % 2 == 0 ? .min : .max) : tone / 2
                return [left, right]
            }
            return AudioFrame(samples: samples, sampleRate: 48_000, channels: 2)
        }
    }

    /// Packets of quiet, loud (CELT at 128 kbit/s) and quiet again, then speech-mode
    /// packets carrying in-band FEC.
    static func packets() throws -> (music: [[UInt8]], fec: [[UInt8]]) {
        var music = OpusEncoderConfiguration()
        (music.channels, music.application, music.bitrate) = (2, .audio, 128_000)
        let encoder = try OpusEncoder(configuration: music)
        let input =
            frames(loud: false, count: 10, start: 0) + frames(loud: true, count: 20, start: 10)
            + frames(loud: false, count: 10, start: 30)
        var speech = OpusEncoderConfiguration()
        (speech.channels, speech.bitrate, speech.inbandFEC, speech.expectedPacketLossPercent) = (2, 24_000, true, 20)
        let fecEncoder = try OpusEncoder(configuration: speech)
        return (
            try input.map { try encoder.encode($0).data },
            try frames(loud: false, count: 10, start: 40).map { try fecEncoder.encode($0).data }
        )
    }

    @Test(arguments: [(48_000, 2), (48_000, 1), (24_000, 2), (16_000, 1)])
    func everyPathGivesLibopusSamples(rate: Int, channels: Int) throws {
        let (music, fec) = try Self.packets()
        let decoder = try OpusDecoder(sampleRate: rate, channels: channels)
        var error: Int32 = 0
        let reference = try #require(opus_decoder_create(Int32(rate), Int32(channels), &error))
        defer { opus_decoder_destroy(reference) }
        let frameSize = rate / 50
        func libopus(_ packet: [UInt8]?, fec: Bool = false) -> [Int16] {
            var pcm = [Int16](repeating: 0, count: frameSize * channels)
            let n =
                packet.map { p in opus_decode(reference, p, Int32(p.count), &pcm, Int32(frameSize), fec ? 1 : 0) }
                ?? opus_decode(reference, nil, 0, &pcm, Int32(frameSize), 0)
            return Array(pcm.prefix(max(0, Int(n)) * channels))
        }
        var compared = 0
        func expectSame(_ mine: AudioFrame<Int16>, _ theirs: [Int16], _ step: String) {
            #expect(mine.samples.count == frameSize * channels, "\(step)")
            // The first sample that differs, not two arrays of thousands.
            let differing = zip(mine.samples, theirs).enumerated().first { $0.element.0 != $0.element.1 }
            #expect(differing == nil, "\(step): sample \(differing?.offset ?? 0) differs from opus_decode's")
            #expect(mine.samples.count == theirs.count, "\(step)")
            compared += 1
        }
        for (i, p) in music.enumerated() { expectSame(try decoder.decode(p), libopus(p), "music packet \(i)") }
        expectSame(try decoder.decode(fec[0]), libopus(fec[0]), "speech packet 0")
        expectSame(try decoder.concealLoss(), libopus(nil), "concealment")
        expectSame(try decoder.recoverLoss(using: fec[2]), libopus(fec[2], fec: true), "FEC recovery")
        for (i, p) in fec.enumerated().dropFirst(2) { expectSame(try decoder.decode(p), libopus(p), "speech \(i)") }
        decoder.reset()
        _ = mk_opus_decoder_reset(reference)
        for (i, p) in music.enumerated().dropFirst(10).prefix(5) {
            expectSame(try decoder.decode(p), libopus(p), "after a reset, music packet \(i)")
        }
        #expect(compared == music.count + fec.count + 6)
    }

    /// The loud packets do make libopus soft-clip: decoded to float, they reach beyond full
    /// scale (else the test above would not test the clipping path).
    @Test func theLoudPacketsNeedSoftClipping() throws {
        let (music, _) = try Self.packets()
        let decoder = try OpusDecoder(sampleRate: 48_000, channels: 2)
        var peak: Float = 0
        for p in music { peak = max(peak, try decoder.decodeFloat(p).samples.map(abs).max() ?? 0) }
        #expect(peak > 1.05)
    }
}
