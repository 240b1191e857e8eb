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
        // Read everything first: a bad file fails before joining.
        let sources = try files.map(MediaSource.file) + (tone.map { [MediaSource.tone($0)] } ?? [])
        let audio = sources.filter(\.isAudio)
        let video = sources.filter { !$0.isAudio }
        let stop = StopSignal()
        let room = try await join.join(options: try join.roomOptions())
        var wanted: [(kind: MediaKind, source: TrackSource)] = []
        if !audio.isEmpty { wanted.append((.audio, .microphone)) }
        if !video.isEmpty { wanted.append((.video, .camera)) }
        let tracks = try await room.publish(wanted)
        log("meet-bot: playing into room \(join.roomName(room)) as \(room.localParticipantID)")
        let senders = Task {
            await withTaskGroup(of: Void.self) { group in
                if let track = tracks.first(where: { $0.kind == .audio }) {
                    group.addTask { try? await room.play(audio, on: track, loop: loop) }
                }
                if let track = tracks.first(where: { $0.kind == .video }) {
                    group.addTask { try? await room.play(video, on: track, loop: loop) }
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
}
