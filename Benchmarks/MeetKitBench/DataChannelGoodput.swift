// Data channel goodput on loopback: 16 KiB binary messages on an ordered reliable channel
// between two public PeerConnections, against two aiortc peers in one process
// (`Scripts/interop/aiortc_datachannel_bench.py`), with CPU per MB at each side.

import Foundation
import MeetKitTestSupport
import NIOCore
import NIOPosix
import Transport

/// CPU seconds of the thread running `loop` so far.
private func loopCPUSeconds(_ loop: any EventLoopGroup) async throws -> Double {
    try await loop.next().submit { threadCPUSeconds() }.get()
}

func benchDataChannel() async throws {
    let name = "Data channel goodput, 16 KiB messages (loopback)".padding(toLength: 50, withPad: " ", startingAt: 0)
    let megabytes = Bench.quick ? 16 : 64
    let size = 16 << 10
    var aiortc: [String: Any] = [:]
    if FileManager.default.isExecutableFile(atPath: ".venv/bin/python") {
        let process = try LineProcess(
            executable: ".venv/bin/python",
            arguments: ["Scripts/interop/aiortc_datachannel_bench.py", String(megabytes), String(size)])
        aiortc = try await process.readJSON(timeout: .seconds(600))
    }
    // Each side on its own event loop thread, so that each side's CPU can be read.
    let senderLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let receiverLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loopback = IPAddress("127.0.0.1")!
    let a = try await PeerConnection.start(localAddresses: [loopback], group: senderLoop)
    let b = try await PeerConnection.start(localAddresses: [loopback], group: receiverLoop)
    let channel = try await a.createDataChannel(label: "bulk")
    let offer = try await a.createOffer()
    try await a.setLocalDescription(offer)
    try await b.setRemoteDescription(offer)
    let answer = try await b.createAnswer()
    try await b.setLocalDescription(answer)
    try await a.setRemoteDescription(answer)
    var remotes = b.dataChannels.makeAsyncIterator()
    guard let incoming = await remotes.next() else { throw BenchError("no data channel arrived") }
    try await channel.opened()
    let total = megabytes << 20
    let payload = [UInt8](repeating: 0, count: size)
    let (senderCPU0, receiverCPU0, process0) = (
        try await loopCPUSeconds(senderLoop), try await loopCPUSeconds(receiverLoop), processCPUSeconds()
    )
    let start = ContinuousClock.now
    let sender = Task {
        var sent = 0
        while sent < total {
            try await channel.send(payload)
            sent += size
        }
    }
    var received = 0
    for await m in incoming.messages {
        received += m.byteCount
        if received >= total { break }
    }
    let seconds = (ContinuousClock.now - start).seconds
    try await sender.value
    let (senderCPU, receiverCPU, processCPU) = (
        try await loopCPUSeconds(senderLoop) - senderCPU0, try await loopCPUSeconds(receiverLoop) - receiverCPU0,
        processCPUSeconds() - process0
    )
    await a.close()
    await b.close()
    try await senderLoop.shutdownGracefully()
    try await receiverLoop.shutdownGracefully()
    let mb = Double(total) / 1e6
    let meetkit = mb / seconds
    let reference =
        ((aiortc["bytes"] as? Double) ?? Double(aiortc["bytes"] as? Int ?? 0)) / 1e6
        / ((aiortc["seconds"] as? Double) ?? .nan)
    print("\(name) aiortc \(fmt(reference)) MB/s  MeetKit \(fmt(meetkit)) MB/s  ratio \(fmt(meetkit / reference, 3))")
    let aiortcCPU = ((aiortc["cpu_seconds"] as? Double) ?? .nan) / (Double(total) / 1e6) * 1000
    print(
        "  CPU per MB: MeetKit sender \(fmt(senderCPU / mb * 1000)) ms, receiver \(fmt(receiverCPU / mb * 1000)) ms, whole process \(fmt(processCPU / mb * 1000)) ms; aiortc (both peers, one process) \(fmt(aiortcCPU)) ms"
    )
}
