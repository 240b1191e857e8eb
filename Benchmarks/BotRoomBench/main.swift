// bot-room-bench — what one meeting bot costs as a room grows: N audio publishers (N = 10,
// 50, 150; 150 is Visio's room size) on a local server, one `meet-bot record` subscribed to
// all of them; the bot process's CPU and memory, printed as a table. Release mode. The
// server is Janus (as root: it runs in a network namespace of its own) or meet-server (in
// this process, on loopback; LiveKit's protocol, `/rtc/v1`):
//
//     swift build -c release --product meet-bot
//     swift run -c release bot-room-bench [--server janus|meet-server] [--counts 10,50,150] [--seconds 10]
//
// The publishers live in this process and send one pre-encoded 20 ms Opus packet each per
// tick (bring-your-own-media: no encoder cost here), so the bot and Janus do the work
// measured. CPU is the bot's utime+stime over the measured window, from /proc.

import COpus
import Codec
import Foundation
import MeetKitTestSupport
import NIOCore
import RoomClient
import RoomServer
import Signaling
import Transport

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
let counts = (option("--counts") ?? "10,50,150").split(separator: ",").compactMap { Int($0) }
let seconds = Double(option("--seconds") ?? "10") ?? 10
let onMeetServer = option("--server") == "meet-server"
/// `--read-interval MS`: passed to the bot as `--read-interval-ms` (older bots lack it).
let readInterval = option("--read-interval").map { ["--read-interval-ms", $0] } ?? []
// `--bot PATH` measures another build of meet-bot (an older checkout's, for a before/after).
let bot =
    option("--bot")
    ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meet-bot")
    .path
guard FileManager.default.isExecutableFile(atPath: bot) else {
    print("meet-bot is not built beside this benchmark: swift build -c release --product meet-bot")
    exit(1)
}

/// utime+stime in seconds and VmRSS in KiB of a process.
func usage(of pid: Int32) -> (cpu: Double, rssKiB: Int)? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    let rss =
        status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst()
        .first.flatMap { Int($0) } ?? 0
    return ((utime + stime) / ticks, rss)
}

// One 20 ms Opus packet of a tone, sent by everyone.
let encoder = try OpusEncoder()
var tone = ToneGenerator(frequency: 440)
let packets = try (0..<50).map { _ in try encoder.encode(tone.nextFrame(samplesPerChannel: 960)) }

/// The reference: bare libopus decoding what the bot decodes — `n` streams of these packets
/// for one second (50 each), to 16 kHz mono as the bot records — in CPU % of one core,
/// the best of three rounds. The bot cannot do less than this.
func bareDecodePercent(streams n: Int) -> Double {
    var best = Double.infinity
    var pcm = [Int16](repeating: 0, count: 5760)
    for _ in 0..<3 {
        var error: Int32 = 0
        let decoders = (0..<n).map { _ in opus_decoder_create(16_000, 1, &error)! }
        defer { for d in decoders { opus_decoder_destroy(d) } }
        let start = threadCPUSeconds()
        for tick in 0..<50 {
            let packet = packets[tick % packets.count].data
            for d in decoders { _ = opus_decode(d, packet, Int32(packet.count), &pcm, 5760, 0) }
        }
        best = min(best, (threadCPUSeconds() - start) * 100)
    }
    return best
}

/// The share of the packets sent that reached the bot, from its last words ("received N
/// packets, M lost", counted by RTP sequence numbers): a bot that keeps up loses none on
/// loopback; a machine too busy to send, relay or read them all shows here.
func receivedShare(log path: String) -> Double? {
    guard let log = try? String(contentsOfFile: path, encoding: .utf8),
        let line = log.split(separator: "\n").last(where: { $0.contains(" packets, ") && $0.hasSuffix(" lost") })
    else { return nil }
    let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Double($0) }
    guard numbers.count >= 2, numbers[0] + numbers[1] > 0 else { return nil }
    return numbers[0] / (numbers[0] + numbers[1])
}

/// This thread's CPU time, in seconds.
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// A room of `n` publishers on one server, and a way to start the bot in it.
struct Setup {
    var rooms: [(Room, LocalTrack)]
    var spawnBot: (_ output: String) throws -> Process
    var stop: () async -> Void
}

/// N publishers on a local Janus (in its network namespace), the bot beside them.
func janusRoom(_ n: Int) async throws -> Setup {
    let janus = try JanusServer.start()
    let group = try await janus.eventLoopGroup()
    var rooms: [(Room, LocalTrack)] = []
    for i in 0..<n {
        let signaling = try await JanusRoomSignaling.connect(url: janus.url, group: group)
        var options = RoomOptions()
        options.localAddresses = [janus.address]
        options.autoSubscribe = false
        let room = try await Room.join(
            signaling: signaling, room: "1234", displayName: "speaker\(i)", options: options, group: group)
        rooms.append((room, try await room.publish([(.audio, .microphone)])[0]))
    }
    return Setup(
        rooms: rooms,
        spawnBot: { output in
            try janus.spawn(
                [bot, "record", "--url", janus.url, "--address", "\(janus.address)", "--output", output, "--no-video"]
                    + readInterval,
                log: output + ".log")
        }, stop: { janus.stop() })
}

/// N publishers on meet-server in this process (loopback), the bot beside them.
func meetServerRoom(_ n: Int) async throws -> Setup {
    var configuration = RoomServerConfiguration.development
    configuration.port = 0
    configuration.udpPort = 0
    configuration.maxParticipants = 0
    let server = try await RoomServer.start(configuration: configuration)
    let loopback = IPAddress("127.0.0.1")!
    var rooms: [(Room, LocalTrack)] = []
    for i in 0..<n {
        let signaling = LiveKitRoomSignaling(
            url: server.url, token: try await server.token(room: "bench", identity: "speaker\(i)"))
        var options = RoomOptions()
        options.localAddresses = [loopback]
        options.autoSubscribe = false
        let room = try await Room.join(signaling: signaling, room: "", displayName: "", options: options)
        rooms.append((room, try await room.publish([(.audio, .microphone)])[0]))
    }
    let token = try await server.token(room: "bench", identity: "recorder")
    return Setup(
        rooms: rooms,
        spawnBot: { output in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: bot)
            process.arguments =
                [
                    "record", "--livekit", server.url, "--token", token, "--address", "127.0.0.1", "--output", output,
                    "--no-video",
                ] + readInterval
            _ = FileManager.default.createFile(atPath: output + ".log", contents: nil)
            let log = FileHandle(forWritingAtPath: output + ".log")
            process.standardOutput = log
            process.standardError = log
            try process.run()
            return process
        }, stop: { await server.stop() })
}

print(
    "One meet-bot recording N audio publishers on \(onMeetServer ? "meet-server (LiveKit /rtc/v1, loopback)" : "a local Janus") (\(Int(seconds)) s measured per row)"
)
print("(reference: libopus alone decoding the same packets to 16 kHz, in this process, as CPU % of one core)")
print(
    "  N   bot CPU (% of one core)   libopus alone   bot ÷ libopus   bot RSS (MiB)   per publisher: CPU %   RSS KiB   streams recorded   packets received"
)
for n in counts {
    let setup = try await onMeetServer ? meetServerRoom(n) : janusRoom(n)
    let everyone = setup.rooms
    let sender = Task {
        let start = ContinuousClock.now
        var tick = 0
        while !Task.isCancelled {
            var packet = packets[tick % packets.count]
            packet.timestamp = MediaTime(value: Int64(tick) * 960, timescale: 48_000)
            for (room, track) in everyone { try? await room.send(packet, on: track) }
            tick += 1
            try? await Task.sleep(until: start + .milliseconds(20 * tick))
        }
    }
    let output = NSTemporaryDirectory() + "bot-room-\(n)"
    try? FileManager.default.removeItem(atPath: output)
    let process = try setup.spawnBot(output)
    // Let the bot subscribe to everyone, then measure.
    try await Task.sleep(for: .seconds(Double(n) / 25 + 3))
    let before = usage(of: process.processIdentifier)
    try await Task.sleep(for: .seconds(seconds))
    let after = usage(of: process.processIdentifier)
    kill(process.processIdentifier, SIGINT)
    while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
    sender.cancel()
    _ = await sender.value
    let wavs = ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).filter { $0.hasSuffix(".wav") }
    if let before, let after {
        let cpu = (after.cpu - before.cpu) / seconds * 100
        let reference = bareDecodePercent(streams: n)
        print(
            String(
                format:
                    "%4d   %10.1f               %8.1f        %8.2f      %8.1f            %6.2f        %6.0f    %d of %d     %5.1f %%",
                n, cpu, reference, cpu / reference, Double(after.rssKiB) / 1024, cpu / Double(n),
                Double(after.rssKiB) / Double(n), wavs.count, n, (receivedShare(log: output + ".log") ?? .nan) * 100))
    } else {
        print("\(n): the bot exited early; see \(output).log")
    }
    for (room, _) in setup.rooms { await room.leave() }
    await setup.stop()
}
