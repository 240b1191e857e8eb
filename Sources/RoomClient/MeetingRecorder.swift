import Codec
import Foundation
import Synchronization
import Transport

/// Records a meeting from a ``Room``'s events: per remote participant a WAV of their
/// decoded audio (one file per speaker — diarization for free), an Ogg Opus of the
/// original packets and an IVF of each video track, plus `timeline.jsonl` (joins, leaves,
/// tracks, mutes, talking, and where each file starts).
///
/// Files are per participant *identity* (``ParticipantInfo/identity``: LiveKit's stable
/// identity, Janus's participant id), named `<name>-<identity>`: someone who drops out and
/// comes back with a new participant id goes on in the same files (the WAV keeps its
/// place on the timeline, with silence for the time away).
///
/// Every file of a recording shares one timeline, in media time: a WAV sample `n` is
/// `n / rate` seconds after the recording started, whatever the network did. Audio is
/// placed by its RTP-derived timestamps through a ``MediaTimeline`` (anchored once per
/// stream, following clock drift, and aligned with the other speakers by their sender
/// reports when their senders share a clock), so a stall that delivers speech late and in a burst
/// moves nothing; silence is written only where the media itself has a gap (the speaker
/// was silent, muted, or a loss too long to conceal); lost packets are concealed by the
/// decoder. Every WAV ends at the instant the recording stopped. The Ogg Opus and IVF
/// files hold their packets as received; `timeline.jsonl` gives the recording time of each
/// one's first frame (`{"event":"file-start","file":…,"start":seconds}`).
///
/// The caller says when each event arrived, on the recording's clock (time since it
/// started) — a bot passes the elapsed wall-clock time, a test its virtual time:
///
/// ```swift
/// let recorder = try MeetingRecorder(folder: "out/meeting")
/// let start = ContinuousClock.now
/// for await event in room.events { recorder.handle(event, at: ContinuousClock.now - start) }
/// recorder.stop(at: ContinuousClock.now - start)
/// let files = recorder.finish()
/// ```
///
/// Audio events must be decoded PCM (``RoomOptions/audioOutput`` `.decoded` or `.both`),
/// encoded audio events feed the Ogg Opus files, encoded video events the IVF files.
/// Thread-safe: events from one task, ``statusLine(at:)`` from another.
public final class MeetingRecorder: Sendable {
    /// Counters of a recording.
    public struct Statistics: Sendable, Equatable {
        /// Silence written into WAVs where the media had gaps, in seconds.
        public var silenceSeconds: Double = 0
        /// Audio dropped because it overlapped what was already written (a sender clock
        /// running fast, by up to the drift tolerance at a time), in seconds.
        public var overlapSeconds: Double = 0
        /// Drift corrections and re-anchorings of the audio timeline.
        public var timeline = MediaTimeline.Statistics()
        /// Files that could not be created or written (a full disk, a removed folder),
        /// and the last such error: a recording that lost data says so.
        public var fileErrors = 0
        /// The last file error, described.
        public var lastFileError: String?
    }

    /// A class: the recorder updates one per packet, in place (as a value, each update
    /// copied it out of the table and back).
    private final class Speaker {
        var name: String
        var present = true
        var wav: WAVWriter?
        var wavRate = 0
        var samplesWritten = 0
        /// Blocks waiting for their stream (a participant id's) to be anchored, with their
        /// arrival.
        var pending: [(AudioFrame<Int16>, Duration, stream: String)] = []
        var ogg: OggOpusWriter?
        /// The Ogg Opus file's name until its start is in the timeline.
        var oggUnplaced: String?
        var ivf: [String: IVFWriter] = [:]
        /// Per video track, the IVF file's name and its first frame's time, until its start
        /// is in the timeline.
        var ivfUnplaced: [String: (file: String, first: MediaTime)] = [:]

        init(name: String) { self.name = name }
    }

    private struct State {
        /// By identity.
        var speakers: [String: Speaker] = [:]
        /// The identity of each participant id seen joining.
        var identities: [String: String] = [:]
        /// The identity and speaker of each participant id whose media came: one lookup a
        /// block instead of two.
        var byParticipant: [String: (identity: String, speaker: Speaker)] = [:]
        var timeline: FileHandle
        var files: [String] = []
        var media = MediaTimeline()
        var bytesThisSecond = 0
        var lastRate = 0
        var lastRateAt: Duration = .zero
        var stoppedAt: Duration?
        var statistics = Statistics()
    }

    private let state: Mutex<State>
    private let folder: String

    /// A recording into `folder` (created if missing); `timeline.jsonl` is opened at once.
    /// - Parameter timeline: how audio streams are anchored and followed.
    public init(folder: String, timeline: MediaTimeline.Configuration = .init()) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        self.folder = folder
        let path = folder + "/timeline.jsonl"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        state = Mutex(State(timeline: handle, files: [path], media: MediaTimeline(configuration: timeline)))
    }

    /// Counters so far.
    public var statistics: Statistics {
        state.withLock { s in
            var out = s.statistics
            out.timeline = s.media.statistics
            return out
        }
    }

    /// Appends a line to `timeline.jsonl` with `t`, the recording time in seconds.
    public func note(_ fields: [String: JSONValue], at time: Duration) {
        state.withLock { s in Self.note(fields, at: time, in: &s) }
    }

    private static func note(_ fields: [String: JSONValue], at time: Duration, in s: inout State) {
        var line = fields
        line["t"] = .double((time.seconds * 1000).rounded() / 1000)
        _ = try? s.timeline.write(contentsOf: Data((JSONValue.object(line).serialized + "\n").utf8))
    }

    /// Takes one room event that arrived at `time` (since the recording started).
    /// Events after ``stop(at:)`` are ignored.
    public func handle(_ event: RoomEvent, at time: Duration, recordVideo: Bool = true) {
        state.withLock { s in
            guard s.stoppedAt == nil else { return }
            switch event {
            case .participantJoined(let p):
                s.identities[p.id] = p.identity
                s.byParticipant[p.id] = nil
                if s.speakers[p.identity] == nil {
                    s.speakers[p.identity] = Speaker(name: p.name)
                } else {
                    s.speakers[p.identity]?.present = true  // back, with a new id: same files
                }
                Self.note(
                    [
                        "event": "joined", "participant": .string(p.id), "name": .string(p.name),
                        "identity": .string(p.identity),
                    ], at: time, in: &s)
            case .participantLeft(let id, let reason):
                s.speakers[s.identities[id] ?? id]?.present = false
                s.byParticipant[id] = nil
                Self.note(
                    ["event": "left", "participant": .string(id), "reason": reason.map { .string($0) } ?? .null],
                    at: time, in: &s)
            case .trackPublished(let id, let t):
                Self.note(
                    [
                        "event": "track-published", "participant": .string(id), "track": .string(t.id),
                        "kind": .string(t.kind.rawValue), "source": .string(t.source.rawValue),
                    ], at: time, in: &s)
            case .trackUnpublished(let id, let track):
                Self.note(
                    ["event": "track-unpublished", "participant": .string(id), "track": .string(track)], at: time,
                    in: &s)
            case .trackMuted(let id, let track, let muted):
                Self.note(
                    [
                        "event": .string(muted ? "muted" : "unmuted"), "participant": .string(id),
                        "track": .string(track),
                    ],
                    at: time, in: &s)
            case .trackSubscribed(let id, let t):
                Self.note(
                    ["event": "track-subscribed", "participant": .string(id), "track": .string(t.id)], at: time, in: &s)
            case .speaking(let id, let on):
                Self.note(
                    ["event": .string(on ? "talking" : "stopped-talking"), "participant": .string(id)], at: time, in: &s
                )
            case .audio(let id, _, let pcm):
                audio(pcm, of: id, at: time, in: &s)
            case .senderReport(let id, _, let clock):
                // Aligns this speaker with others whose senders share its clock.
                if let media = clock.mediaTime {
                    s.media.senderReport(id, mediaTime: media, wallClock: clock.wallClock)
                }
            case .encoded(let id, let track, let frame):
                encoded(frame, of: id, track: track, video: recordVideo, at: time, in: &s)
            case .disconnected(let reason):
                Self.note(["event": "disconnected", "reason": .string(reason)], at: time, in: &s)
            case .reconnecting(let reason):
                Self.note(["event": "reconnecting", "reason": .string(reason)], at: time, in: &s)
            case .reconnected:
                Self.note(["event": "reconnected"], at: time, in: &s)
            case .transcription(let t):
                // Subtitles: the final version of each segment.
                for segment in t.segments where segment.isFinal {
                    Self.note(
                        [
                            "event": "subtitle", "identity": .string(t.speakerIdentity), "track": .string(t.trackID),
                            "id": .string(segment.id), "text": .string(segment.text),
                            "language": .string(segment.language),
                        ], at: time, in: &s)
                }
            case .chat(let message):
                Self.note(
                    [
                        "event": .string(message.isEdit ? "chat-edited" : "chat"), "id": .string(message.id),
                        "participant": message.participantID.map { .string($0) } ?? .null,
                        "identity": .string(message.identity), "text": .string(message.text),
                    ], at: time, in: &s)
            case .reaction(let id, let identity, let reaction):
                Self.note(
                    [
                        "event": "reaction", "participant": id.map { .string($0) } ?? .null,
                        "identity": .string(identity), "emoji": .string(reaction.rawValue),
                    ], at: time, in: &s)
            case .handRaised(let id, let at):
                Self.note(
                    ["event": .string(at == nil ? "hand-lowered" : "hand-raised"), "participant": .string(id)],
                    at: time,
                    in: &s)
            default: break
            }
        }
    }

    /// The speaker of identity `key`, added if new.
    private static func speaker(_ key: String, in s: inout State) -> Speaker {
        if let speaker = s.speakers[key] { return speaker }
        let speaker = Speaker(name: "")
        s.speakers[key] = speaker
        return speaker
    }

    /// The identity (the id itself when it was not seen joining) and speaker of participant
    /// `id`.
    private static func speaker(of id: String, in s: inout State) -> (identity: String, speaker: Speaker) {
        if let known = s.byParticipant[id] { return known }
        let key = s.identities[id] ?? id
        let found = (key, speaker(key, in: &s))
        s.byParticipant[id] = found
        return found
    }

    /// Runs a file operation, counting its failure instead of dropping it silently.
    private static func file<T>(_ s: inout State, _ operation: () throws -> T) -> T? {
        do {
            return try operation()
        } catch {
            s.statistics.fileErrors += 1
            s.statistics.lastFileError = "\(error)"
            return nil
        }
    }

    /// `<name>-<identity>`, both made safe for a file name.
    private func fileName(_ identity: String, _ name: String) -> String {
        func safe(_ text: String) -> String { String(text.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }) }
        let shown = safe(name)
        return folder + "/" + (shown.isEmpty ? "participant" : shown) + "-" + safe(identity)
    }

    // MARK: audio on the shared timeline

    /// A block of participant `id`'s audio: into its identity's WAV, placed by the
    /// timeline of its own stream (a participant back with a new id is a new stream).
    private func audio(_ pcm: AudioFrame<Int16>, of id: String, at time: Duration, in s: inout State) {
        let (key, speaker) = Self.speaker(of: id, in: &s)
        if speaker.wav == nil {
            let path = fileName(key, speaker.name) + ".wav"
            speaker.wav = Self.file(&s) {
                try WAVWriter(path: path, sampleRate: pcm.sampleRate, channels: pcm.channels)
            }
            speaker.wavRate = pcm.sampleRate
            s.files.append(path)
        }
        switch s.media.place(id, start: pcm.timestamp, duration: pcm.duration, arrival: time) {
        case .settling:
            speaker.pending.append((pcm, time, id))
        case .at(let position):
            let pending = speaker.pending
            speaker.pending = []
            for (block, arrival, stream) in pending {
                if let p = s.media.position(of: stream, at: block.timestamp) {
                    write(block, at: p, to: speaker, in: &s)
                } else {
                    speaker.pending.append((block, arrival, stream))
                }
            }
            write(pcm, at: position, to: speaker, in: &s)
            if let file = speaker.oggUnplaced, let start = s.media.position(of: id, at: .zero) {
                speaker.oggUnplaced = nil
                Self.note(
                    ["event": "file-start", "file": .string(file), "start": .double(start.seconds)], at: time, in: &s)
            }
        }
    }

    /// Writes a block at `position`: silence first if the media had a gap, the overlapping
    /// head dropped if it starts before what is already written.
    private func write(_ pcm: AudioFrame<Int16>, at position: Duration, to speaker: Speaker, in s: inout State) {
        guard let wav = speaker.wav, pcm.sampleRate == speaker.wavRate, pcm.channels > 0 else { return }
        let rate = Double(speaker.wavRate)
        let index = Int((max(position, .zero).seconds * rate).rounded())
        // Nothing past the instant the recording stopped.
        let limit = s.stoppedAt.map { Int(($0.seconds * rate).rounded()) } ?? Int.max
        guard index < limit else { return }
        if index > speaker.samplesWritten {
            let gap = index - speaker.samplesWritten
            _ = Self.file(&s) { try wav.writeSilence(samplesPerChannel: gap) }
            speaker.samplesWritten = index
            s.statistics.silenceSeconds += Double(gap) / rate
        }
        let overlap = max(0, speaker.samplesWritten - index)
        let frames = min(pcm.samplesPerChannel, limit - index)
        if overlap >= frames {
            s.statistics.overlapSeconds += Double(frames) / rate
            return
        }
        s.statistics.overlapSeconds += Double(overlap) / rate
        if overlap == 0, frames == pcm.samplesPerChannel {
            _ = Self.file(&s) { try wav.write(pcm) }
        } else {
            _ = Self.file(&s) {
                try wav.write(samples: Array(pcm.samples[(overlap * pcm.channels)..<(frames * pcm.channels)]))
            }
        }
        speaker.samplesWritten += frames - overlap
    }

    // MARK: encoded media

    private func encoded(
        _ frame: EncodedFrame, of id: String, track: String, video: Bool, at time: Duration, in s: inout State
    ) {
        let (key, speaker) = Self.speaker(of: id, in: &s)
        s.bytesThisSecond += frame.data.count
        switch frame.codec {
        case .opus:
            if speaker.ogg == nil {
                // Channel mapping family 0 says mono or stereo: the packet's TOC tells.
                let channels = (try? OpusPacket(frame.data))?.isStereo == true ? 2 : 1
                let path = fileName(key, speaker.name) + ".opus"
                speaker.ogg = Self.file(&s) {
                    try OggOpusWriter(path: path, channels: channels, comments: ["TITLE=\(speaker.name)"])
                }
                if speaker.ogg != nil { speaker.oggUnplaced = (path as NSString).lastPathComponent }
                s.files.append(path)
            }
            if let ogg = speaker.ogg { _ = Self.file(&s) { try ogg.write(frame) } }
        case .vp8 where video:
            if speaker.ivf[track] == nil {
                // An IVF header needs the picture size: start at the first keyframe.
                guard let header = try? VP8FrameHeader(frame.data), let w = header.width, let h = header.height
                else { break }
                let path = fileName(key, speaker.name) + "-video\(track).ivf"
                speaker.ivf[track] = Self.file(&s) { try IVFWriter(path: path, width: w, height: h) }
                speaker.ivfUnplaced[track] = ((path as NSString).lastPathComponent, frame.timestamp)
                s.files.append(path)
            }
            if let ivf = speaker.ivf[track] { _ = Self.file(&s) { try ivf.write(frame) } }
            // The video track's own stream on the timeline, anchored like audio.
            let stream = id + "/video/" + track
            if let (file, first) = speaker.ivfUnplaced[track] {
                let placement = s.media.place(stream, start: frame.timestamp - first, duration: .zero, arrival: time)
                if case .at = placement, let start = s.media.position(of: stream, at: .zero) {
                    speaker.ivfUnplaced[track] = nil
                    Self.note(
                        ["event": "file-start", "file": .string(file), "start": .double(start.seconds)], at: time,
                        in: &s)
                }
            }
        case .vp8: break
        }
    }

    // MARK: status and end

    /// `[00:05] 2 participants · 96 kbit/s in · 7 files` at recording time `time`.
    public func statusLine(at time: Duration) -> String {
        let t = Int(time.seconds)
        return state.withLock { s in
            let seconds = (time - s.lastRateAt).seconds
            if seconds > 0 { s.lastRate = Int(Double(s.bytesThisSecond * 8) / seconds / 1000) }
            s.bytesThisSecond = 0
            s.lastRateAt = time
            return String(
                format: "[%02d:%02d] %d participants · %d kbit/s in · %d files", t / 60, t % 60,
                s.speakers.values.filter(\.present).count, s.lastRate, s.files.count)
        }
    }

    /// Ends the recording's timeline at `time`: later events are ignored, and every WAV
    /// ends exactly there.
    public func stop(at time: Duration) {
        state.withLock { s in
            guard s.stoppedAt == nil else { return }
            Self.note(["event": "stopping"], at: time, in: &s)
            s.stoppedAt = time
        }
    }

    /// Finalises every file (writing blocks still waiting for an anchor by arrival, and
    /// padding each WAV with silence to the stop instant); returns their paths.
    public func finish() -> [String] {
        state.withLock { s in
            let end = s.stoppedAt
            Self.note(["event": "stopped"], at: end ?? .zero, in: &s)
            for id in s.speakers.keys.sorted() {
                let speaker = s.speakers[id]!
                // A stream too short to be anchored: its blocks go where they arrived.
                for (block, arrival, stream) in speaker.pending {
                    let position =
                        s.media.position(of: stream, at: block.timestamp) ?? (arrival - block.duration.asDuration)
                    write(block, at: position, to: speaker, in: &s)
                }
                speaker.pending = []
                if let wav = speaker.wav, let end {
                    let total = Int(end.seconds * Double(speaker.wavRate))
                    if total > speaker.samplesWritten {
                        let missing = total - speaker.samplesWritten
                        _ = Self.file(&s) { try wav.writeSilence(samplesPerChannel: missing) }
                        speaker.samplesWritten = total
                    }
                }
                if let wav = speaker.wav { _ = Self.file(&s) { try wav.finish() } }
                if let ogg = speaker.ogg { _ = Self.file(&s) { try ogg.finish() } }
                for (_, ivf) in speaker.ivf { _ = Self.file(&s) { try ivf.finish() } }
            }
            try? s.timeline.close()
            return s.files
        }
    }
}
