// 50 Opus streams from one aiortc sender in one BUNDLE, received and decoded by MeetKit (a
// public PeerConnection in this process) and by an aiortc receiver, one after the other or
// at the same time: CPU per decoded frame of each, and MeetKit's against the bare cost
// measured in this run, in a tight loop and receiving in real time.

import CMeetKitSocket
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
/// `readInterval`, the socket read at most once per interval (as meet-bot reads). The
/// sender sends to one receiver at a time (MeetKit's window, then aiortc's) unless
/// `simultaneous`: then both receive and decode at once, and each one's CPU time includes
/// what losing the cores to the other costs it (aiortc's receiver keeps a core busy).
func benchMultiStream(handler: Bool, readInterval: Duration? = nil, simultaneous: Bool = false) async throws {
    let python = ".venv/bin/python"
    let title =
        simultaneous
        ? "  same, handler, both receivers at once"
        : readInterval != nil
            ? "  same, handler, socket read every \(readInterval!.components.attoseconds / 1_000_000_000_000_000) ms"
            : handler
                ? "  same, events to a handler on the event loop" : "50 Opus streams from aiortc, decoded (CPU/frame)"
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
        ] + (simultaneous ? [] : ["--sequential"]))
    defer { sender.terminate() }
    let offer = try await sender.readJSON(timeout: .seconds(60))
    guard let sdp = offer["sdp"] as? String, let hex = offer["opus"] as? [String] else {
        throw BenchError("the aiortc sender's offer line: \(offer)")
    }
    // The bare references are measured before and after MeetKit's window, and averaged: a
    // shared machine's speed drifts by more than the differences measured (the tight loop
    // alone varied by a third within an hour), and MeetKit's 10 s lie between the two.
    let packets = hex.map(bytes(hex:))
    func references() throws -> (tight: Double, realTime: Double) {
        (
            try bareReceiveMicroseconds(packets, streams: streams),
            try bareRealTimeMicroseconds(
                packets, streams: streams, seconds: Bench.quick ? 2 : 4, readInterval: readInterval)
        )
    }
    let referencesBefore = try references()
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
    var done = try await sender.readJSON(timeout: .seconds(Int64(seconds) + 60), poll: .milliseconds(200))
    let (cpu1, frames1, loop1) = (processCPUSeconds(), decoded.load(ordering: .relaxed), try await loopCPU())
    if done["type"] as? String == "stop" {
        done = try await sender.readJSON(timeout: .seconds(Int64(seconds) + 60), poll: .milliseconds(200))
    }
    try sender.writeLine("bye")
    consumer.cancel()
    await pc.close()
    try? await group.shutdownGracefully()
    let referencesAfter = try references()
    let bareMicroseconds = (referencesBefore.tight + referencesAfter.tight) / 2
    let bareRealTime = (referencesBefore.realTime + referencesAfter.realTime) / 2
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
    print(
        "  bare srtp+opus receiving in real time (UDP, \(readInterval == nil ? "each packet as it comes" : "read as often as MeetKit")) \(fmt(bareRealTime)) µs → MeetKit/bare \(fmt(meetkit / bareRealTime, 3))"
    )
    print(
        "  bare references before and after MeetKit's window: tight loop \(fmt(referencesBefore.tight)), \(fmt(referencesAfter.tight)) µs; real time \(fmt(referencesBefore.realTime)), \(fmt(referencesAfter.realTime)) µs"
    )
}

/// The bare cost of receiving packets as they come: packets of `payloads` on `streams`
/// streams taking turns, paced in real time by a sender thread over loopback UDP, evenly
/// spread as the sender's tracks spread them (2 500 a second for 50 streams of 20 ms), to a
/// bare receiver thread that waits with poll(2), reads what waits with one recvmmsg(2), then
/// unprotects with libsrtp and decodes with each stream's libopus decoder — the receiver
/// thread's CPU microseconds per packet. With `readInterval`, it sleeps that long after each
/// read (as MeetKit's read interval does). Beside the tight loop of
/// ``bareReceiveMicroseconds(_:streams:)`` this pays what any real-time receiver pays: the
/// wakeups, the kernel's receive of each packet, and caches gone cold between packets.
func bareRealTimeMicroseconds(_ payloads: [[UInt8]], streams: Int, seconds: Int, readInterval: Duration?) throws
    -> Double
{
    let count = streams * 50 * seconds
    let wire = try FixedKeyWire(.aeadAES128GCM, payloads: payloads, count: count, streams: streams)
    let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer {
        close(receiver)
        close(sender)
    }
    var bufferSize: Int32 = 4 << 20
    setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(receiver, $0, length) == 0 && getsockname(receiver, $0, &length) == 0
                && connect(sender, $0, length) == 0
        }
    }
    guard bound else { throw BenchError("bare real-time receiver: a loopback socket (errno \(errno))") }

    let result = Mutex<(cpu: Double, decoded: Int)>((0, 0))
    let finished = DispatchSemaphore(value: 0)
    let receiving = Thread {
        wire.withBareReceiver(channels: 2) { session, decoders in
            let capacity = 2048
            let batch = 64
            var buffers = [UInt8](repeating: 0, count: capacity * batch)
            var lengths = [Int32](repeating: 0, count: batch)
            var pcm = [Int16](repeating: 0, count: 5760 * 2)
            var (received, decoded) = (0, 0)
            var descriptor = pollfd(fd: receiver, events: Int16(POLLIN), revents: 0)
            let start = threadCPUSeconds()
            // Until every packet came, or none for a second (the rest lost).
            while received < count, poll(&descriptor, 1, 1000) > 0 {
                if let readInterval { usleep(UInt32(readInterval / .microseconds(1))) }
                let n = buffers.withUnsafeMutableBufferPointer { b in
                    mk_receive_datagrams(receiver, b.baseAddress, Int32(capacity), Int32(batch), &lengths, nil)
                }
                for i in 0..<max(0, Int(n)) {
                    received += 1
                    buffers.withUnsafeMutableBytes { b in
                        if FixedKeyWire.bareUnprotectAndDecode(
                            b.baseAddress!.advanced(by: i * capacity), length: lengths[i], session: session,
                            decoders: decoders, pcm: &pcm)
                        {
                            decoded += 1
                        }
                    }
                }
            }
            let cpu = threadCPUSeconds() - start
            result.withLock { $0 = (cpu, decoded) }
        }
        finished.signal()
    }
    let sending = Thread {
        let spacing = 20_000_000 / streams  // nanoseconds between packets
        var next = timespec()
        clock_gettime(CLOCK_MONOTONIC, &next)
        for packet in wire.packets {
            next.tv_nsec += spacing
            if next.tv_nsec >= 1_000_000_000 {
                next.tv_nsec -= 1_000_000_000
                next.tv_sec += 1
            }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nil)
            _ = packet.withUnsafeBytes { send(sender, $0.baseAddress, $0.count, 0) }
        }
    }
    receiving.start()
    sending.start()
    // The receiver stops when it has every packet, or a second after the last one came.
    finished.wait()
    let (cpu, decoded) = result.withLock { $0 }
    guard decoded > count / 2 else {
        throw BenchError("bare real-time receiver: \(decoded) of \(count) packets decoded")
    }
    return cpu / Double(decoded) * 1e6
}
