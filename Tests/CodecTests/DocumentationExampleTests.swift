import Codec
import Foundation
import MeetKitTestSupport
import Testing

// The README's Codec example, compiled here and run below. The test checks that the
// README still shows exactly this code, so the two cannot drift apart.

// README-EXAMPLE-BEGIN
func codecTour(pcm: AudioFrame<Int16>, picture: VideoFrame, folder: String) throws {
    // Opus: 20 ms of 48 kHz mono in, one packet out; decode at 16 kHz for speech engines.
    let opus = try OpusEncoder()
    let packet = try opus.encode(pcm)
    let speech = try OpusDecoder(sampleRate: 16_000, channels: 1)
    let pcm16k = try speech.decode(packet.data)

    // VP8: an I420 picture in, a frame out, split into RTP payloads of at most 1200 bytes.
    let vp8 = try VP8Encoder(configuration: .init(width: picture.width, height: picture.height))
    guard let frame = try vp8.encode(picture) else { return }
    var packetizer = try VP8RTPPacketizer(maxPayloadSize: 1200)
    let fragments = try packetizer.packetize(frame)

    // The receiving side: reassemble out-of-order packets, never decode an incomplete frame.
    var assembler = VP8FrameAssembler()
    let decoder = try VP8Decoder()
    for (n, fragment) in fragments.enumerated().reversed() {
        let packet = RTPPayloadPacket(
            sequenceNumber: UInt16(n), timestamp: fragment.timestamp, marker: fragment.marker,
            payload: fragment.payload)
        for output in try assembler.insert(packet, now: .zero) + assembler.poll(now: .seconds(1)) {
            switch output {
            case .frame(let whole): _ = try decoder.decode(whole.encoded)
            case .incomplete: decoder.frameLost()  // and ask the sender for a keyframe
            }
        }
    }

    // Files: 16 kHz WAV for a transcriber, Ogg Opus and IVF for archives.
    let wav = try WAVWriter(path: folder + "/speaker.wav", sampleRate: 16_000, channels: 1)
    try wav.write(pcm16k)
    try wav.finish()
    let ogg = try OggOpusWriter(path: folder + "/speaker.opus", channels: 1, preSkip: opus.lookahead)
    try ogg.write(packet)
    try ogg.finish()
}
// README-EXAMPLE-END

@Suite("Documentation examples")
struct DocumentationExampleTests {
    @Test func readmeExampleRunsAndDecodes() throws {
        var tone = ToneGenerator(frequency: 440)
        let folder = try temporaryDirectory()
        try codecTour(
            pcm: tone.nextFrame(samplesPerChannel: 960),
            picture: TestPatternGenerator(width: 320, height: 240).frame(at: 0),
            folder: folder)
        #expect(try WAVReader(path: folder + "/speaker.wav").samplesPerChannel == 320)
        #expect(try OggOpusReader(path: folder + "/speaker.opus").packets.count == 1)
    }

    @Test func readmeShowsThisCode() throws {
        #expect(
            try ReadmeExample.isShown(testFile: #filePath, module: "Codec"),
            "README's Codec example differs from this file's")
    }
}
