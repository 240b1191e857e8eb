// 50 Opus streams from one aiortc sender in one BUNDLE, received and decoded by MeetKit (a
// public PeerConnection in this process) and by an aiortc receiver at the same time: CPU
// per decoded frame of each, and MeetKit's against the bare cost measured in this run.

import COpus
import CSRTP
import Foundation
import MeetKitTestSupport
import NIOPosix
import Synchronization
import Transport

#if canImport(Glibc)
    import Glibc
#endif

/// This process's CPU time (user + system, all threads), in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// This thread's CPU time, in seconds.
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// The bare cost of receiving `packets` on `streams` streams taking turns, as the sender
/// sends them: libsrtp unprotect (AES-GCM, the profile MeetKit and aiortc negotiate) +
/// libopus decode to 48 kHz stereo, as aiortc's receiver decodes, one decoder per stream,
/// into one reused buffer — CPU microseconds per packet (like the receivers' figures),
/// median of the run's rounds.
func bareReceiveMicroseconds(_ packets: [[UInt8]], streams: Int) throws -> Double {
    let count = 5_000
    let wire = try FixedKeyWire(.aeadAES128GCM, payloads: packets, count: count, streams: streams)
    var samples: [Double] = []
    for _ in 0..<Bench.rounds {
        wire.withBareReceiver(channels: 2) { session, decoders in
            let start = threadCPUSeconds()
            let decoded = wire.bareReceive(session, decoders: decoders)
            samples.append((threadCPUSeconds() - start) / Double(count) * 1e6)
            precondition(decoded == count)
        }
    }
    return median(samples)
}

/// One run of the row: MeetKit's events read from `PeerConnection.events` (an
/// `AsyncStream` consumed by a task), or taken by an event handler on the connection's
/// event loop (`PeerConnection.start(…handler:)`, as a Room takes them); with
/// `readInterval`, the socket read at most once per interval (as meet-bot reads).
func benchMultiStream(handler: Bool, readInterval: Duration? = nil) async throws {
    let python = ".venv/bin/python"
    let title =
        readInterval != nil
        ? "  same, handler, socket read every \(readInterval!.components.attoseconds / 1_000_000_000_000_000) ms"
        : handler ? "  same, events to a handler on the event loop" : "50 Opus streams from aiortc, decoded (CPU/frame)"
    let name = title.padding(toLength: 50, withPad: " ", startingAt: 0)
    guard FileManager.default.isExecutableFile(atPath: python) else {
        print("\(name) aiortc reference missing: run Scripts/bootstrap")
        return
    }
    let streams = 50
    let seconds = Bench.quick ? 5 : 10
    let sender = try LineProcess(
        executable: python,
        arguments: [
            "Scripts/interop/aiortc_multistream_bench.py", "--streams", String(streams), "--seconds", String(seconds),
        ])
    defer { sender.terminate() }
    let offer = try await sender.readJSON(timeout: .seconds(60))
    guard let sdp = offer["sdp"] as? String, let hex = offer["opus"] as? [String] else {
        throw BenchError("the aiortc sender's offer line: \(offer)")
    }
    let bareMicroseconds = try bareReceiveMicroseconds(hex.map(bytes(hex:)), streams: streams)
    let decoded = Atomic<Int>(0)
    var configuration = PeerConnectionConfiguration()
    configuration.readInterval = readInterval
    // The connection on a loop of its own, whose thread's CPU time tells MeetKit's own work
    // apart from the rest of the process.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loopCPU = { try await group.next().submit { threadCPUSeconds() }.get() }
    let addresses = [IPAddress("127.0.0.1")!]
    let pc =
        handler
        ? try await PeerConnection.start(configuration: configuration, localAddresses: addresses, group: group) {
            event in
            if case .audio = event { decoded.add(1, ordering: .relaxed) }
        } : try await PeerConnection.start(configuration: configuration, localAddresses: addresses, group: group)
    try await pc.setRemoteDescription(try SessionDescription(parsing: sdp))
    for t in try await pc.transceivers() {
        try await pc.setReceiveOutput(.decoded(audioSampleRate: 48_000, audioChannels: 2), mid: t.mid)
    }
    let answer = try await pc.createAnswer()
    try await pc.setLocalDescription(answer)
    try sender.writeJSON(["type": "answer", "sdp": answer.serialized()])
    let consumer = Task {
        for await event in pc.events {
            if case .audio = event { decoded.add(1, ordering: .relaxed) }
        }
    }
    let start = try await sender.readJSON(timeout: .seconds(60))
    guard start["type"] as? String == "start" else {
        print("\(name) the aiortc sender did not connect: \(start)")
        consumer.cancel()
        await pc.close()
        try? await group.shutdownGracefully()
        return
    }
    let (cpu0, frames0, loop0) = (processCPUSeconds(), decoded.load(ordering: .relaxed), try await loopCPU())
    // Looked for seldom: this process's CPU is what is measured meanwhile.
    let done = try await sender.readJSON(timeout: .seconds(Int64(seconds) + 60), poll: .milliseconds(200))
    let (cpu1, frames1, loop1) = (processCPUSeconds(), decoded.load(ordering: .relaxed), try await loopCPU())
    try sender.writeLine("bye")
    consumer.cancel()
    await pc.close()
    try? await group.shutdownGracefully()
    let expected = Double(streams * seconds * 50)
    let meetkitFrames = Double(frames1 - frames0)
    let meetkit = (cpu1 - cpu0) / meetkitFrames * 1e6
    let aiortcFrames = (done["aiortc_frames"] as? Double) ?? Double(done["aiortc_frames"] as? Int ?? 0)
    let aiortc = ((done["aiortc_cpu_seconds"] as? Double) ?? .nan) / aiortcFrames * 1e6
    print(
        "\(name) aiortc \(fmt(aiortc)) µs  MeetKit \(fmt(meetkit)) µs  ratio \(fmt(meetkit / aiortc, 3))"
    )
    print(
        "  frames decoded of \(Int(expected)) sent: aiortc \(fmt(aiortcFrames / expected * 100, 1)) %, MeetKit \(fmt(meetkitFrames / expected * 100, 1)) %; bare srtp+opus \(fmt(bareMicroseconds)) µs → MeetKit/bare \(fmt(meetkit / bareMicroseconds, 3)); MeetKit's event loop thread alone \(fmt((loop1 - loop0) / meetkitFrames * 1e6)) µs"
    )
}
