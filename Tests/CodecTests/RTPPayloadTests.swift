import Codec
import MeetKitTestSupport
import Testing

@Suite("RTP payload formats")
struct RTPPayloadTests {
    /// Encoded VP8 frames of the moving pattern, with a forced keyframe at 0.
    static func vp8Frames(count: Int, width: Int = 640, height: Int = 360) throws -> [EncodedFrame] {
        var config = VP8EncoderConfiguration(width: width, height: height)
        config.bitrate = 1_500_000
        let encoder = try VP8Encoder(configuration: config)
        var pattern = TestPatternGenerator(width: width, height: height)
        return try (0..<count).map { _ in try #require(try encoder.encode(pattern.nextFrame())) }
    }

    /// Packetizes frames and numbers the packets from `firstSequence` (wrapping).
    static func packets(for frames: [EncodedFrame], mtu: Int, firstSequence: UInt16) throws -> [[RTPPayloadPacket]] {
        var packetizer = try VP8RTPPacketizer(maxPayloadSize: mtu, initialPictureID: 0x7FFE)
        var seq = firstSequence
        return try frames.map { frame in
            try packetizer.packetize(frame).map { fragment in
                defer { seq &+= 1 }
                return RTPPayloadPacket(
                    sequenceNumber: seq, timestamp: fragment.timestamp &+ 0xFFFF_0000, marker: fragment.marker,
                    payload: fragment.payload)
            }
        }
    }

    @Test func descriptorRoundTrips() throws {
        let cases: [VP8PayloadDescriptor] = [
            .init(startOfPartition: true),
            .init(nonReference: true, startOfPartition: false, partitionIndex: 5),
            .init(startOfPartition: true, pictureID: 0x1234),
            .init(startOfPartition: true, pictureID: 0x55, pictureIDIs15Bits: false),
            .init(
                startOfPartition: true, pictureID: 0x7FFF, tl0PicIndex: 9, temporalLayer: 2, layerSync: true,
                keyIndex: 17),
            .init(startOfPartition: false, keyIndex: 3),
        ]
        for d in cases {
            var bytes: [UInt8] = []
            d.write(to: &bytes)
            #expect(bytes.count == d.encodedLength)
            let (parsed, length) = try VP8PayloadDescriptor.parse(bytes + [0xAA])
            #expect(parsed == d)
            #expect(length == bytes.count)
        }
        // RFC 7741 §4.2 layout: X=1, S=1, I=1, M=1, PictureID 0x1234.
        var bytes: [UInt8] = []
        VP8PayloadDescriptor(startOfPartition: true, pictureID: 0x1234).write(to: &bytes)
        #expect(bytes == [0x90, 0x80, 0x92, 0x34])
    }

    @Test func truncatedDescriptorsAreTypedErrors() {
        #expect(throws: RTPPayloadError.emptyPayload) { try VP8PayloadDescriptor.parse([]) }
        #expect(throws: RTPPayloadError.truncatedDescriptor(needed: 2, actual: 1)) {
            try VP8PayloadDescriptor.parse([0x80])
        }
        #expect(throws: RTPPayloadError.truncatedDescriptor(needed: 4, actual: 3)) {
            try VP8PayloadDescriptor.parse([0x90, 0x80, 0x92])
        }
        #expect(throws: RTPPayloadError.noMediaAfterDescriptor) { try VP8PayloadDescriptor.parse([0x10]) }
        #expect(throws: RTPPayloadError.noMediaAfterDescriptor) {
            try VP8PayloadDescriptor.parse([0x90, 0x80, 0x92, 0x34])
        }
    }

    /// Frames fragmented at MTU 1200, shuffled, reassembled bit-exact, across a sequence
    /// number and timestamp wrap.
    @Test func shuffledPacketsReassembleBitExact() throws {
        let frames = try Self.vp8Frames(count: 30)
        let perFrame = try Self.packets(for: frames, mtu: 1200, firstSequence: 65_500)
        var all = perFrame.flatMap { $0 }
        #expect(all.allSatisfy { $0.payload.count <= 1200 })
        #expect(perFrame[0].count > 1, "the keyframe needs several packets")
        #expect(VP8PayloadDescriptor.isKeyframe(perFrame[0][0].payload))
        #expect(!VP8PayloadDescriptor.isKeyframe(perFrame[1][0].payload))
        // Shuffle within a sliding window of 12 packets: real reordering, not a full scramble.
        var rng = SplitMix64(seed: 3)
        for i in stride(from: 0, to: all.count - 12, by: 6) {
            all[i..<(i + 12)].shuffle(using: &rng)
        }
        var assembler = VP8FrameAssembler()
        var outputs: [VP8FrameAssembler.Output] = []
        for (i, p) in all.enumerated() {
            outputs += try assembler.insert(p, now: .milliseconds(i))
        }
        outputs += assembler.flush()
        let assembled = outputs.compactMap { if case .frame(let f) = $0 { f } else { nil } }
        #expect(assembled.count == frames.count)
        for (index, (got, sent)) in zip(assembled, frames).enumerated() {
            #expect(Bool(got.encoded.data == sent.data), "frame \(index) differs")
            #expect(got.encoded.isKeyframe == sent.isKeyframe)
        }
        #expect(assembled.map(\.pictureID) == (0..<30).map { UInt16((0x7FFE + $0) & 0x7FFF) })
        #expect(assembler.statistics.framesIncomplete == 0)
        // The reassembled frames decode.
        let decoder = try VP8Decoder()
        for f in assembled { #expect(try decoder.decode(f.encoded) != nil) }
    }

    /// One packet withheld: exactly that frame is reported incomplete, the others are whole.
    @Test func withheldPacketMakesItsFrameIncomplete() throws {
        let frames = try Self.vp8Frames(count: 10)
        let perFrame = try Self.packets(for: frames, mtu: 1200, firstSequence: 100)
        let victim = 4
        #expect(perFrame[victim].count >= 1)
        var all = perFrame.flatMap { $0 }
        let withheld = perFrame[victim][perFrame[victim].count / 2]
        all.removeAll { $0 == withheld }
        all.shuffle(using: &SplitMixHolder.rng)
        var assembler = VP8FrameAssembler()
        var outputs: [VP8FrameAssembler.Output] = []
        for p in all { outputs += try assembler.insert(p, now: .zero) }
        // Nothing waits forever: time passing gives the frame up.
        outputs += assembler.poll(now: .seconds(1))
        #expect(assembler.nextDeadline == nil)
        var whole = 0
        for output in outputs {
            switch output {
            case .frame(let f):
                whole += 1
                #expect(f.rtpTimestamp != withheld.timestamp)
            case .incomplete(let lost):
                #expect(lost.rtpTimestamp == withheld.timestamp)
                #expect(lost.packetsReceived == perFrame[victim].count - 1)
                if perFrame[victim].count > 2 { #expect(lost.packetsMissing == 1) }
            }
        }
        #expect(whole == 9)
        #expect(assembler.statistics.framesIncomplete == 1)
        // The withheld packet arriving now is late and dropped.
        #expect(try assembler.insert(withheld, now: .seconds(2)).isEmpty)
        #expect(assembler.statistics.packetsLate == 1)
    }

    /// A whole frame missing (all its packets) is seen from the sequence gap.
    @Test func wholeMissingFrameIsReported() throws {
        let frames = try Self.vp8Frames(count: 5, width: 160, height: 120)
        let perFrame = try Self.packets(for: frames, mtu: 1200, firstSequence: 0)
        var assembler = VP8FrameAssembler()
        var outputs: [VP8FrameAssembler.Output] = []
        for (i, group) in perFrame.enumerated() where i != 2 {
            for p in group { outputs += try assembler.insert(p, now: .milliseconds(33 * i)) }
        }
        outputs += assembler.poll(now: .seconds(1))
        let kinds = outputs.map { if case .frame = $0 { "F" } else { "L" } }
        #expect(kinds == ["F", "F", "L", "F", "F"])
        // Duplicates and garbage are counted, never assembled.
        #expect(try assembler.insert(perFrame[4][0], now: .seconds(1)).isEmpty)
        #expect(throws: RTPPayloadError.self) {
            try assembler.insert(
                RTPPayloadPacket(sequenceNumber: 9, timestamp: 1, marker: true, payload: [0x80]), now: .seconds(1))
        }
        #expect(assembler.statistics.packetsMalformed == 1)
    }

    /// The second frame's packets arrive before the first frame's: both come out, in order.
    @Test func reorderingAtStreamStart() throws {
        let frames = try Self.vp8Frames(count: 3, width: 160, height: 120)
        let perFrame = try Self.packets(for: frames, mtu: 200, firstSequence: 500)
        var assembler = VP8FrameAssembler()
        var outputs: [VP8FrameAssembler.Output] = []
        var t = Duration.zero
        for p in perFrame[1] + perFrame[0] + perFrame[2] {
            outputs += try assembler.insert(p, now: t)
            t += .milliseconds(1)
        }
        outputs += assembler.poll(now: t + .seconds(1))
        let timestamps = outputs.compactMap { if case .frame(let f) = $0 { f.rtpTimestamp } else { nil } }
        #expect(timestamps == perFrame.map { $0[0].timestamp })
        #expect(assembler.statistics.packetsLate == 0)
    }

    /// A whole keyframe is never held behind older frames: an older frame still missing a
    /// packet is given up at once, and a stream that starts with delta frames (its keyframe
    /// lost) is released when its next keyframe is whole — no reorder wait in either case.
    @Test func aWholeKeyframeIsNotHeldBehindOlderFrames() throws {
        let encoder = try VP8Encoder(configuration: .init(width: 160, height: 120))
        var pattern = TestPatternGenerator(width: 160, height: 120)
        var frames: [EncodedFrame] = []
        for i in 0..<6 {
            if i == 3 { encoder.requestKeyframe() }
            frames.append(try #require(try encoder.encode(pattern.nextFrame())))
        }
        #expect(frames.map(\.isKeyframe) == [true, false, false, true, false, false])
        let perFrame = try Self.packets(for: frames, mtu: 60, firstSequence: 100)
        let window = VP8FrameAssembler.Configuration().reorderWindow
        func kinds(_ outputs: [VP8FrameAssembler.Output]) -> [String] {
            outputs.map { if case .frame(let f) = $0 { f.encoded.isKeyframe ? "K" : "F" } else { "L" } }
        }

        // Frame 2 misses its last packet; keyframe 3 completes within the reorder window.
        var assembler = VP8FrameAssembler()
        var outputs: [VP8FrameAssembler.Output] = []
        for p in perFrame[0] + perFrame[1] + perFrame[2].dropLast() { outputs += try assembler.insert(p, now: .zero) }
        #expect(kinds(outputs) == ["K", "F"])
        outputs = []
        for p in perFrame[3] { outputs += try assembler.insert(p, now: window / 4) }
        #expect(kinds(outputs) == ["L", "K"], "frame 2 given up and keyframe 3 out at once")

        // A stream whose first keyframe never came: delta frames 1 and 2, then keyframe 3.
        assembler = VP8FrameAssembler()
        outputs = []
        for p in perFrame[1] + perFrame[2] + perFrame[3] { outputs += try assembler.insert(p, now: .zero) }
        #expect(kinds(outputs) == ["F", "F", "K"], "released when the keyframe is whole, not after the wait")
    }

    @Test func randomPayloadsNeverCrashTheAssembler() throws {
        var rng = SplitMix64(seed: 11)
        var assembler = VP8FrameAssembler()
        var malformed = 0
        for i in 0..<5000 {
            let count = Int(rng.next() % 40)
            let payload = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let packet = RTPPayloadPacket(
                sequenceNumber: UInt16(truncatingIfNeeded: rng.next()),
                timestamp: UInt32(truncatingIfNeeded: rng.next() % 5),
                marker: rng.next() % 2 == 0, payload: payload)
            do {
                for output in try assembler.insert(packet, now: .milliseconds(i)) {
                    if case .frame(let f) = output { #expect(!f.encoded.data.isEmpty) }
                }
            } catch {
                malformed += 1
            }
        }
        _ = assembler.flush()
        #expect(malformed == assembler.statistics.packetsMalformed)
        #expect(assembler.nextDeadline == nil)
    }

    @Test func opusPayloadFormat() throws {
        var config = OpusEncoderConfiguration()
        config.dtx = true
        let encoder = try OpusEncoder(configuration: config)
        var tone = ToneGenerator(frequency: 500)
        var packetizer = OpusRTPPacketizer()
        var sent: [RTPPayloadFragment] = []
        for i in 0..<150 {
            // 1 s of tone, 1 s of silence, 1 s of tone.
            var frame = tone.nextFrame(samplesPerChannel: 960)
            if (50..<100).contains(i) { frame.samples = [Int16](repeating: 0, count: 960) }
            if let fragment = packetizer.packetize(try encoder.encode(frame)) { sent.append(fragment) }
        }
        #expect(sent.count < 150, "DTX silence is not sent")
        // Markers start talkspurts: the first tone packet after the silence, and the comfort
        // noise updates DTX sends every 400 ms during silence; never inside the first tone.
        let markers = sent.filter(\.marker).map(\.timestamp)
        #expect(markers.contains(100 * 960))
        #expect(markers.allSatisfy { $0 > 50 * 960 && $0 <= 100 * 960 })
        let first = try OpusRTPDepacketizer.depacketize(
            RTPPayloadPacket(sequenceNumber: 1, timestamp: sent[0].timestamp, marker: false, payload: sent[0].payload))
        #expect(first.duration == MediaTime(value: 960, timescale: 48_000))
        #expect(throws: RTPPayloadError.emptyPayload) {
            try OpusRTPDepacketizer.depacketize(
                RTPPayloadPacket(sequenceNumber: 1, timestamp: 0, marker: false, payload: []))
        }
        // Code 3 packet claiming 49 frames: invalid per RFC 6716 §3.2.5.
        #expect(throws: RTPPayloadError.self) {
            try OpusRTPDepacketizer.depacketize(
                RTPPayloadPacket(sequenceNumber: 1, timestamp: 0, marker: false, payload: [0x03, 49]))
        }
    }

    @Test func sequenceUnwrapping() {
        var seq = SequenceUnwrapper(bits: 16)
        #expect(seq.unwrap(65_535) == 65_535)
        #expect(seq.unwrap(0) == 65_536)
        #expect(seq.unwrap(65_534) == 65_534)
        #expect(seq.unwrap(10) == 65_546)
        var ts = SequenceUnwrapper(bits: 32)
        #expect(ts.unwrap(10) == 10)
        #expect(ts.unwrap(UInt64(UInt32.max)) == -1)
    }
}

/// A shared deterministic generator for tests that shuffle once.
enum SplitMixHolder {
    nonisolated(unsafe) static var rng = SplitMix64(seed: 99)
}
