import Codec
import Foundation
import Synchronization
import Transport

/// One run of meet-peer: signalling, media, statistics, exit status.
struct Session {
    let options: MeetPeer

    func run() async -> Int32 {
        let addresses: [IPAddress]
        do {
            if let ip = options.ip {
                guard let address = IPAddress(ip) else { throw InputError(description: "--ip \(ip) is not an address") }
                addresses = [address]
            } else {
                addresses = try HostAddresses.discover()
            }
        } catch {
            log("\(error)")
            return 2
        }
        let pc: PeerConnection
        do {
            pc = try await PeerConnection.start(localAddresses: addresses)
        } catch {
            log("cannot start: \(error)")
            return 1
        }
        let started = ContinuousClock.now
        let channel: DataChannel?
        do {
            channel = try await negotiate(pc)
        } catch let error as InputError {
            log(error.description)
            await pc.close()
            return 2
        } catch let error as PeerConnectionError {
            log("unusable description: \(error)")
            await pc.close()
            return 2
        } catch {
            log("\(error)")
            await pc.close()
            return 1
        }
        return await exchange(pc, started: started, channel: channel)
    }

    /// Offer/answer over stdin and stdout; returns the data channel this side offered.
    private func negotiate(_ pc: PeerConnection) async throws -> DataChannel? {
        var channel: DataChannel?
        if options.offer {
            for _ in 0..<max(0, options.audio) { _ = try await pc.addTransceiver(.audio, receive: .both()) }
            for _ in 0..<max(0, options.video) { _ = try await pc.addTransceiver(.video, receive: .both()) }
            if options.dataChannel { channel = try await pc.createDataChannel(label: "meet-peer") }
            let offer = try await pc.createOffer()
            try await pc.setLocalDescription(offer)
            try emit("offer", offer)
            let answer = try description(from: await readLine(timeout: .seconds(60)), expected: "answer")
            try await pc.setRemoteDescription(answer)
            for section in try await pc.rejectedSections() { log("the answer refuses \(section)") }
        } else {
            let offer = try description(from: await readLine(timeout: .seconds(60)), expected: "offer")
            try await pc.setRemoteDescription(offer)
            for section in try await pc.rejectedSections() { log("answering without \(section)") }
            for t in try await pc.transceivers() { try await pc.setReceiveOutput(.both(), mid: t.mid) }
            let answer = try await pc.createAnswer()
            try await pc.setLocalDescription(answer)
            try emit("answer", answer)
        }
        return channel
    }

    /// Sends and receives until --duration has passed; prints STATS; returns the status.
    private func exchange(_ pc: PeerConnection, started: ContinuousClock.Instant, channel: DataChannel?) async -> Int32
    {
        let transceivers = (try? await pc.transceivers()) ?? []
        let state = Observed()
        let data = DataCounters()
        let dataTask = runDataChannels(pc, own: channel, counters: data)
        let listener = Task {
            for await event in pc.events {
                switch event {
                case .connectionState(let s):
                    log("connection \(s.rawValue)")
                    if s == .connected { state.connectedAfter = ContinuousClock.now - started }
                    state.last = s
                case .transport(.failed(let error)): state.failure = error.description
                case .frame(let mid, let frame) where options.echo:
                    try? await pc.send(frame, mid: mid)
                case .keyframeRequested(let mid) where options.echo:
                    try? await pc.requestKeyframe(mid: mid)  // ask the source of what we echo
                default: break
                }
            }
        }
        let sender = options.echo ? nil : Task { await generate(pc, transceivers) }
        let reporter =
            options.statsInterval > 0
            ? Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int(options.statsInterval * 1000)))
                    if Task.isCancelled { break }
                    log("stats " + (await statistics(pc, transceivers, state, data)))
                }
            } : nil
        // Until --duration has passed, or stdout/stderr went away.
        let end = ContinuousClock.now + .milliseconds(Int(options.duration * 1000))
        while ContinuousClock.now < end, !Console.isBroken {
            try? await Task.sleep(until: min(end, ContinuousClock.now + .milliseconds(50)))
        }
        sender?.cancel()
        reporter?.cancel()
        dataTask.cancel()
        let stats = await statistics(pc, transceivers, state, data)
        let verdict = await judge(pc, transceivers, state)
        await pc.close()
        _ = await listener.value
        _ = await dataTask.value
        Console.write("STATS " + stats + "\n", to: .standardError)
        if Console.isBroken {
            log("stopped: stdout or stderr was closed")
            return 1
        }
        if let problem = verdict {
            log(problem)
            return 1
        }
        return 0
    }

    /// A tone per audio m-line (440, 550, … Hz) and a moving bar per video m-line.
    private func generate(
        _ pc: PeerConnection, _ transceivers: [(mid: String, kind: MediaKind, direction: MediaDirection)]
    )
        async
    {
        let sending = transceivers.filter { $0.direction == .sendrecv || $0.direction == .sendonly }
        var phases = [Double](repeating: 0, count: sending.count)
        var picture = 0
        let start = ContinuousClock.now
        var tick = 0
        while !Task.isCancelled {
            for (i, t) in sending.enumerated() {
                switch t.kind {
                case .audio:
                    let frequency = 440 + 110 * Double(i)
                    let samples = (0..<960).map { _ -> Int16 in
                        phases[i] += 2 * Double.pi * frequency / 48_000
                        return Int16(9000 * sin(phases[i]))
                    }
                    let frame = AudioFrame(
                        samples: samples, sampleRate: 48_000, channels: 1,
                        timestamp: MediaTime(value: Int64(tick) * 960, timescale: 48_000))
                    try? await pc.send(audio: frame, mid: t.mid)
                case .video where tick % 2 == 0:
                    try? await pc.send(
                        video: bar(picture, at: MediaTime(value: Int64(tick) * 1800, timescale: 90_000)), mid: t.mid)
                case .video: break
                }
            }
            if tick % 2 == 0 { picture += 1 }
            tick += 1
            try? await Task.sleep(until: start + .milliseconds(20 * tick))
        }
    }

    /// A 320x240 grey picture with a white bar moving across.
    private func bar(_ index: Int, at time: MediaTime) -> VideoFrame {
        var frame = VideoFrame(width: 320, height: 240, timestamp: time)
        let x0 = (index * 8) % 280
        frame.withMutablePlanes { y, u, v in
            for row in 0..<240 {
                for col in 0..<320 { y[row * 320 + col] = (col >= x0 && col < x0 + 40) ? 235 : UInt8(16 + row / 2) }
            }
            for i in 0..<u.count {
                u[i] = 128
                v[i] = 128
            }
        }
        return frame
    }
}

/// What the event listener saw, read by the statistics and the verdict.
final class Observed: Sendable {
    private let state = Mutex<(last: PeerConnectionState, connectedAfter: Duration?, failure: String?)>(
        (.new, nil, nil))
    var last: PeerConnectionState {
        get { state.withLock { $0.last } }
        set { state.withLock { $0.last = newValue } }
    }
    var connectedAfter: Duration? {
        get { state.withLock { $0.connectedAfter } }
        set { state.withLock { $0.connectedAfter = newValue } }
    }
    var failure: String? {
        get { state.withLock { $0.failure } }
        set { state.withLock { $0.failure = newValue } }
    }
}
