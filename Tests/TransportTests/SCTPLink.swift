import MeetKitTestSupport

@testable import MeetKitSCTP

/// What a ``PacketLink`` drives: an SCTP association or a data channel endpoint.
protocol LinkedMachine: AnyObject {
    associatedtype Event
    func handlePacket(_ bytes: [UInt8], now: Duration)
    func handleTimeout(now: Duration)
    func pollOutput() -> SCTPOutput<Event>
}

extension SCTPAssociation: LinkedMachine {}
extension DataChannelEndpoint: LinkedMachine {}

typealias SCTPLink = PacketLink<SCTPAssociation>

/// Two machines joined by a simulated link in virtual time: one-way delay, random extra
/// delay (which reorders), random loss, and optionally a bottleneck rate with a drop-tail
/// queue. The machines are driven only through their output call.
final class PacketLink<Machine: LinkedMachine> {
    struct Settings {
        var delay: Duration = .milliseconds(20)
        var jitter: Duration = .zero
        var loss = 0.0
        /// Bottleneck bytes per second (nil: unlimited), each way.
        var rate: Int?
        /// Packets the bottleneck queues before dropping (each way).
        var queueLimit = 64
    }

    let sides: [Machine]
    var settings: Settings
    private(set) var now: Duration = .zero
    private var random: SplitMix64
    private var inFlight: [(at: Duration, to: Int, bytes: [UInt8], order: Int)] = []
    private var order = 0
    private var deadlines: [Duration?] = [nil, nil]
    /// When each direction's bottleneck is free again.
    private var linkFreeAt: [Duration] = [.zero, .zero]
    /// Events each side reported, in order.
    var events: [[Machine.Event]] = [[], []]
    /// Packets each side sent, dropped by the link's loss, dropped by a full queue.
    var sent = [0, 0]
    var lost = [0, 0]
    var queueDrops = [0, 0]
    /// Bytes of packets delivered to each side.
    var deliveredBytes = [0, 0]
    /// Called on every packet before it is sent (tests inspect or rewrite); nil drops it.
    var filter: ((_ from: Int, _ packet: [UInt8]) -> [UInt8]?)?

    init(_ settings: Settings = .init(), seed: UInt64 = 1, sides: [Machine]) {
        self.settings = settings
        random = SplitMix64(seed: seed)
        self.sides = sides
    }

    private func drain(_ i: Int) {
        loop: while true {
            switch sides[i].pollOutput() {
            case .transmit(let bytes):
                sent[i] += 1
                guard let bytes = filter.map({ $0(i, bytes) }) ?? bytes else { continue }
                if Double.random(in: 0..<1, using: &random) < settings.loss {
                    lost[i] += 1
                    continue
                }
                var departure = now
                if let rate = settings.rate {
                    let queued = inFlight.filter { $0.to == 1 - i && $0.at > now + settings.delay }.count
                    guard queued < settings.queueLimit else {
                        queueDrops[i] += 1
                        continue
                    }
                    let start = max(now, linkFreeAt[i])
                    departure = start + .nanoseconds(Int64(bytes.count) * 1_000_000_000 / Int64(rate))
                    linkFreeAt[i] = departure
                }
                var extra: Duration = .zero
                if settings.jitter > .zero {
                    let most = Int64(settings.jitter / .nanoseconds(1))
                    extra = .nanoseconds(Int64.random(in: 0...most, using: &random))
                }
                inFlight.append((departure + settings.delay + extra, 1 - i, bytes, order))
                order += 1
            case .event(let e):
                events[i].append(e)
            case .wait(let deadline):
                deadlines[i] = deadline
                break loop
            }
        }
    }

    /// Runs until `done` holds or `limit` of virtual time has passed; returns `done()`.
    @discardableResult
    func run(for limit: Duration, until done: () -> Bool = { false }) -> Bool {
        let end = now + limit
        while true {
            drain(0)
            drain(1)
            if done() { return true }
            // `done` may have queued messages: their packets and timers count too.
            drain(0)
            drain(1)
            let next = ([inFlight.map(\.at).min()] + deadlines).compactMap { $0 }.min()
            guard let next, next <= end else {
                now = end
                return done()
            }
            now = max(now, next)
            let due = inFlight.filter { $0.at <= now }.sorted { ($0.at, $0.order) < ($1.at, $1.order) }
            inFlight.removeAll { $0.at <= now }
            for p in due {
                deliveredBytes[p.to] += p.bytes.count
                sides[p.to].handlePacket(p.bytes, now: now)
            }
            for i in 0..<2 where deadlines[i].map({ $0 <= now }) ?? false {
                deadlines[i] = nil
                sides[i].handleTimeout(now: now)
            }
        }
    }

}

extension PacketLink where Machine == SCTPAssociation {
    convenience init(_ settings: Settings = .init(), seed: UInt64 = 1, configuration: SCTPConfiguration = .init()) {
        self.init(
            settings, seed: seed,
            sides: [
                SCTPAssociation(configuration: configuration, random: SplitMix64(seed: seed &+ 100)),
                SCTPAssociation(configuration: configuration, random: SplitMix64(seed: seed &+ 200)),
            ])
    }

    /// Messages side `i` received, in order.
    func messages(at i: Int) -> [(stream: UInt16, ppid: UInt32, data: [UInt8])] {
        events[i].compactMap {
            if case .message(let s, let p, let d, _) = $0 { return (s, p, d) }
            return nil
        }
    }

    /// Connects (side 0 initiates, or both at once) and runs until both are established.
    func connect(both: Bool = false) -> Bool {
        sides[0].connect(now: now)
        if both { sides[1].connect(now: now) }
        return run(for: .seconds(30)) { sides.allSatisfy { $0.state == .established } }
    }
}
