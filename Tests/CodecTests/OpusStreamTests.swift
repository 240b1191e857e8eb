import Codec
import MeetKitTestSupport
import Testing

/// The stream encoder re-chunks PCM of any block length into 20 ms packets; the stream
/// decoder turns an RTP-ordered packet flow with losses, reordering and duplicates into
/// gap-free PCM.
@Suite("Opus streams")
struct OpusStreamTests {
    @Test func encoderRechunksUnevenBlocksWithContinuousTimestamps() throws {
        let stream = OpusStreamEncoder()
        var tone = ToneGenerator(frequency: 300, sampleRate: 16_000)
        var packets: [EncodedFrame] = []
        // 7 ms blocks at 16 kHz: 112 samples; 20 ms packets need 320.
        for _ in 0..<100 { packets += try stream.encode(tone.nextFrame(samplesPerChannel: 112)) }
        #expect(packets.count == 100 * 112 / 320)
        #expect(stream.bufferedSamplesPerChannel == 100 * 112 % 320)
        for (i, p) in packets.enumerated() {
            #expect(p.timestamp == MediaTime(value: Int64(i) * 960, timescale: 48_000))
            #expect(p.duration == MediaTime(value: 960, timescale: 48_000))
        }
        let bad = AudioFrame<Int16>(silenceOf: 441, sampleRate: 44_100, channels: 1)
        #expect(throws: OpusError.self) { try stream.encode(bad) }
    }

    @Test func decoderFillsLossesAndDropsLateAndDuplicatePackets() throws {
        let encoder = try OpusEncoder()
        var tone = ToneGenerator(frequency: 440)
        let packets = try (0..<50).map { _ in try encoder.encode(tone.nextFrame(samplesPerChannel: 960)).data }
        // Arrival order: 10 and 11 lost, 20 and 21 swapped, 30 twice.
        var order = Array(0..<50).filter { $0 != 10 && $0 != 11 }
        let i20 = order.firstIndex(of: 20)!
        order.swapAt(i20, i20 + 1)
        order.insert(30, at: order.firstIndex(of: 30)! + 1)
        let stream = try OpusStreamDecoder(sampleRate: 16_000, channels: 1)
        var out: [AudioFrame<Int16>] = []
        let base: UInt16 = 65_530  // the sequence numbers wrap on the way
        for n in order {
            out += stream.decode(
                packets[n], sequenceNumber: base &+ UInt16(n), rtpTimestamp: 4_000_000_000 &+ UInt32(n * 960))
        }
        #expect(stream.statistics.packetsDecoded == 47)
        #expect(stream.statistics.packetsConcealed == 3, "10, 11, and 20 (overtaken by 21)")
        #expect(stream.statistics.packetsLate == 2, "20 after 21, and the second 30")
        // Gap-free: exactly 50 × 20 ms at 16 kHz, stamped on one continuous timeline.
        #expect(out.reduce(0) { $0 + $1.samplesPerChannel } == 50 * 320)
        #expect(out.last?.timestamp == MediaTime(value: 49 * 320, timescale: 16_000))
        #expect(stream.decode([], sequenceNumber: base &+ 50, rtpTimestamp: 0).isEmpty)
        #expect(stream.statistics.packetsInvalid == 1)
    }
}
