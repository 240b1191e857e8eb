import ArgumentParser
import Codec
import Foundation
import RoomClient
import Signaling
import Synchronization
import Transport

/// `meet-bot record`: joins a room and writes, per remote participant, a 16 kHz mono WAV
/// (one file per speaker: diarization for free), an Ogg Opus of the original audio and an
/// IVF of each video track, plus `timeline.jsonl`. All files of one recording share its
/// timeline: a WAV starts at the bot's start, with silence wherever its speaker was not
/// heard. SIGINT or SIGTERM leaves the room and finalises every file.
struct Record: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record every participant of a room.")

    @OptionGroup var join: RoomOptionsGroup

    @Option(help: "The folder to write into (created).")
    var output: String = "recording"

    @Option(help: "Stop after this many seconds (default: until SIGINT/SIGTERM).")
    var duration: Double?

    @Flag(help: "Do not record video.")
    var noVideo = false

    func run() async throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let stop = StopSignal()
        var options = try join.roomOptions()
        options.audioOutput = .both(audioSampleRate: 16_000, audioChannels: 1)
        options.videoOutput = .encoded
        let room = try await join.join(options: options)
        let recorder = try Recorder(folder: output, start: .now)
        recorder.note(["event": "started", "room": .string(join.room), "self": .string(room.localParticipantID)])
        log("meet-bot: recording room \(join.room) into \(output) (Ctrl-C to stop)")

        let consumer = Task {
            for await event in room.events { recorder.handle(event, video: !noVideo) }
        }
        // On a terminal the status line rewrites itself; in a log it is one line a second.
        let live = isatty(STDERR_FILENO) == 1
        let status = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                if live {
                    Console.write("\r" + recorder.statusLine() + "  ", to: .standardError)
                } else {
                    log(recorder.statusLine())
                }
            }
            if live { Console.write("\n", to: .standardError) }
        }
        await stop.wait(timeout: duration.map { .milliseconds(Int($0 * 1000)) })
        status.cancel()
        await status.value
        recorder.stop()  // nothing after this instant is written, however long leaving takes
        await room.leave()
        await consumer.value
        let files = recorder.finish()
        log("meet-bot: left the room; wrote \(files.count) files:")
        for f in files { Console.write(f + "\n", to: .standardOutput) }
    }
}

/// Everything a recording holds; fed from the room's events (one task), read by the
/// status line (another), hence the lock.
final class Recorder: Sendable {
    private let state: Mutex<State>
    private let folder: String
    private let start: ContinuousClock.Instant

    private struct Speaker {
        var name: String
        var wav: WAVWriter?
        var samplesWritten = 0
        var ogg: OggOpusWriter?
        var ivf: [String: IVFWriter] = [:]
        var bytes = 0
    }

    private struct State {
        var speakers: [String: Speaker] = [:]
        var timeline: FileHandle
        var files: [String] = []
        var bytesThisSecond = 0
        var lastRate = 0
        var lastRateAt: ContinuousClock.Instant
        var stopped = false
    }

    init(folder: String, start: ContinuousClock.Instant) throws {
        self.folder = folder
        self.start = start
        let path = folder + "/timeline.jsonl"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        state = Mutex(State(timeline: handle, files: [path], lastRateAt: start))
    }

    /// Appends a timeline line with the time since the start.
    func note(_ fields: [String: JSONValue]) {
        var line = fields
        line["t"] = .double(elapsed(since: start))
        let text = JSONValue.object(line).serialized + "\n"
        state.withLock { _ = try? $0.timeline.write(contentsOf: Data(text.utf8)) }
    }

    private func fileName(_ id: String, _ name: String) -> String {
        let safe = name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        return folder + "/" + (safe.isEmpty ? "participant" : String(safe)) + "-" + id
    }

    /// Ends the recording's timeline: later events are not written.
    func stop() {
        note(["event": "stopping"])
        state.withLock { $0.stopped = true }
    }

    func handle(_ event: RoomEvent, video: Bool) {
        guard !state.withLock({ $0.stopped }) else { return }
        switch event {
        case .participantJoined(let p):
            state.withLock { $0.speakers[p.id] = Speaker(name: p.name) }
            note(["event": "joined", "participant": .string(p.id), "name": .string(p.name)])
        case .participantLeft(let id, let reason):
            note(["event": "left", "participant": .string(id), "reason": reason.map { .string($0) } ?? .null])
        case .trackPublished(let id, let t):
            note([
                "event": "track-published", "participant": .string(id), "track": .string(t.id),
                "kind": .string(t.kind.rawValue), "source": .string(t.source.rawValue),
            ])
        case .trackUnpublished(let id, let track):
            note(["event": "track-unpublished", "participant": .string(id), "track": .string(track)])
        case .trackMuted(let id, let track, let muted):
            note(["event": muted ? "muted" : "unmuted", "participant": .string(id), "track": .string(track)])
        case .trackSubscribed(let id, let t):
            note(["event": "track-subscribed", "participant": .string(id), "track": .string(t.id)])
        case .speaking(let id, let on):
            note(["event": on ? "talking" : "stopped-talking", "participant": .string(id)])
        case .audio(let id, _, let pcm):
            writePCM(pcm, of: id)
        case .encoded(let id, let track, let frame):
            write(frame, of: id, track: track, video: video)
        case .disconnected(let reason):
            note(["event": "disconnected", "reason": .string(reason)])
        default: break
        }
    }

    /// Writes 16 kHz PCM, first padding with silence up to where this speaker's audio
    /// belongs on the recording's timeline (arrival time), so that every WAV of a
    /// recording starts at the same instant and keeps its speaker's pauses.
    private func writePCM(_ pcm: AudioFrame<Int16>, of id: String) {
        let now = elapsed(since: start)
        state.withLock { s in
            var speaker = s.speakers[id] ?? Speaker(name: "")
            if speaker.wav == nil {
                let path = fileName(id, speaker.name) + ".wav"
                speaker.wav = try? WAVWriter(path: path, sampleRate: pcm.sampleRate, channels: pcm.channels)
                s.files.append(path)
            }
            // Where this block should start: its arrival, less its own length.
            let due = Int(now * Double(pcm.sampleRate)) - pcm.samplesPerChannel
            let lag = due - speaker.samplesWritten
            if lag > pcm.sampleRate / 5 {  // more than 200 ms missing: a pause, or before the first word
                try? speaker.wav?.writeSilence(samplesPerChannel: lag)
                speaker.samplesWritten += lag
            }
            try? speaker.wav?.write(pcm)
            speaker.samplesWritten += pcm.samplesPerChannel
            s.speakers[id] = speaker
        }
    }

    private func write(_ frame: EncodedFrame, of id: String, track: String, video: Bool) {
        state.withLock { s in
            var speaker = s.speakers[id] ?? Speaker(name: "")
            speaker.bytes += frame.data.count
            s.bytesThisSecond += frame.data.count
            switch frame.codec {
            case .opus:
                if speaker.ogg == nil {
                    let path = fileName(id, speaker.name) + ".opus"
                    speaker.ogg = try? OggOpusWriter(path: path, channels: 1, comments: ["TITLE=\(speaker.name)"])
                    s.files.append(path)
                }
                try? speaker.ogg?.write(frame)
            case .vp8 where video:
                if speaker.ivf[track] == nil {
                    // An IVF header needs the picture size: start at the first keyframe.
                    guard let header = try? VP8FrameHeader(frame.data), let w = header.width, let h = header.height
                    else { break }
                    let path = fileName(id, speaker.name) + "-video\(track).ivf"
                    speaker.ivf[track] = try? IVFWriter(path: path, width: w, height: h)
                    s.files.append(path)
                }
                try? speaker.ivf[track]?.write(frame)
            case .vp8: break
            }
            s.speakers[id] = speaker
        }
    }

    /// `[00:05] 2 participants · 96 kbit/s in · 7 files`
    func statusLine() -> String {
        let t = Int(elapsed(since: start))
        return state.withLock { s in
            let now = ContinuousClock.now
            let seconds = (now - s.lastRateAt).seconds
            if seconds > 0 { s.lastRate = Int(Double(s.bytesThisSecond * 8) / seconds / 1000) }
            s.bytesThisSecond = 0
            s.lastRateAt = now
            return String(
                format: "[%02d:%02d] %d participants · %d kbit/s in · %d files", t / 60, t % 60, s.speakers.count,
                s.lastRate, s.files.count)
        }
    }

    /// Finalises every file; returns their paths.
    func finish() -> [String] {
        note(["event": "stopped"])
        return state.withLock { s in
            for (_, speaker) in s.speakers {
                try? speaker.wav?.finish()
                try? speaker.ogg?.finish()
                for (_, ivf) in speaker.ivf { try? ivf.finish() }
            }
            try? s.timeline.close()
            return s.files
        }
    }
}
