import Codec
import Foundation

/// Media a published track can play, paced in real time by ``Room/play(_:on:loop:)``:
/// PCM (from a WAV file or anywhere), Ogg Opus packets, VP8 frames from an IVF file, or a
/// generated tone.
///
/// ```swift
/// let track = try await room.publish([(.audio, .microphone)])[0]
/// try await room.play([.file("announcement.wav")], on: track, loop: true)
/// ```
public enum MediaSource: Sendable {
    /// Raw audio (8, 12, 16, 24 or 48 kHz), sent through the Opus encoder in 20 ms blocks.
    case pcm(AudioFrame<Int16>)
    /// Opus packets (an Ogg Opus file's), sent as they are.
    case opus([[UInt8]])
    /// VP8 frames (an IVF file's), sent at their own timestamps.
    case vp8([EncodedFrame])
    /// A sine tone at this frequency (Hz), until stopped.
    case tone(Double)

    /// Whether it goes on an audio track.
    public var isAudio: Bool {
        if case .vp8 = self { false } else { true }
    }

    /// Reads a media file by its extension: `.wav`, `.opus`/`.ogg` (Ogg Opus), `.ivf` (VP8).
    /// - Throws: ``MediaFileError`` for a file that cannot be read or is malformed.
    public static func file(_ path: String) throws -> MediaSource {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "wav":
            let wav = try WAVReader(path: path)
            return .pcm(AudioFrame(samples: wav.samples, sampleRate: wav.sampleRate, channels: wav.channels))
        case "opus", "ogg":
            return .opus(try OggOpusReader(path: path).packets)
        case "ivf":
            let reader = try IVFReader(path: path)
            var frames: [EncodedFrame] = []
            while let f = try reader.nextFrame() { frames.append(f) }
            return .vp8(frames)
        default:
            throw MediaFileError.invalidFrame("\(path): not a .wav, .opus, .ogg or .ivf file")
        }
    }
}

extension Room {
    /// Plays `sources` one after the other on a published track, paced on the clock, and
    /// again from the start when `loop` is set. Returns when they end or the calling task is
    /// cancelled. Audio sources need an audio track, VP8 a video track.
    public func play(_ sources: [MediaSource], on track: LocalTrack, loop: Bool = false) async throws {
        let start = ContinuousClock.now
        var elapsed = Duration.zero
        func pace(_ d: Duration) async {
            elapsed += d
            try? await Task.sleep(until: start + elapsed)
        }
        repeat {
            for source in sources {
                guard source.isAudio == (track.kind == .audio) else { throw RoomError.unknownTrack(track.mid) }
                switch source {
                case .pcm(let pcm):
                    let block = max(1, pcm.sampleRate / 50) * pcm.channels
                    var i = 0
                    while i < pcm.samples.count, !Task.isCancelled {
                        let end = min(i + block, pcm.samples.count)
                        let frame = AudioFrame(
                            samples: Array(pcm.samples[i..<end]), sampleRate: pcm.sampleRate, channels: pcm.channels)
                        try await send(audio: frame, on: track)
                        i = end
                        await pace(.milliseconds(20))
                    }
                case .opus(let packets):
                    var timestamp: Int64 = 0
                    for p in packets where !Task.isCancelled {
                        let samples = (try? OpusPacket(p).samplesPerChannel48k) ?? 960
                        try await send(
                            EncodedFrame(
                                codec: .opus, data: p, timestamp: MediaTime(value: timestamp, timescale: 48_000),
                                isKeyframe: true), on: track)
                        timestamp += Int64(samples)
                        await pace(.microseconds(samples * 1000 / 48))
                    }
                case .vp8(let frames):
                    guard let first = frames.first else { continue }
                    let base = first.timestamp.converted(to: 90_000).value
                    let offset = elapsed
                    var last = Duration.zero
                    for var f in frames where !Task.isCancelled {
                        let t = f.timestamp.converted(to: 90_000).value - base
                        last = .microseconds(t * 100 / 9)
                        f.timestamp = MediaTime(value: t, timescale: 90_000)
                        try? await Task.sleep(until: start + offset + last)
                        try await send(f, on: track)
                    }
                    elapsed = offset + last + .milliseconds(33)
                case .tone(let frequency):
                    var phase = 0.0
                    while !Task.isCancelled {
                        let samples = (0..<960).map { _ -> Int16 in
                            phase += 2 * Double.pi * frequency / 48_000
                            return Int16(9000 * sin(phase))
                        }
                        try await send(audio: AudioFrame(samples: samples, sampleRate: 48_000, channels: 1), on: track)
                        await pace(.milliseconds(20))
                    }
                }
            }
        } while loop && !Task.isCancelled
    }
}
