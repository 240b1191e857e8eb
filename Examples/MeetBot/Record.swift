import ArgumentParser
import Codec
import Foundation
import RoomClient
import Signaling
import Synchronization
import Transport

/// `meet-bot record`: joins a room and writes, per remote participant, a 16 kHz mono WAV
/// (one file per speaker: diarization for free), an Ogg Opus of the original audio and an
/// IVF of each video track, plus `timeline.jsonl` — RoomClient's ``MeetingRecorder`` does
/// the writing. All files of one recording share its timeline, in media time: a WAV starts
/// at the bot's start and ends at its stop, with silence only where its speaker was not
/// heard, however late or bursty the network delivered the audio. SIGINT or SIGTERM leaves
/// the room and finalises every file.
struct Record: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record every participant of a room.")

    @OptionGroup var join: RoomOptionsGroup

    @Option(help: "The folder to write into (created).")
    var output: String = "recording"

    @Option(help: "Stop after this many seconds (default: until SIGINT/SIGTERM).")
    var duration: Double?

    @Flag(help: "Do not record video.")
    var noVideo = false

    @Option(help: "Read the sockets at most every this many milliseconds while packets keep coming (0: as each comes).")
    var readIntervalMs = 5

    func run() async throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let stop = StopSignal()
        let recorder = try MeetingRecorder(folder: output)
        let start = ContinuousClock.now
        @Sendable func elapsed() -> Duration { ContinuousClock.now - start }
        let ended = Mutex<String?>(nil)
        let (roomEnded, roomEndedSink) = AsyncStream.makeStream(of: Void.self)
        // Events go to the recorder as they happen, on the thread that received them: no
        // task in between (at 150 speakers, handing each packet to a task cost more than
        // decoding it). Those of the join wait until the recording's first line is written.
        let joining = Mutex<[(RoomEvent, Duration)]?>([])
        let recordVideo = !noVideo
        var options = try join.roomOptions()
        options.audioOutput = .both(audioSampleRate: 16_000, audioChannels: 1)
        options.videoOutput = .encoded
        // A recording can wait a few milliseconds more for its packets: read the sockets at
        // most every few milliseconds, many datagrams per wakeup.
        options.peerConnection.readInterval = readIntervalMs > 0 ? .milliseconds(readIntervalMs) : nil
        options.eventHandler = { event in
            let time = elapsed()
            joining.withLock { early in
                if early != nil {
                    early?.append((event, time))
                } else {
                    recorder.handle(event, at: time, recordVideo: recordVideo)
                }
            }
            if case .disconnected(let reason) = event {
                ended.withLock { $0 = reason }
                roomEndedSink.finish()
            }
        }
        let room = try await join.join(options: options)
        joining.withLock { early in
            recorder.note(
                ["event": "started", "room": .string(join.roomName(room)), "self": .string(room.localParticipantID)],
                at: .zero)
            for (event, time) in early ?? [] { recorder.handle(event, at: time, recordVideo: recordVideo) }
            early = nil
        }
        log("meet-bot: recording room \(join.roomName(room)) into \(output) (Ctrl-C to stop)")

        // On a terminal the status line rewrites itself; in a log it is one line a second.
        let live = isatty(STDERR_FILENO) == 1
        let status = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                if live {
                    Console.write("\r" + recorder.statusLine(at: elapsed()) + "  ", to: .standardError)
                } else {
                    log(recorder.statusLine(at: elapsed()))
                }
            }
            if live { Console.write("\n", to: .standardError) }
        }
        // Until a signal, the duration, or the room's end (the server went away).
        await stop.wait(timeout: duration.map { .milliseconds(Int($0 * 1000)) }, or: { for await _ in roomEnded {} })
        let endedBy = ended.withLock { $0 }  // the room's end before this side's
        status.cancel()
        await status.value
        recorder.stop(at: elapsed())  // nothing after this instant is written, however long leaving takes
        // What reached the bot of what was sent (RTP sequence numbers tell the losses).
        var (received, lost) = (0, 0)
        for p in room.remoteParticipants {
            for t in p.tracks where t.subscribed {
                guard let stats = try? await room.statistics(participantID: p.sid, trackID: t.sid) else { continue }
                received += stats.packetsReceived
                lost += max(0, stats.packetsLost)
            }
        }
        log("meet-bot: received \(received) packets, \(lost) lost")
        await room.leave()
        let files = recorder.finish()
        log("meet-bot: left the room; wrote \(files.count) files:")
        for f in files { Console.write(f + "\n", to: .standardOutput) }
        if let reason = endedBy {
            log("meet-bot: the room ended: \(reason)")
            throw ExitCode(1)  // the files are whole up to that moment
        }
        let statistics = recorder.statistics
        if statistics.fileErrors > 0 {
            log(
                "meet-bot: \(statistics.fileErrors) file operations failed, the last: \(statistics.lastFileError ?? "?")"
            )
            throw ExitCode(1)  // a recording that lost data must not look like a success
        }
    }
}
