import Codec
import MeetKitTestSupport
import Testing

@testable import Transport

/// The one-output-call contract of the sans-IO machines: a PeerConnectionCore driven by
/// nothing but `handleDatagram`, `handleTimeout` and `pollOutput` — a loop written here,
/// with no helper that knows the machine's insides — connects and carries media exactly
/// as it does under the simulation runner, and its outputs need no relaying by anyone.
@Suite("Poll contract")
struct PollContractTests {
    /// What a run produced, for comparing two ways of driving the same machines.
    struct Outcome: Equatable {
        var statesA: [PeerConnectionState] = []
        var statesB: [PeerConnectionState] = []
        var pcm: [Int16] = []
        var framesDecoded = 0
    }

    static let start = Duration.seconds(1)
    static let blocks = 100

    /// Two cores with seeded ICE, `a` sending audio to `b`, which decodes it at 16 kHz.
    static func pair() throws -> (a: PeerConnectionCore, b: PeerConnectionCore, mid: String) {
        func core(_ seed: UInt64) throws -> PeerConnectionCore {
            var config = PeerConnectionConfiguration()
            config.ice.seed = seed
            return try PeerConnectionCore(configuration: config)
        }
        let a = try core(1)
        let b = try core(2)
        let mid = a.addTransceiver(.audio, direction: .sendonly)
        return (a, b, mid)
    }

    static func negotiate(_ a: PeerConnectionCore, _ b: PeerConnectionCore, mid: String) throws {
        let offer = a.createOffer()
        try a.setLocalDescription(offer)
        try b.setRemoteDescription(offer, now: .zero)
        try b.setReceiveOutput(.decoded(audioSampleRate: 16_000), mid: mid)
        let answer = try b.createAnswer()
        try b.setLocalDescription(answer)
        try a.setRemoteDescription(answer, now: .zero)
    }

    static func network() -> SimulatedNetwork {
        let net = SimulatedNetwork(seed: 3)
        net.addHost(IPAddress("203.0.113.1")!, link: .init(latency: .milliseconds(15)))
        net.addHost(IPAddress("203.0.113.2")!, link: .init(latency: .milliseconds(15)))
        return net
    }

    static let addressA = TransportAddress("203.0.113.1:4000")!
    static let addressB = TransportAddress("203.0.113.2:4000")!

    static func record(_ event: PeerConnectionCore.Event, into outcome: inout Outcome, fromA: Bool) {
        switch event {
        case .connectionState(let s): if fromA { outcome.statesA.append(s) } else { outcome.statesB.append(s) }
        case .audio(_, let frame): outcome.pcm += frame.samples
        default: break
        }
    }

    /// The reference: the simulation runner and its machine wrapper.
    func runWithRunner() throws -> Outcome {
        let net = Self.network()
        let (a, b, mid) = try Self.pair()
        var outcome = Outcome()
        let nodeA = SimulatedMachine(a, address: Self.addressA) { e, _ in Self.record(e, into: &outcome, fromA: true) }
        let nodeB = SimulatedMachine(b, address: Self.addressB) { e, _ in Self.record(e, into: &outcome, fromA: false) }
        a.start(localAddresses: [Self.addressA], now: .zero)
        b.start(localAddresses: [Self.addressB], now: .zero)
        try Self.negotiate(a, b, mid: mid)
        var tone = ToneGenerator(frequency: 440)
        var sent = 0
        func produce(_ now: Duration) {
            try? a.send(audio: tone.nextFrame(samplesPerChannel: 960), mid: mid, now: now)
            sent += 1
            if sent < Self.blocks { nodeA.timer = (now + .milliseconds(20), produce) }
        }
        nodeA.timer = (Self.start, produce)
        net.run([nodeA, nodeB], until: .seconds(4))
        outcome.framesDecoded = b.statistics(mid: mid)?.framesDecoded ?? 0
        return outcome
    }

    /// The same run, driven here through the three calls alone.
    func runByHand() throws -> Outcome {
        let net = Self.network()
        let (a, b, mid) = try Self.pair()
        var outcome = Outcome()
        var deadlines: [Duration?] = [nil, nil]
        let cores = [a, b]
        func poll(_ i: Int) {
            while true {
                switch cores[i].pollOutput() {
                case .transmit(let datagram): net.send(datagram)
                case .event(let event): Self.record(event, into: &outcome, fromA: i == 0)
                case .wait(let until):
                    // Asking again without an input changes nothing: no hidden work.
                    #expect(cores[i].pollOutput() == .wait(until: until))
                    deadlines[i] = until
                    return
                }
            }
        }
        a.start(localAddresses: [Self.addressA], now: .zero)
        b.start(localAddresses: [Self.addressB], now: .zero)
        try Self.negotiate(a, b, mid: mid)
        poll(0)
        poll(1)
        var tone = ToneGenerator(frequency: 440)
        var produceAt: Duration? = Self.start
        var sent = 0
        let limit = Duration.seconds(4)
        while true {
            let network = net.nextEventTime
            let timer = [deadlines[0], deadlines[1], produceAt].compactMap { $0 }.min()
            guard let next = [network, timer].compactMap({ $0 }).min(), next <= limit else { break }
            if let network, network <= (timer ?? limit) {
                guard let (time, datagram) = net.receive(until: network) else { continue }
                let i = datagram.to.ip == Self.addressA.ip ? 0 : 1
                cores[i].handleDatagram(datagram.data, from: datagram.from, to: datagram.to, now: time)
                poll(i)
                continue
            }
            net.advance(to: next)
            if let at = produceAt, at <= next {
                try? a.send(audio: tone.nextFrame(samplesPerChannel: 960), mid: mid, now: next)
                sent += 1
                produceAt = sent < Self.blocks ? at + .milliseconds(20) : nil
                poll(0)
            }
            for i in 0..<2 where (deadlines[i] ?? limit + .seconds(1)) <= next {
                cores[i].handleTimeout(now: next)
                poll(i)
            }
        }
        outcome.framesDecoded = b.statistics(mid: mid)?.framesDecoded ?? 0
        return outcome
    }

    @Test func aMachineDrivenOnlyThroughItsOutputCallReachesTheSameResults() throws {
        let reference = try runWithRunner()
        let byHand = try runByHand()
        #expect(reference.statesA.prefix(2) == [.connecting, .connected])
        #expect(reference.framesDecoded == Self.blocks, "every block sent was decoded")
        #expect(reference.pcm.count == Self.blocks * 320)
        #expect(byHand.statesA == reference.statesA && byHand.statesB == reference.statesB)
        #expect(byHand.framesDecoded == reference.framesDecoded)
        #expect(byHand.pcm == reference.pcm, "the same audio, sample for sample")
    }
}
