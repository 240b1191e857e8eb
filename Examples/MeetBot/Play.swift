import ArgumentParser
import Codec
import Foundation
import RoomClient
import Signaling
import Transport

/// `meet-bot play`: publishes media into a room — an announcer. WAV (8/12/16/24/48 kHz)
/// and Ogg Opus files go out as the microphone track, IVF (VP8) files as the camera
/// track, each paced in real time; `--tone` adds a generated sine.
struct Play: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish audio/video files into a room.")

    @OptionGroup var join: RoomOptionsGroup

    @Argument(help: "Files to play: .wav, .opus/.ogg (Ogg Opus), .ivf (VP8).")
    var files: [String] = []

    @Option(help: "Also send a sine tone of this frequency (Hz).")
    var tone: Double?

    @Flag(help: "Start the files again when they end.")
    var loop = false

    @Option(help: "Stop after this many seconds (default: when the files end, or on SIGINT/SIGTERM).")
    var duration: Double?

    func validate() throws {
        if files.isEmpty && tone == nil { throw ValidationError("give files to play, or --tone") }
        for f in files
        where !["wav", "opus", "ogg", "ivf"].contains(URL(fileURLWithPath: f).pathExtension.lowercased()) {
            throw ValidationError("unsupported file \(f): .wav, .opus, .ogg or .ivf")
        }
    }

    func run() async throws {
        let audioFiles = files.filter { !$0.lowercased().hasSuffix(".ivf") }
        let videoFiles = files.filter { $0.lowercased().hasSuffix(".ivf") }
        // Read everything first: a bad file fails before joining.
        let audio = try audioFiles.map(AudioSource.init(path:)) + (tone.map { [AudioSource.tone($0)] } ?? [])
        let video = try videoFiles.map { path in
            let reader = try IVFReader(path: path)
            var frames: [EncodedFrame] = []
            while let f = try reader.nextFrame() { frames.append(f) }
            return frames
        }
        let stop = StopSignal()
        let room = try await join.join(options: try join.roomOptions())
        var wanted: [(kind: MediaKind, source: TrackSource)] = []
        if !audio.isEmpty { wanted.append((.audio, .microphone)) }
        if !video.isEmpty { wanted.append((.video, .camera)) }
        let tracks = try await room.publish(wanted)
        log("meet-bot: playing into room \(join.room) as \(room.localParticipantID)")
        let senders = Task {
            await withTaskGroup(of: Void.self) { group in
                if let track = tracks.first(where: { $0.kind == .audio }) {
                    group.addTask { await Self.playAudio(audio, on: track, room: room, loop: loop) }
                }
                if let track = tracks.first(where: { $0.kind == .video }) {
                    group.addTask { await Self.playVideo(video, on: track, room: room, loop: loop) }
                }
            }
        }
        // Stop on a signal or after --duration; otherwise when the files end.
        let stopper = Task {
            await stop.wait(timeout: duration.map { .milliseconds(Int($0 * 1000)) })
            senders.cancel()
        }
        await senders.value
        stopper.cancel()
        await room.leave()
        log("meet-bot: left the room")
    }

    /// What plays as the microphone.
    enum AudioSource: Sendable {
        case pcm(AudioFrame<Int16>)
        case opus([[UInt8]])
        case tone(Double)

        init(path: String) throws {
            if path.lowercased().hasSuffix(".wav") {
                let wav = try WAVReader(path: path)
                self = .pcm(AudioFrame(samples: wav.samples, sampleRate: wav.sampleRate, channels: wav.channels))
            } else {
                self = .opus(try OggOpusReader(path: path).packets)
            }
        }
    }

    /// Sends the audio sources one after the other, 20 ms at a time, paced on the clock.
    static func playAudio(_ sources: [AudioSource], on track: LocalTrack, room: Room, loop: Bool) async {
        let start = ContinuousClock.now
        var sent = Duration.zero
        func pace(_ d: Duration) async {
            sent += d
            try? await Task.sleep(until: start + sent)
        }
        repeat {
            for source in sources {
                switch source {
                case .pcm(let pcm):
                    let block = pcm.sampleRate / 50 * pcm.channels
                    var i = 0
                    while i < pcm.samples.count, !Task.isCancelled {
                        let end = min(i + block, pcm.samples.count)
                        let frame = AudioFrame(
                            samples: Array(pcm.samples[i..<end]), sampleRate: pcm.sampleRate, channels: pcm.channels)
                        try? await room.send(audio: frame, on: track)
                        i = end
                        await pace(.milliseconds(20))
                    }
                case .opus(let packets):
                    var timestamp: Int64 = 0
                    for p in packets where !Task.isCancelled {
                        let samples = (try? OpusPacket(p).samplesPerChannel48k) ?? 960
                        let frame = EncodedFrame(
                            codec: .opus, data: p, timestamp: MediaTime(value: timestamp, timescale: 48_000),
                            isKeyframe: true)
                        try? await room.send(frame, on: track)
                        timestamp += Int64(samples)
                        await pace(.microseconds(samples * 1000 / 48))
                    }
                case .tone(let frequency):
                    var phase = 0.0
                    while !Task.isCancelled {
                        let samples = (0..<960).map { _ -> Int16 in
                            phase += 2 * Double.pi * frequency / 48_000
                            return Int16(9000 * sin(phase))
                        }
                        try? await room.send(
                            audio: AudioFrame(samples: samples, sampleRate: 48_000, channels: 1), on: track)
                        await pace(.milliseconds(20))
                    }
                }
            }
        } while loop && !Task.isCancelled
    }

    /// Sends the IVF files' frames at their own timestamps.
    static func playVideo(_ files: [[EncodedFrame]], on track: LocalTrack, room: Room, loop: Bool) async {
        var offset = MediaTime(value: 0, timescale: 90_000)
        let start = ContinuousClock.now
        repeat {
            for frames in files {
                guard let first = frames.first else { continue }
                let base = first.timestamp.converted(to: 90_000).value
                var last: Int64 = 0
                for var f in frames where !Task.isCancelled {
                    let t = f.timestamp.converted(to: 90_000).value - base
                    last = t
                    f.timestamp = MediaTime(value: offset.value + t, timescale: 90_000)
                    try? await Task.sleep(until: start + .microseconds((offset.value + t) * 100 / 9))
                    try? await room.send(f, on: track)
                }
                offset.value += last + 3000
            }
        } while loop && !Task.isCancelled
    }
}
