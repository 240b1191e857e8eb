// Forwarding at meet-server: its media router relaying a room of MeetKit publishers to MeetKit
// subscribers, per relayed RTP packet, against the bare libsrtp work the same relaying needs
// (one unprotect per packet in, one protect per packet out), measured in the same run.

import CSRTP
import Codec
import Foundation
import MeetKitTestSupport
import RoomServer
import Transport

/// A meet-server room at the media router (sans-IO, on the simulated network): `publishers`
/// MeetKit peers each sending one track of one kind on its publisher connection, and
/// `subscribers` MeetKit peers each receiving every track on its subscriber connection, set
/// up as the signalling side sets them up (`/rtc` roles: the publisher offers, the server
/// offers the subscriber connection) and subscribed through the router.
final class ForwardingRoom {
    let net: SimulatedNetwork
    let router: SimulatedMachine<MediaRouter>
    let publishers: [SimulatedMachine<PeerConnectionCore>]
    let publisherMids: [String]
    let subscribers: [SimulatedMachine<PeerConnectionCore>]
    /// Frames each subscriber received, per track (mid on its connection).
    private(set) var framesReceived: [[String: Int]]
    /// The SRTP profile the publishers negotiated with the server.
    private(set) var profile: SRTPProfile?
    private var now: Duration = .zero

    init(kind: MediaKind, publishers publisherCount: Int, subscribers subscriberCount: Int) throws {
        let net = SimulatedNetwork(seed: 11)
        self.net = net
        let serverAddress = TransportAddress("198.51.100.1:7882")!
        net.addHost(serverAddress.ip, link: .init(latency: .milliseconds(1)))
        router = SimulatedMachine(MediaRouter(boundAddress: serverAddress), address: serverAddress)
        func client(_ n: Int) -> SimulatedMachine<PeerConnectionCore> {
            let address = TransportAddress("203.0.113.\(n):5000")!
            net.addHost(address.ip, link: .init(latency: .milliseconds(1)))
            let core = try! PeerConnectionCore()
            core.start(localAddresses: [address], now: .zero)
            return SimulatedMachine(core, address: address)
        }
        var publishers: [SimulatedMachine<PeerConnectionCore>] = []
        var publisherMids: [String] = []
        var publishedTracks: [MediaRouter.TrackEnd] = []
        for i in 0..<publisherCount {
            let peer = client(10 + i)
            let mid = peer.machine.addTransceiver(kind, direction: .sendonly)
            let offer = peer.machine.createOffer()
            try peer.machine.setLocalDescription(offer)
            router.machine.setMember(sid: "PA_pub\(i)", identity: "pub\(i)", room: "bench", canPublishData: true)
            let id = try router.machine.openConnection(participant: "PA_pub\(i)", role: .publisher, now: .zero)
            let answer = try router.machine.withConnection(id) { core in
                try core.setRemoteDescription(offer, now: .zero)
                let answer = try core.createAnswer()
                try core.setLocalDescription(answer)
                return answer
            }
            try peer.machine.setRemoteDescription(answer, now: .zero)
            publishers.append(peer)
            publisherMids.append(mid)
            publishedTracks.append(MediaRouter.TrackEnd(connection: id, mid: mid))
        }
        var subscribers: [SimulatedMachine<PeerConnectionCore>] = []
        for s in 0..<subscriberCount {
            let peer = client(100 + s)
            router.machine.setMember(sid: "PA_sub\(s)", identity: "sub\(s)", room: "bench", canPublishData: true)
            let id = try router.machine.openConnection(participant: "PA_sub\(s)", role: .subscriber, now: .zero)
            let (offer, mids) = try router.machine.withConnection(id) { core in
                let mids = (0..<publisherCount).map {
                    core.addTransceiver(kind, direction: .sendonly, streamID: "PA_pub\($0)", trackID: "TR_pub\($0)")
                }
                let offer = core.createOffer()
                try core.setLocalDescription(offer)
                return (offer, mids)
            }
            try peer.machine.setRemoteDescription(offer, now: .zero)
            for mid in mids { try peer.machine.setReceiveOutput(.encoded, mid: mid) }
            let answer = try peer.machine.createAnswer()
            try peer.machine.setLocalDescription(answer)
            try router.machine.withConnection(id) { try $0.setRemoteDescription(answer, now: .zero) }
            for (published, mid) in zip(publishedTracks, mids) {
                router.machine.subscribe(MediaRouter.TrackEnd(connection: id, mid: mid), to: published, now: .zero)
            }
            subscribers.append(peer)
        }
        self.publishers = publishers
        self.publisherMids = publisherMids
        self.subscribers = subscribers
        framesReceived = Array(repeating: [:], count: subscriberCount)
        for (s, peer) in subscribers.enumerated() {
            peer.onEvent = { [unowned self] event, _ in
                if case .frame(let mid, _) = event { framesReceived[s][mid, default: 0] += 1 }
            }
        }
        publishers[0].onEvent = { [unowned self] event, _ in
            if case .transport(.secured(let profile)) = event { self.profile = profile }
        }
        // Both ends of every connection: the server's end (the DTLS client) is up last.
        var serverConnected: Set<MediaConnectionID> = []
        router.onEvent = { event, _ in
            if case .connectionState(let id, .connected) = event { serverConnected.insert(id) }
        }
        let peers = publishers + subscribers
        let connected = net.run([router] + peers, until: .seconds(20)) {
            serverConnected.count == peers.count && peers.allSatisfy { $0.machine.connectionState == .connected }
        }
        router.onEvent = { _, _ in }
        guard connected else { throw BenchError("the forwarding room did not connect") }
        now = net.now
    }

    /// SRTP datagrams from the publishers to the server for `ticks` ticks (each publisher
    /// sends one of `frames`, in turn, per tick), taken off the wire: the input of a round.
    func wire(ticks: Int, frames: [EncodedFrame]) throws -> [Datagram] {
        var wire: [Datagram] = []
        for _ in 0..<ticks {
            now += .milliseconds(20)
            for (peer, mid) in zip(publishers, publisherMids) {
                var frame = frames[sent % frames.count]
                let step = frame.duration ?? MediaTime(value: 960, timescale: 48_000)
                frame.timestamp = MediaTime(value: Int64(sent) * step.value, timescale: step.timescale)
                try peer.machine.send(frame, mid: mid, now: now)
                wire += peer.drainTransmits().filter { DatagramKind($0.data) == .rtp }
            }
            sent += 1
        }
        return wire
    }
    private var sent = 0

    /// Hands `wire` to the router as its UDP driver does (each datagram copied into one
    /// reused buffer, then the router polled until it waits), and returns the datagrams it
    /// sent (to `sink` when given).
    func forward(_ wire: [Datagram], sink: ((Datagram) -> Void)? = nil) -> Int {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(2048)
        var sent = 0
        let router = router.machine
        let at = now
        for d in wire {
            d.data.withUnsafeBytes { buffer.overwrite(with: $0) }
            router.handleDatagram(&buffer, from: d.from, to: d.to, now: at)
            router.drainOutputs(
                transmit: {
                    sent += 1
                    sink?($0)
                }, event: { _ in })
        }
        return sent
    }

    /// Delivers what the router sent to the subscribers it was addressed to.
    func deliver(_ datagrams: [Datagram]) {
        var byAddress: [TransportAddress: SimulatedMachine<PeerConnectionCore>] = [:]
        for peer in subscribers { byAddress[peer.address] = peer }
        for d in datagrams { byAddress[d.to]?.handle(d, now: now) }
    }
}

/// The bare libsrtp work of relaying `wire` to `fanOut` subscribers: each packet copied into
/// a reused buffer and unprotected, then per subscriber copied and protected with that
/// subscriber's own outbound context. Contexts come made and are freed by the caller.
func bareRelay(_ wire: FixedKeyWire, inbound: srtp_t, outbound: [srtp_t]) -> Int {
    var buffer = [UInt8](repeating: 0, count: 2048)
    var out = [UInt8](repeating: 0, count: 2048)
    var sent = 0
    for packet in wire.packets {
        var length = Int32(packet.count)
        buffer.withUnsafeMutableBytes { b in
            packet.withUnsafeBytes { b.copyMemory(from: $0) }
            guard srtp_unprotect(inbound, b.baseAddress, &length) == srtp_err_status_ok else { return }
            out.withUnsafeMutableBytes { o in
                for context in outbound {
                    o.baseAddress!.copyMemory(from: b.baseAddress!, byteCount: Int(length))
                    var outLength = length
                    if srtp_protect(context, o.baseAddress, &outLength) == srtp_err_status_ok { sent += 1 }
                }
            }
        }
    }
    return sent
}

/// Encoded frames of one kind for the publishers: 20 ms Opus packets of a tone, or VP8 at
/// 640x480, 30 frames per second, 1 Mbit/s (a keyframe, then delta frames).
func forwardingFrames(_ kind: MediaKind) throws -> [EncodedFrame] {
    switch kind {
    case .audio:
        return try opusPackets(50).map {
            EncodedFrame(
                codec: .opus, data: $0, timestamp: MediaTime(value: 0, timescale: 48_000),
                duration: MediaTime(value: 960, timescale: 48_000), isKeyframe: true)
        }
    default:
        var config = VP8EncoderConfiguration(width: 640, height: 480)
        config.bitrate = 1_000_000
        let encoder = try VP8Encoder(configuration: config)
        var pattern = TestPatternGenerator(width: 640, height: 480, frameRate: 30)
        var frames: [EncodedFrame] = []
        while frames.count < 30 {
            if var frame = try encoder.encode(pattern.nextFrame()) {
                frame.duration = MediaTime(value: 3000, timescale: 90_000)
                frames.append(frame)
            }
        }
        return frames
    }
}

/// meet-server's forwarding cost per relayed RTP packet for a room of 10 publishers and 10
/// subscribers, against bare libsrtp unprotect + protect of the same packets.
func benchServerForwarding(_ kind: MediaKind) throws {
    let publishers = 10
    let fanOut = 10
    let frames = try forwardingFrames(kind)
    // Whole cycles of the frames, so that every round carries the same packets' sizes.
    let ticks = frames.count * (kind == .audio && !Bench.quick ? 2 : 1)
    let room = try ForwardingRoom(kind: kind, publishers: publishers, subscribers: fanOut)
    guard let profile = room.profile else { throw BenchError("the forwarding room negotiated no SRTP profile") }
    // Each round relays packets it has not seen (SRTP refuses a replay), prepared before
    // timing starts, as are the bare contexts: a first round delivered to the subscribers
    // (every subscriber must receive every publisher's frames, so the figures are of real
    // relaying), the timed rounds, and one with allocations counted.
    let rounds = Bench.rounds
    var inputs = try (0..<rounds + 2).map { _ in try room.wire(ticks: ticks, frames: frames) }
    let packetsIn = inputs[0].count
    guard inputs.allSatisfy({ $0.count == packetsIn }) else { throw BenchError("rounds of unequal size") }
    var output: [Datagram] = []
    _ = room.forward(inputs.removeFirst()) { output.append($0) }
    room.deliver(output)
    let framesPerTrack = room.framesReceived.flatMap(\.values)
    guard framesPerTrack.count == fanOut * publishers, let fewest = framesPerTrack.min(), fewest == ticks else {
        throw BenchError("subscribers received too few frames: \(room.framesReceived)")
    }
    // The bare reference relays packets of the same sizes (SRTP's cost follows the size).
    let tag = profile == .aeadAES128GCM ? 16 : 10
    let sizes = inputs[0].map { $0.data.count - 12 - tag }
    let wire = try FixedKeyWire(profile, payloads: sizes.map { [UInt8](repeating: 0x5a, count: $0) }, count: packetsIn)
    func bareContexts() -> (srtp_t, [srtp_t]) {
        (
            wire.bareSession(),
            (0..<fanOut).map { _ in bareSRTPSession(profile, key: wire.key, salt: wire.salt, outbound: true) }
        )
    }
    var bare = (0..<rounds).map { _ in bareContexts() }
    let relayedBefore = room.router.machine.statistics.relayedPackets
    let times = compare(
        rounds: rounds,
        {
            let (inbound, outbound) = bare.removeLast()
            precondition(bareRelay(wire, inbound: inbound, outbound: outbound) == packetsIn * fanOut)
            srtp_dealloc(inbound)
            for context in outbound { srtp_dealloc(context) }
        },
        {
            let sent = room.forward(inputs.removeFirst())
            precondition(sent >= packetsIn * fanOut, "the router sent \(sent) datagrams for \(packetsIn) packets")
        })
    let relayed = room.router.machine.statistics.relayedPackets - relayedBefore
    guard relayed == rounds * packetsIn * fanOut else {
        throw BenchError("relayed \(relayed) packets, expected \(rounds * packetsIn * fanOut)")
    }
    let meanSize = Double(inputs[0].map(\.data.count).reduce(0, +)) / Double(packetsIn)
    let allocations = Allocations.count { _ = room.forward(inputs.removeFirst()) }
    let (inbound, outbound) = bareContexts()
    let bareAllocations = Allocations.count { _ = bareRelay(wire, inbound: inbound, outbound: outbound) }
    srtp_dealloc(inbound)
    for context in outbound { srtp_dealloc(context) }
    let perRelayed = Double(packetsIn * fanOut)
    let name = "meet-server relay \(kind == .audio ? "Opus" : "VP8"), 10→10 (per packet out)"
    print(
        "\(name.padding(toLength: 50, withPad: " ", startingAt: 0)) libsrtp \(fmt(times.reference / perRelayed * 1e6, 3)) µs  MeetKit \(fmt(times.candidate / perRelayed * 1e6, 3)) µs  ratio \(fmt(times.ratio, 3))"
    )
    print(
        "  \(packetsIn) packets in (mean \(Int(meanSize)) bytes, \(profile)) → \(packetsIn * fanOut) out per round; allocations per packet out: libsrtp \(Allocations.perItem(bareAllocations, packetsIn * fanOut)), MeetKit \(Allocations.perItem(allocations, packetsIn * fanOut)); every subscriber received \(fewest) frames of each of the \(publishers) tracks"
    )
}
