import Synchronization
import Transport

/// What went over the data channels, for STATS.
final class DataCounters: Sendable {
    struct Values {
        var channels = 0
        var messagesSent = 0
        var bytesSent = 0
        var messagesReceived = 0
        var bytesReceived = 0
    }
    private let values = Mutex(Values())

    var snapshot: Values { values.withLock { $0 } }
    func update(_ body: (inout Values) -> Void) { values.withLock { body(&$0) } }
}

extension Session {
    /// Runs every data channel: the one this side offered and those the peer opens. Each
    /// counts what arrives; with --echo it sends every message back, otherwise it sends a
    /// numbered message every 20 ms once open.
    func runDataChannels(_ pc: PeerConnection, own: DataChannel?, counters: DataCounters) -> Task<Void, Never> {
        Task {
            await withTaskGroup(of: Void.self) { group in
                if let own { group.addTask { await run(own, counters) } }
                for await channel in pc.dataChannels {
                    log("data channel \"\(channel.label)\" opened by the peer")
                    group.addTask { await run(channel, counters) }
                }
                group.cancelAll()
            }
        }
    }

    private func run(_ channel: DataChannel, _ counters: DataCounters) async {
        do {
            try await channel.opened()
        } catch {
            log("data channel \"\(channel.label)\" never opened")
            return
        }
        counters.update { $0.channels += 1 }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in channel.messages {
                    counters.update {
                        $0.messagesReceived += 1
                        $0.bytesReceived += message.byteCount
                    }
                    guard options.echo else { continue }
                    do {
                        try await channel.send(message)
                        counters.update {
                            $0.messagesSent += 1
                            $0.bytesSent += message.byteCount
                        }
                    } catch {
                        return
                    }
                }
            }
            if !options.echo {
                group.addTask {
                    var n = 0
                    while !Task.isCancelled {
                        let text = "meet-peer message \(n)"
                        do {
                            try await channel.send(text)
                        } catch {
                            return
                        }
                        counters.update {
                            $0.messagesSent += 1
                            $0.bytesSent += text.utf8.count
                        }
                        n += 1
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            // The channel's end (or the run's) ends both.
            await group.next()
            group.cancelAll()
        }
    }
}
