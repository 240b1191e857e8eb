import Codec
import Foundation
import MeetKitTestSupport
import NIOCore
import Testing
import Transport

@testable import RoomClient

/// The meet-bot example, run as a process in Janus's namespace, recording two in-process
/// publishers that speak different tones.
@Suite("meet-bot records a room on a real Janus", .serialized)
struct MeetBotTests {
    static var bot: String { ExampleBinary.path("meet-bot") }

    /// A publisher sending a tone until cancelled.
    static func publisher(
        janus: JanusServer, group: any EventLoopGroup, name: String, frequency: Double
    ) async throws -> (Room, Task<Void, Never>) {
        let room = try await janus.join(name, group: group) { $0.autoSubscribe = false }
        let track = try await room.publish([(.audio, .microphone)])[0]
        let task = Task {
            var tone = ToneGenerator(frequency: frequency)
            let start = ContinuousClock.now
            var tick = 0
            while !Task.isCancelled {
                try? await room.send(audio: tone.nextFrame(samplesPerChannel: 960), on: track)
                tick += 1
                try? await Task.sleep(until: start + .milliseconds(20 * tick))
            }
        }
        return (room, task)
    }

    /// Runs meet-bot record in the namespace; `interruptAfter` sends SIGINT instead of
    /// giving a duration. Returns the output folder.
    static func record(janus: JanusServer, seconds: Double, interrupt: Bool) async throws -> String {
        let output = NSTemporaryDirectory() + "meet-bot-\(UInt32.random(in: 0...UInt32.max))"
        var arguments = [
            bot, "record", "--url", janus.url, "--address", "\(janus.address)", "--output", output, "--name",
            "recorder",
        ]
        if !interrupt { arguments += ["--duration", String(seconds)] }
        let log = output + ".log"
        let process = try janus.spawn(arguments, log: log)
        if interrupt {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            kill(process.processIdentifier, SIGINT)
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "meet-bot ended (log: \(log))")
        if !process.isRunning { #expect(process.terminationStatus == 0, "meet-bot's exit status (log: \(log))") }
        return output
    }

    static func checkRecording(_ folder: String, seconds: Double, tones: [String: Double]) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
        for (name, frequency) in tones {
            let wavName = try #require(files.first { $0.hasPrefix(name + "-") && $0.hasSuffix(".wav") }, "\(files)")
            let wav = try WAVReader(path: folder + "/" + wavName)
            #expect(wav.sampleRate == 16_000 && wav.channels == 1)
            #expect(
                abs(wav.duration.seconds - seconds) <= 0.5, "\(wavName) lasts \(wav.duration.seconds) s, not \(seconds)"
            )
            let heard = SignalAnalysis.dominantFrequency(
                in: wav.samples.suffix(16_000).map(\.normalized), sampleRate: 16_000, range: 200...1200)
            #expect(abs(heard - frequency) <= 10, "\(wavName) holds \(heard) Hz, not \(frequency)")
            #expect(files.contains { $0.hasPrefix(name + "-") && $0.hasSuffix(".opus") }, "an Ogg Opus for \(name)")
        }
        for file in files where !file.hasSuffix(".jsonl") {
            let report = try FFprobeReport.probe(folder + "/" + file)
            if file.hasSuffix(".wav") { #expect(report.codecName == "pcm_s16le") }
            if file.hasSuffix(".opus") {
                #expect(report.codecName == "opus" && (report.duration ?? 0) > seconds - 1.5, "\(file): \(report)")
            }
        }
        let timeline = try String(contentsOfFile: folder + "/timeline.jsonl", encoding: .utf8)
        let events = timeline.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        #expect(events.first?["event"]?.string == "started" && events.last?["event"]?.string == "stopped")
        #expect(events.filter { $0["event"]?.string == "joined" }.count == tones.count)
        #expect(events.filter { $0["event"]?.string == "track-subscribed" }.count == tones.count)
        // Where each Ogg Opus file starts on the recording's timeline.
        let starts = events.filter { $0["event"]?.string == "file-start" }
        #expect(starts.filter { $0["file"]?.string?.hasSuffix(".opus") == true }.count == tones.count, "\(starts)")
    }

    @Test func recordsOneFilePerSpeakerWithItsTone() async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        try #require(FileManager.default.isExecutableFile(atPath: Self.bot), "meet-bot is not built at \(Self.bot)")
        let janus = try JanusServer.start()
        defer { janus.stop() }
        let group = try await janus.eventLoopGroup()
        let (alice, aliceTask) = try await Self.publisher(janus: janus, group: group, name: "alice", frequency: 440)
        let (bob, bobTask) = try await Self.publisher(janus: janus, group: group, name: "bob", frequency: 660)
        let folder = try await Self.record(janus: janus, seconds: 5, interrupt: false)
        try Self.checkRecording(folder, seconds: 5, tones: ["alice": 440, "bob": 660])
        // A SIGINT in the middle of a recording: the bot leaves and every file is valid.
        let interrupted = try await Self.record(janus: janus, seconds: 3, interrupt: true)
        try Self.checkRecording(interrupted, seconds: 3, tones: ["alice": 440, "bob": 660])
        aliceTask.cancel()
        bobTask.cancel()
        await alice.leave()
        await bob.leave()
    }

    /// stderr whose reader has gone away: the bot stops as on SIGTERM — leaves, finishes
    /// its files, lists them on stdout — and exits with status 1, instead of trapping (132)
    /// on its first log line.
    @Test func aClosedStderrStopsTheRecordingCleanly() async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        let janus = try JanusServer.start()
        defer { janus.stop() }
        let group = try await janus.eventLoopGroup()
        let (alice, aliceTask) = try await Self.publisher(janus: janus, group: group, name: "alice", frequency: 440)
        let output = NSTemporaryDirectory() + "meet-bot-\(UInt32.random(in: 0...UInt32.max))"
        let listing = output + ".stdout"
        _ = FileManager.default.createFile(atPath: listing, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "ip", "netns", "exec", janus.namespace.name, Self.bot, "record", "--url", janus.url, "--address",
            "\(janus.address)", "--output", output, "--duration", "20",
        ]
        let broken = Pipe()
        try broken.fileHandleForReading.close()
        process.standardError = broken
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: listing))
        try process.run()
        defer { stop(process) }
        let deadline = ContinuousClock.now + .seconds(15)  // well before its 20 s
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "meet-bot stopped when its stderr broke")
        #expect(
            process.terminationReason == .exit && process.terminationStatus == 1, "status \(process.terminationStatus)")
        let files = try String(contentsOfFile: listing, encoding: .utf8).split(separator: "\n")
        #expect(files.contains { $0.hasSuffix("timeline.jsonl") }, "the files are listed on stdout: \(files)")
        let timeline = try String(contentsOfFile: output + "/timeline.jsonl", encoding: .utf8)
        #expect(timeline.split(separator: "\n").last?.contains("\"stopped\"") == true, "the timeline was finished")
        aliceTask.cancel()
        await alice.leave()
    }
}
