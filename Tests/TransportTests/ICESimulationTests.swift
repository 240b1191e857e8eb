import MeetKitTestSupport
import Testing

@testable import Transport

/// Two ICE peers on a simulated network, optionally behind NATs, with a STUN server.
struct ICEScenario {
    let net: SimulatedNetwork
    let a: SimulatedICEPeer
    let b: SimulatedICEPeer
    let stun: SimulatedSTUNServer

    init(
        seed: UInt64, natA: SimulatedNetwork.NATBehavior? = nil, natB: SimulatedNetwork.NATBehavior? = nil,
        link: SimulatedNetwork.LinkConditions = .init(latency: .milliseconds(10)),
        configure: (inout ICEConfiguration, inout ICEConfiguration) -> Void = { _, _ in }
    ) {
        let net = SimulatedNetwork(seed: seed)
        self.net = net
        let stunAddress = TransportAddress("198.51.100.1:3478")!
        net.addHost(stunAddress.ip)
        stun = SimulatedSTUNServer(address: stunAddress)
        let addressA = Self.place(net, "10.0.0.2", "203.0.113.10", natA, link)
        let addressB = Self.place(net, "10.1.0.2", "203.0.113.20", natB, link)
        var configA = ICEConfiguration()
        configA.role = .controlling
        configA.stunServers = [stunAddress]
        configA.seed = seed &* 2 &+ 1
        var configB = configA
        configB.role = .controlled
        configB.seed = seed &* 2 &+ 2
        configure(&configA, &configB)
        a = SimulatedICEPeer(address: addressA, configuration: configA)
        b = SimulatedICEPeer(address: addressB, configuration: configB)
    }

    static func place(
        _ net: SimulatedNetwork, _ inside: String, _ outside: String, _ nat: SimulatedNetwork.NATBehavior?,
        _ link: SimulatedNetwork.LinkConditions
    ) -> TransportAddress {
        if let nat {
            let id = net.addNAT(publicIP: IPAddress(outside)!, behavior: nat)
            net.addHost(IPAddress(inside)!, behind: id, link: link)
            return TransportAddress(ip: IPAddress(inside)!, port: 5000)
        }
        net.addHost(IPAddress(outside)!, link: link)
        return TransportAddress(ip: IPAddress(outside)!, port: 5000)
    }

    var endpoints: [any SimulatedEndpoint] { [a, b, stun] }

    /// Gathers on both sides, exchanges everything, runs until both connect or `limit`.
    @discardableResult
    func connect(limit: Duration = .seconds(60)) -> Bool {
        a.start(now: net.now)
        b.start(now: net.now)
        net.run(endpoints, until: net.now + .seconds(5)) {
            a.events.contains(.gatheringComplete) && b.events.contains(.gatheringComplete)
        }
        a.learn(from: b, now: net.now)
        b.learn(from: a, now: net.now)
        return net.run(endpoints, until: limit) {
            bothConnected || a.agent.state == .failed && b.agent.state == .failed
        }
            && bothConnected
    }

    var bothConnected: Bool {
        [ICEConnectionState.connected, .completed].contains(a.agent.state)
            && [ICEConnectionState.connected, .completed].contains(b.agent.state)
    }

    /// Sends `count` datagrams each way over the selected pairs and runs until they arrive.
    func exchange(_ count: Int) -> (aGot: Int, bGot: Int) {
        let before = (a.received.count, b.received.count)
        for i in 0..<count {
            a.sendData([0x80, UInt8(i & 0xFF), 0xA])
            b.sendData([0x80, UInt8(i & 0xFF), 0xB])
        }
        net.run(endpoints, until: net.now + .seconds(2))
        return (a.received.count - before.0, b.received.count - before.1)
    }
}

@Suite("ICE over the simulated network")
struct ICESimulationTests {
    @Test func publicHostsConnectAndExchangeData() {
        let s = ICEScenario(seed: 1)
        #expect(s.connect())
        #expect(s.a.agent.selectedPair?.remote == s.b.address)
        #expect(s.b.agent.selectedPair?.remote == s.a.address)
        #expect(s.a.states.prefix(2) == [.checking, .connected])
        let got = s.exchange(20)
        #expect(got.aGot == 20 && got.bGot == 20)
        // Checking is done after nomination: completed on both sides.
        s.net.run(s.endpoints, until: s.net.now + .seconds(2))
        #expect(s.a.agent.state == .completed && s.b.agent.state == .completed)
        #expect(s.a.events.contains(.gatheringComplete))
    }

    /// Every pair of NAT behaviours: connects where ICE can traverse without TURN, fails
    /// in bounded time where it cannot (symmetric facing symmetric or port-restricted).
    @Test(arguments: SimulatedNetwork.NATBehavior.allCases)
    func natMatrix(natA: SimulatedNetwork.NATBehavior) {
        for natB in SimulatedNetwork.NATBehavior.allCases {
            let s = ICEScenario(seed: 7, natA: natA, natB: natB)
            let impossible =
                (natA == .symmetric && (natB == .symmetric || natB == .portRestricted))
                || (natB == .symmetric && natA == .portRestricted)
            let connected = s.connect(limit: .seconds(60))
            if impossible {
                #expect(!connected, "\(natA)–\(natB) cannot connect without TURN")
                #expect(s.a.agent.state == .failed && s.b.agent.state == .failed, "\(natA)–\(natB) must fail")
                #expect(s.net.now < .seconds(40), "\(natA)–\(natB) failed only at \(s.net.now)")
            } else {
                #expect(connected, "\(natA)–\(natB) should connect")
                let got = s.exchange(5)
                #expect(got.aGot == 5 && got.bGot == 5, "\(natA)–\(natB) data")
            }
            #expect(s.a.candidates.contains { $0.kind == .serverReflexive }, "srflx gathered behind \(natA)")
        }
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func connectsThroughThirtyPercentLoss(seed: UInt64) {
        let s = ICEScenario(
            seed: seed, natA: .portRestricted, natB: .fullCone,
            link: .init(latency: .milliseconds(30), jitter: .milliseconds(20), loss: 0.3))
        #expect(s.connect(limit: .seconds(60)))
        #expect(s.a.agent.statistics.checksSent > 3)
    }

    @Test func consentLossAfterLinkCut() {
        let s = ICEScenario(seed: 3)
        #expect(s.connect())
        let cut = s.net.now
        s.net.setConnected(s.b.ip, false)
        s.net.run(s.endpoints, until: cut + .seconds(60)) { s.a.agent.state == .failed }
        #expect(s.a.states.suffix(2) == [.disconnected, .failed])
        let disconnectedAt = s.net.now
        #expect(disconnectedAt - cut <= .seconds(36), "consent expires about 30 s after the last response")
        #expect(s.a.agent.selectedPair == nil)
    }

    @Test func disconnectedRecoversWhenTheLinkReturns() {
        let s = ICEScenario(seed: 4)
        #expect(s.connect())
        s.net.setConnected(s.b.ip, false)
        s.net.run(s.endpoints, until: s.net.now + .seconds(20)) { s.a.agent.state == .disconnected }
        #expect(s.a.agent.state == .disconnected)
        s.net.setConnected(s.b.ip, true)
        s.net.run(s.endpoints, until: s.net.now + .seconds(10)) { s.a.agent.state == .completed }
        #expect(s.a.agent.state == .completed)
    }

    @Test func roleConflictIsResolved() {
        let s = ICEScenario(seed: 5) { a, b in b.role = .controlling }
        #expect(s.connect())
        let roles = Set([s.a.agent.role, s.b.agent.role])
        #expect(roles == [.controlling, .controlled])
        #expect(s.a.events.contains(.roleChanged(.controlled)) || s.b.events.contains(.roleChanged(.controlled)))
    }

    @Test func acceptsAggressiveNomination() {
        let s = ICEScenario(seed: 6) { a, _ in a.aggressiveNomination = true }
        #expect(s.connect())
        #expect(s.exchange(3) == (3, 3))
    }

    /// Trickle: candidates arrive one by one after checks started, end-of-candidates last.
    @Test func trickleCandidatesLate() {
        let s = ICEScenario(seed: 8, natA: .portRestricted, natB: .addressRestricted)
        s.a.start(now: .zero)
        s.b.start(now: .zero)
        // Credentials first, candidates later.
        s.a.agent.setRemoteCredentials(s.b.agent.localCredentials, now: .zero)
        s.b.agent.setRemoteCredentials(s.a.agent.localCredentials, now: .zero)
        s.net.run(s.endpoints, until: .seconds(2))
        #expect(s.a.agent.state == .new, "nothing to check before a remote candidate")
        for c in s.b.candidates { s.a.agent.addRemoteCandidate(c, now: s.net.now) }
        s.net.run(s.endpoints, until: s.net.now + .milliseconds(500))
        for c in s.a.candidates { s.b.agent.addRemoteCandidate(c, now: s.net.now) }
        s.a.agent.setRemoteEndOfCandidates(now: s.net.now)
        s.b.agent.setRemoteEndOfCandidates(now: s.net.now)
        #expect(s.net.run(s.endpoints, until: .seconds(30)) { s.bothConnected })
    }

    /// A peer that never sends candidates: it still connects via peer-reflexive discovery
    /// when the other side checks it.
    @Test func peerReflexiveDiscovery() {
        let s = ICEScenario(seed: 9)
        s.a.start(now: .zero)
        s.b.start(now: .zero)
        s.net.run(s.endpoints, until: .seconds(1))
        s.a.learn(from: s.b, now: s.net.now)
        s.b.agent.setRemoteCredentials(s.a.agent.localCredentials, now: s.net.now)
        #expect(s.net.run(s.endpoints, until: .seconds(30)) { s.bothConnected })
        #expect(s.b.agent.remoteCandidates.contains { $0.kind == .peerReflexive })
    }

    @Test func iceRestartReconnects() {
        let s = ICEScenario(seed: 10)
        #expect(s.connect())
        s.a.agent.restart(now: s.net.now)
        s.b.agent.restart(now: s.net.now)
        #expect(s.a.agent.selectedPair != nil, "the old pair stays usable during a restart")
        s.a.learn(from: s.b, now: s.net.now)
        s.b.learn(from: s.a, now: s.net.now)
        let oldUfrag = s.a.agent.localCredentials.ufrag
        #expect(s.net.run(s.endpoints, until: s.net.now + .seconds(20)) { s.bothConnected })
        #expect(s.exchange(4) == (4, 4))
        #expect(s.a.agent.localCredentials.ufrag == oldUfrag)
    }

    /// The controlled side's consent expired (its network went away) while the controlling
    /// side, slower to give up, still has its pair: a restart from the controlling side
    /// checks the same addresses again and must nominate the pair anew — the same key as
    /// its old selection — or the controlled side stays checking for good (a relay's
    /// subscriber connection, restarted by the relay, never came back).
    @Test func aRestartNominatesAgainThePairItHadSelected() {
        let s = ICEScenario(seed: 14) { _, b in b.consentTimeout = .seconds(3) }
        #expect(s.connect())
        s.net.setConnected(s.b.ip, false)
        s.net.run(s.endpoints, until: s.net.now + .seconds(10)) { s.b.agent.state == .failed }
        #expect(s.b.agent.state == .failed && s.a.agent.selectedPair != nil)
        s.net.setConnected(s.b.ip, true)
        s.a.agent.restart(now: s.net.now)
        s.b.agent.restart(now: s.net.now)
        s.a.learn(from: s.b, now: s.net.now)
        s.b.learn(from: s.a, now: s.net.now)
        #expect(s.net.run(s.endpoints, until: s.net.now + .seconds(20)) { s.bothConnected }, "b: \(s.b.agent.state)")
        #expect(s.exchange(4) == (4, 4))
    }

    /// An ICE-lite peer only answers checks; MeetKit becomes controlling and nominates.
    @Test func liteRemoteMakesUsControlling() {
        let net = SimulatedNetwork(seed: 2)
        net.addHost(IPAddress("203.0.113.30")!)
        net.addHost(IPAddress("203.0.113.31")!)
        var config = ICEConfiguration()
        config.role = .controlled
        let peer = SimulatedICEPeer(address: TransportAddress("203.0.113.30:5000")!, configuration: config)
        let lite = LiteResponder(address: TransportAddress("203.0.113.31:7882")!)
        peer.start(now: .zero)
        peer.agent.setRemoteCredentials(lite.credentials, isLite: true, now: .zero)
        peer.agent.addRemoteCandidate(lite.candidate, now: .zero)
        peer.agent.setRemoteEndOfCandidates(now: .zero)
        #expect(peer.agent.role == .controlling)
        #expect(net.run([peer, lite], until: .seconds(10)) { lite.nominated && peer.agent.state == .completed })
    }

    @Test func hostileSTUNIsCountedNotFatal() {
        let s = ICEScenario(seed: 12)
        #expect(s.connect())
        var bad = STUNMessage(class: .request, method: STUNMethod.binding)
        bad.username = "\(s.b.agent.localCredentials.ufrag):x"
        let forged = bad.encoded(integrityKey: Array("wrong password".utf8), fingerprint: true)
        var broken = forged
        broken[broken.count - 1] ^= 0xFF
        for data in [forged, broken, [0, 1, 0, 4, 0x21, 0x12, 0xA4, 0x42] + [UInt8](repeating: 0, count: 12), [0x01]] {
            s.net.send(.init(from: s.a.address, to: s.b.address, data: data))
        }
        s.net.run(s.endpoints, until: s.net.now + .seconds(1))
        let stats = s.b.agent.statistics
        #expect(stats.badIntegrity >= 1 && stats.badFingerprint >= 1 && stats.malformed >= 1)
        #expect(s.bothConnected)
    }
}

/// A minimal ICE-lite agent (RFC 8445 §2.5): answers checks, sends none, records nomination.
final class LiteResponder: SimulatedEndpoint {
    let address: TransportAddress
    let credentials = ICECredentials(ufrag: "liteUfrag", pwd: "litePasswordOf24Chars!!")
    private(set) var nominated = false
    private var out: [SimulatedNetwork.Datagram] = []

    init(address: TransportAddress) { self.address = address }

    var candidate: ICECandidate {
        ICECandidate(
            foundation: "1", priority: ICECandidate.priority(kind: .host), address: address.ip.description,
            port: address.port, kind: .host)
    }
    var ip: IPAddress { address.ip }
    var nextDeadline: Duration? { nil }
    func handleTimeout(now: Duration) {}
    func drainTransmits() -> [SimulatedNetwork.Datagram] {
        defer { out = [] }
        return out
    }

    func handle(_ datagram: SimulatedNetwork.Datagram, now: Duration) {
        guard let m = try? STUNMessage(parsing: datagram.data), m.messageClass == .request,
            STUNMessage.checkIntegrity(datagram.data, key: Array(credentials.pwd.utf8)),
            m.username?.hasPrefix(credentials.ufrag + ":") == true
        else { return }
        if m.useCandidate { nominated = true }
        var response = STUNMessage(class: .successResponse, method: STUNMethod.binding, transactionID: m.transactionID)
        response.xorMappedAddress = datagram.from
        out.append(
            .init(
                from: address, to: datagram.from,
                data: response.encoded(integrityKey: Array(credentials.pwd.utf8), fingerprint: true)))
    }
}
