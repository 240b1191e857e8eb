import Transport

/// A deterministic simulated IP network with a virtual clock, for testing sans-IO protocol
/// code (ICE agents, peer connections, bots) faster than real time.
///
/// Hosts have addresses; each host has an access link with latency, jitter, random and
/// burst loss, reordering, duplication and a bandwidth limit. Hosts can sit behind NAT
/// boxes of the four classic behaviours. The same seed gives the same run.
///
/// ```swift
/// let net = SimulatedNetwork(seed: 1)
/// let nat = net.addNAT(publicIP: IPAddress("203.0.113.1")!, behavior: .portRestricted)
/// let a = net.addHost(IPAddress("10.0.0.2")!, behind: nat, link: .init(latency: .milliseconds(20), loss: 0.05))
/// let b = net.addHost(IPAddress("198.51.100.7")!)
/// net.send(.init(from: TransportAddress(ip: a, port: 5000), to: destination, data: bytes))
/// while let (time, datagram) = net.receive(until: deadline) { ... }
/// ```
public final class SimulatedNetwork {
    /// One datagram in flight or delivered: Transport's own (as delivered, `from` is the
    /// source as the receiver sees it after NAT, `to` the receiving host's private address).
    public typealias Datagram = Transport.Datagram

    /// Conditions of a host's access link, applied to every datagram it sends and receives.
    public struct LinkConditions: Sendable, Equatable {
        /// One-way delay.
        public var latency: Duration
        /// Extra delay drawn uniformly in [0, jitter] per datagram (reorders datagrams).
        public var jitter: Duration
        /// Independent loss probability per datagram.
        public var loss: Double
        /// Gilbert–Elliott burst loss: probability of entering the lossy state per datagram,
        /// and of leaving it; in the lossy state every datagram is lost.
        public var burstEnter: Double
        /// Probability of leaving the burst-loss state per datagram.
        public var burstExit: Double
        /// Probability that a datagram is held back by an extra `reorderDelay`.
        public var reorder: Double
        /// Extra delay of reordered datagrams.
        public var reorderDelay: Duration
        /// Probability that a datagram is delivered twice.
        public var duplicate: Double
        /// Bandwidth in bits per second (nil: unlimited); datagrams queue behind each other
        /// and are dropped when the queue would exceed `queueLimit`.
        public var bandwidth: Int?
        /// Longest queueing delay before tail drop.
        public var queueLimit: Duration

        /// Conditions with the given values; the defaults are a perfect 1 ms link.
        public init(
            latency: Duration = .milliseconds(1), jitter: Duration = .zero, loss: Double = 0, burstEnter: Double = 0,
            burstExit: Double = 1, reorder: Double = 0, reorderDelay: Duration = .milliseconds(20),
            duplicate: Double = 0, bandwidth: Int? = nil, queueLimit: Duration = .seconds(1)
        ) {
            self.latency = latency
            self.jitter = jitter
            self.loss = loss
            self.burstEnter = burstEnter
            self.burstExit = burstExit
            self.reorder = reorder
            self.reorderDelay = reorderDelay
            self.duplicate = duplicate
            self.bandwidth = bandwidth
            self.queueLimit = queueLimit
        }
    }

    /// NAT behaviours (RFC 4787 terms in brackets).
    public enum NATBehavior: String, Sendable, CaseIterable {
        /// One mapping per internal address; anyone may send to it. [EIM, EIF]
        case fullCone
        /// One mapping; only IPs the host sent to may answer. [EIM, ADF]
        case addressRestricted
        /// One mapping; only IP:ports the host sent to may answer. [EIM, APDF]
        case portRestricted
        /// A mapping per destination; only that destination may answer. [APDM, APDF]
        case symmetric
    }

    /// A NAT box's identity.
    public struct NATID: Sendable, Hashable { let index: Int }

    private struct Host {
        var ip: IPAddress
        var nat: NATID?
        var link: LinkConditions
        var uplinkFreeAt: Duration = .zero
        var downlinkFreeAt: Duration = .zero
        var inBurst = false
        var connected = true
        var heldUntil: Duration = .zero
    }

    private struct MappingKey: Hashable {
        var inside: TransportAddress
        var destination: TransportAddress?  // nil for endpoint-independent mappings
    }

    private struct NAT {
        var publicIP: IPAddress
        var behavior: NATBehavior
        var mappings: [MappingKey: UInt16] = [:]
        var reverse: [UInt16: TransportAddress] = [:]
        var permittedIPs: [UInt16: Set<IPAddress>] = [:]
        var permittedEndpoints: [UInt16: Set<TransportAddress>] = [:]
        var nextPort: UInt16 = 40000
    }

    private struct InFlight: Comparable {
        /// When the datagram reaches the core (after the sender's link) or the receiver.
        var time: Duration
        var order: Int
        var datagram: Datagram
        /// False while crossing the core towards the receiver's NAT and link.
        var atReceiver: Bool
        static func < (a: InFlight, b: InFlight) -> Bool { (a.time, a.order) < (b.time, b.order) }
    }

    /// The virtual time of the last delivery or ``advance(to:)``.
    public private(set) var now: Duration = .zero
    /// Datagrams dropped by loss, queue overflow, NAT filtering or unknown destinations.
    public private(set) var dropped = 0
    /// Datagrams delivered.
    public private(set) var delivered = 0
    /// Set by ``run(_:until:stop:)`` when an endpoint's deadline stayed at one instant.
    public internal(set) var stalledAt: Duration?
    private var rng: SplitMix64
    private var hosts: [IPAddress: Host] = [:]
    private var nats: [NAT] = []
    private var queue: [InFlight] = []
    private var order = 0

    /// A network whose randomness comes from `seed`.
    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// Adds a NAT box with a public address.
    public func addNAT(publicIP: IPAddress, behavior: NATBehavior) -> NATID {
        nats.append(NAT(publicIP: publicIP, behavior: behavior))
        return NATID(index: nats.count - 1)
    }

    /// Adds a host with `ip`, on the public network or behind `nat`, with an access link.
    @discardableResult
    public func addHost(_ ip: IPAddress, behind nat: NATID? = nil, link: LinkConditions = .init()) -> IPAddress {
        hosts[ip] = Host(ip: ip, nat: nat, link: link)
        return ip
    }

    /// Changes a host's link conditions from now on.
    public func setLink(_ ip: IPAddress, _ link: LinkConditions) { hosts[ip]?.link = link }

    /// Cuts (or restores) a host's link: while cut, everything it sends or should receive is lost.
    public func setConnected(_ ip: IPAddress, _ connected: Bool) { hosts[ip]?.connected = connected }

    /// Stalls a host's uplink until `time` without losing anything: what it sends meanwhile
    /// waits and leaves at `time`, in one burst (a Wi-Fi hiccup, a paused sender).
    public func holdUplink(_ ip: IPAddress, until time: Duration) { hosts[ip]?.heldUntil = time }

    /// Sends a datagram at the current virtual time from a host's address.
    public func send(_ datagram: Datagram) {
        guard var sender = hosts[datagram.from.ip], sender.connected else {
            dropped += 1
            return
        }
        let copies = chance(sender.link.duplicate) ? 2 : 1
        // Loss, then serialisation on the sender's uplink.
        let admitted = admit(&sender, bytes: datagram.data.count, queueFreeAt: \.uplinkFreeAt)
        hosts[datagram.from.ip] = sender
        guard let admittedAt = admitted else {
            dropped += 1
            return
        }
        let departure = max(admittedAt, sender.heldUntil)
        // Through the sender's NAT, if the destination is outside its private realm.
        var outgoing = datagram
        if let natID = sender.nat, !isInside(datagram.to.ip, natID) {
            outgoing.from = translateOutbound(natID, from: datagram.from, to: datagram.to)
        }
        for _ in 0..<copies {
            var delay = sender.link.latency + randomDuration(upTo: sender.link.jitter)
            if chance(sender.link.reorder) { delay += sender.link.reorderDelay }
            order += 1
            queue.append(InFlight(time: departure + delay, order: order, datagram: outgoing, atReceiver: false))
        }
    }

    /// Advances the clock to `time` without delivering.
    public func advance(to time: Duration) { now = max(now, time) }

    /// When the next datagram moves, if any is in flight.
    public var nextEventTime: Duration? { queue.min()?.time }

    /// The next datagram to reach a host by `limit`, advancing the clock to its arrival;
    /// nil (clock at `limit`) when none does. On the way, datagrams cross the receiver's NAT
    /// (which may filter them) and link (loss, bandwidth, latency), in time order.
    public func receive(until limit: Duration) -> (time: Duration, datagram: Datagram)? {
        while let index = queue.indices.min(by: { queue[$0] < queue[$1] }), queue[index].time <= limit {
            let item = queue.remove(at: index)
            now = max(now, item.time)
            if item.atReceiver {
                delivered += 1
                return (now, item.datagram)
            }
            guard let datagram = inbound(item.datagram), var receiver = hosts[datagram.to.ip], receiver.connected else {
                dropped += 1
                continue
            }
            let admitted = admit(&receiver, bytes: datagram.data.count, queueFreeAt: \.downlinkFreeAt)
            hosts[datagram.to.ip] = receiver
            guard let start = admitted else {
                dropped += 1
                continue
            }
            order += 1
            queue.append(
                InFlight(
                    time: start + receiver.link.latency + randomDuration(upTo: receiver.link.jitter), order: order,
                    datagram: datagram, atReceiver: true))
        }
        now = max(now, limit)
        return nil
    }

    /// Applies a link's loss and bandwidth to a datagram of `bytes`: nil when it is lost or
    /// the queue is full, else when it leaves the queue (now, without a bandwidth limit).
    private func admit(_ host: inout Host, bytes: Int, queueFreeAt: WritableKeyPath<Host, Duration>) -> Duration? {
        if lose(&host) { return nil }
        guard let bandwidth = host.link.bandwidth else { return now }
        let start = max(now, host[keyPath: queueFreeAt])
        guard start - now <= host.link.queueLimit else { return nil }
        host[keyPath: queueFreeAt] = start + transmissionTime(bytes, bandwidth)
        return start
    }

    private func transmissionTime(_ bytes: Int, _ bandwidth: Int) -> Duration {
        .nanoseconds(Int64(bytes + 28) * 8 * 1_000_000_000 / Int64(max(1, bandwidth)))
    }

    // MARK: NAT

    private func isInside(_ ip: IPAddress, _ nat: NATID) -> Bool { hosts[ip]?.nat == nat }

    private func translateOutbound(_ id: NATID, from: TransportAddress, to: TransportAddress) -> TransportAddress {
        var nat = nats[id.index]
        let key = MappingKey(inside: from, destination: nat.behavior == .symmetric ? to : nil)
        let port: UInt16
        if let existing = nat.mappings[key] {
            port = existing
        } else {
            port = nat.nextPort
            nat.nextPort &+= 1
            nat.mappings[key] = port
            nat.reverse[port] = from
        }
        nat.permittedIPs[port, default: []].insert(to.ip)
        nat.permittedEndpoints[port, default: []].insert(to)
        nats[id.index] = nat
        return TransportAddress(ip: nat.publicIP, port: port)
    }

    /// Translates a datagram arriving at a NAT's public address to the internal host, or
    /// nil when the NAT filters it. Datagrams to non-NAT addresses pass unchanged.
    private func inbound(_ d: Datagram) -> Datagram? {
        guard let index = nats.firstIndex(where: { $0.publicIP == d.to.ip }) else {
            // A private address is reachable only from inside its own NAT.
            guard let host = hosts[d.to.ip] else { return nil }
            if let nat = host.nat, hosts[d.from.ip]?.nat != nat { return nil }
            return d
        }
        let nat = nats[index]
        guard let inside = nat.reverse[d.to.port] else { return nil }
        switch nat.behavior {
        case .fullCone: break
        case .addressRestricted: guard nat.permittedIPs[d.to.port]?.contains(d.from.ip) == true else { return nil }
        case .portRestricted, .symmetric:
            guard nat.permittedEndpoints[d.to.port]?.contains(d.from) == true else { return nil }
        }
        return Datagram(from: d.from, to: inside, data: d.data)
    }

    // MARK: randomness

    private func chance(_ p: Double) -> Bool {
        p > 0 && Double(rng.next() % 1_000_000) / 1_000_000 < p
    }

    private func lose(_ host: inout Host) -> Bool {
        if host.inBurst {
            if chance(host.link.burstExit) { host.inBurst = false } else { return true }
        } else if chance(host.link.burstEnter) {
            host.inBurst = true
            return true
        }
        return chance(host.link.loss)
    }

    private func randomDuration(upTo limit: Duration) -> Duration {
        guard limit > .zero else { return .zero }
        let nanos = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        return .nanoseconds(Int64(rng.next() % UInt64(max(1, nanos))))
    }
}
