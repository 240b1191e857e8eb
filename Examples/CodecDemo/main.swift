// codec-demo — MeetKit's Codec layer end to end on generated media.
//
// Encodes a tone to Ogg Opus and a moving test pattern to IVF (VP8), reads both files
// back, decodes them, sends the video through the RTP payload format with shuffled
// packets, and prints what it measured. Every file it writes is checked with ffprobe
// when ffprobe is installed.

import ArgumentParser
import Codec
import Foundation
import MeetKitTestSupport

@main
struct CodecDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec-demo",
        abstract: "Encode generated audio and video with MeetKit's Codec layer, write, read and decode them back.")

    @Option(help: "Folder for the files written.")
    var output = "out/codec-demo"

    @Option(help: "Seconds of media to generate.")
    var seconds = 5

    @Option(help: "Tone frequency in Hz.")
    var frequency = 1000.0

    @Option(help: "Video size as WIDTHxHEIGHT.")
    var size = "640x360"

    @Option(help: "Video bitrate in bit/s.")
    var videoBitrate = 1_000_000

    @Option(help: "Opus bitrate in bit/s.")
    var audioBitrate = 32_000

    mutating func run() throws {
        let parts = size.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
            throw ValidationError("--size must look like 640x360")
        }
        guard (1...3600).contains(seconds) else { throw ValidationError("--seconds must be 1…3600") }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        print("MeetKit codec demo: \(seconds) s of generated media into \(output)/")
        try audio()
        try video(width: parts[0], height: parts[1])
    }

    func audio() throws {
        var config = OpusEncoderConfiguration()
        config.bitrate = audioBitrate
        config.application = .audio
        let encoder = try OpusEncoder(configuration: config)
        let oggPath = output + "/tone.opus"
        let ogg = try OggOpusWriter(path: oggPath, channels: 1, preSkip: encoder.lookahead)
        var tone = ToneGenerator(frequency: frequency, amplitude: 0.5)
        var reference: [Float] = []
        let clock = ContinuousClock()
        var encodeTime = Duration.zero
        for _ in 0..<(seconds * 50) {
            let frame = tone.nextFrame(samplesPerChannel: 960)
            reference += frame.samples.map(\.normalized)
            let start = clock.now
            let packet = try encoder.encode(frame)
            encodeTime += clock.now - start
            try ogg.write(packet)
        }
        try ogg.finish()

        // Read the file back; decode at 48 kHz to measure, at 16 kHz for a speech engine.
        let file = try OggOpusReader(path: oggPath)
        let full = try OpusDecoder(sampleRate: 48_000, channels: 1)
        let speech = try OpusDecoder(sampleRate: 16_000, channels: 1)
        let wavPath = output + "/tone-16k.wav"
        let wav = try WAVWriter(path: wavPath, sampleRate: 16_000, channels: 1)
        var decoded: [Float] = []
        for packet in file.packets {
            decoded += try full.decode(packet).samples.map(\.normalized)
            try wav.write(try speech.decode(packet))
        }
        try wav.finish()
        let snr = SignalAnalysis.snr(reference: reference, output: decoded, maxLag: 1000, skip: 4800)
        let speechPCM = try WAVReader(path: wavPath).channel(0)
        let dominant = SignalAnalysis.dominantFrequency(
            in: Array(speechPCM.dropFirst(1600)), sampleRate: 16_000, range: 50...7000, step: 5)
        let perFrame = encodeTime / (seconds * 50)
        print(
            "audio  \(Int(frequency)) Hz tone → Opus \(audioBitrate / 1000) kbit/s, 20 ms → \(describe(oggPath)), "
                + "\(file.packets.count) packets, \(format(file.duration.seconds)) s")
        print(
            "       decoded back: SNR \(format(snr)) dB at 48 kHz; \(describe(wavPath)) at 16 kHz, "
                + "dominant \(Int(dominant)) Hz; encode \(micros(perFrame)) per frame")
    }

    func video(width: Int, height: Int) throws {
        var config = VP8EncoderConfiguration(width: width, height: height)
        config.bitrate = videoBitrate
        let encoder = try VP8Encoder(configuration: config)
        let ivfPath = output + "/pattern.ivf"
        let ivf = try IVFWriter(path: ivfPath, width: width, height: height, timebase: (1, 30))
        var pattern = TestPatternGenerator(width: width, height: height, frameRate: 30)
        var sources: [VideoFrame] = []
        var encoded: [EncodedFrame] = []
        let clock = ContinuousClock()
        var encodeTime = Duration.zero
        for i in 0..<(seconds * 30) {
            let picture = pattern.nextFrame()
            let start = clock.now
            // A keyframe every 2 s, as if a receiver asked (PLI).
            guard let frame = try encoder.encode(picture, forceKeyframe: i % 60 == 0) else { continue }
            encodeTime += clock.now - start
            sources.append(picture)
            encoded.append(frame)
            try ivf.write(frame)
        }
        try ivf.finish()

        let reader = try IVFReader(path: ivfPath)
        let decoder = try VP8Decoder()
        var psnr: [Double] = []
        var index = 0
        while let frame = try reader.nextFrame() {
            if let picture = try decoder.decode(frame) { psnr.append(SignalAnalysis.psnr(sources[index], picture)) }
            index += 1
        }
        let bytes = encoded.reduce(0) { $0 + $1.data.count }
        let kbps = Double(bytes * 8) / Double(seconds) / 1000
        print(
            "video  \(width)x\(height) pattern → VP8 \(videoBitrate / 1000) kbit/s → \(describe(ivfPath)), "
                + "\(encoded.count) frames (\(encoded.filter(\.isKeyframe).count) keyframes), \(Int(kbps)) kbit/s")
        print(
            "       decoded back: \(decoder.framesDecoded) frames, mean PSNR \(format(psnr.reduce(0, +) / Double(max(1, psnr.count)))) dB; "
                + "encode \(micros(encodeTime / max(1, encoded.count))) per frame")

        // RTP: packetize at MTU 1200, deliver in a scrambled order, reassemble.
        var packetizer = try VP8RTPPacketizer(maxPayloadSize: 1200)
        var packets: [RTPPayloadPacket] = []
        var seq: UInt16 = .random(in: 0...UInt16.max)
        for frame in encoded {
            for fragment in try packetizer.packetize(frame) {
                packets.append(
                    RTPPayloadPacket(
                        sequenceNumber: seq, timestamp: fragment.timestamp, marker: fragment.marker,
                        payload: fragment.payload))
                seq &+= 1
            }
        }
        var rng = SplitMix64(seed: 1)
        var scrambled = packets
        // Reorder within disjoint blocks of 16 packets: late by up to 15 packets.
        for start in stride(from: 0, to: scrambled.count, by: 16) {
            scrambled[start..<min(scrambled.count, start + 16)].shuffle(using: &rng)
        }
        var assembler = VP8FrameAssembler()
        var outputs: [VP8FrameAssembler.Output] = []
        for (i, p) in scrambled.enumerated() { outputs += try assembler.insert(p, now: .microseconds(200 * i)) }
        outputs += assembler.flush()
        let sent = Dictionary(uniqueKeysWithValues: encoded.map { ($0.timestamp.value, $0.data) })
        var exact = 0
        var received = 0
        for case .frame(let f) in outputs {
            received += 1
            if sent[f.encoded.timestamp.value] == f.encoded.data { exact += 1 }
        }
        print(
            "rtp    \(encoded.count) frames → \(packets.count) packets (MTU 1200) → reordered → "
                + "\(received) frames reassembled, \(exact) bit-exact")
        if exact != encoded.count { throw ExitCode.failure }
        probe([output + "/tone.opus", output + "/tone-16k.wav", ivfPath])
    }

    func probe(_ paths: [String]) {
        for path in paths {
            do {
                let r = try FFprobeReport.probe(path)
                let what =
                    r.width.map { "\($0)x\(r.height ?? 0)" }
                    ?? "\(r.channels ?? 0) ch \(r.sampleRate ?? 0) Hz"
                print(
                    "ffprobe \((path as NSString).lastPathComponent): \(r.codecName), \(what), \(format(r.duration ?? 0)) s"
                )
            } catch {
                print("ffprobe \((path as NSString).lastPathComponent): \(error)")
            }
        }
    }

    func describe(_ path: String) -> String {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        return "\((path as NSString).lastPathComponent) (\(size / 1024) KiB)"
    }

    func format(_ value: Double) -> String { String(format: "%.2f", value) }

    func micros(_ d: Duration) -> String {
        let (seconds, attoseconds) = d.components
        return "\(Int(seconds) * 1_000_000 + Int(attoseconds / 1_000_000_000_000)) µs"
    }
}
