import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// Two DTLS endpoints wired back to back, optionally dropping datagrams.
struct DTLSPair {
    let client: DTLSConnection
    let server: DTLSConnection
    var now: Duration = .zero
    var clientEvents: [DTLSConnection.Event] = []
    var serverEvents: [DTLSConnection.Event] = []
    var datagrams = 0

    init(
        clientProfiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80],
        serverProfiles: [SRTPProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80], tamper: Bool = false,
        initialRTO: Duration = .milliseconds(500)
    ) throws {
        let a = try DTLSCertificate.generate()
        let b = try DTLSCertificate.generate()
        var fingerprintOfB = b.fingerprint
        if tamper { fingerprintOfB = String(fingerprintOfB.reversed()) }
        client = try DTLSConnection(
            role: .client, certificate: a, remoteFingerprint: ("sha-256", fingerprintOfB), profiles: clientProfiles,
            initialRTO: initialRTO)
        server = try DTLSConnection(
            role: .server, certificate: b, remoteFingerprint: ("sha-256", a.fingerprint), profiles: serverProfiles,
            initialRTO: initialRTO)
    }

    /// Runs in real time (OpenSSL times retransmissions on the wall clock) until both sides
    /// are done or `limit`, losing datagrams for which `lose` is true.
    mutating func run(limit: Duration = .seconds(20), lose: (Int) -> Bool = { _ in false }) {
        let clock = ContinuousClock()
        let origin = clock.now
        client.start(now: now)
        server.start(now: now)
        while now < limit {
            now = clock.now - origin
            var moved = false
            for (from, to) in [(client, server), (server, client)] {
                let (records, events) = from.drain()
                if from === client { clientEvents += events } else { serverEvents += events }
                for d in records {
                    datagrams += 1
                    moved = true
                    if !lose(datagrams) { to.handleDatagram(d, now: now) }
                }
            }
            let settled = [client.state, server.state].allSatisfy { $0 != .connecting && $0 != .new }
            if settled && !moved { return }
            if !moved {
                let next = [client.nextDeadline, server.nextDeadline].compactMap { $0 }.min() ?? limit
                if next > now {
                    usleep(UInt32(min(50_000, max(1000, (next - now).components.attoseconds / 1_000_000_000_000))))
                }
                now = clock.now - origin
                client.handleTimeout(now: now)
                server.handleTimeout(now: now)
            }
        }
    }

    var clientKeys: SRTPKeyingMaterial? {
        clientEvents.lazy.compactMap { if case .connected(let k) = $0 { k } else { nil } }.first
    }
    var serverKeys: SRTPKeyingMaterial? {
        serverEvents.lazy.compactMap { if case .connected(let k) = $0 { k } else { nil } }.first
    }
}

@Suite("DTLS-SRTP handshake")
struct DTLSTests {
    @Test func handshakeExportsMatchingKeys() throws {
        var pair = try DTLSPair()
        pair.run()
        #expect(pair.client.state == .connected && pair.server.state == .connected)
        let c = try #require(pair.clientKeys)
        let s = try #require(pair.serverKeys)
        #expect(c.profile == .aeadAES128GCM, "GCM is preferred")
        #expect(c.localKey == s.remoteKey && c.localSalt == s.remoteSalt)
        #expect(c.remoteKey == s.localKey && c.remoteSalt == s.localSalt)
        #expect(c.localKey != c.remoteKey && c.localSalt.count == 12)
        #expect(pair.datagrams < 12, "a clean handshake has no spurious retransmissions (\(pair.datagrams))")
    }

    @Test func negotiatesAESCMWhenThatIsAllThePeerHas() throws {
        var pair = try DTLSPair(serverProfiles: [.aes128CMHMACSHA1_80])
        pair.run()
        #expect(pair.clientKeys?.profile == .aes128CMHMACSHA1_80 && pair.clientKeys?.localSalt.count == 14)
    }

    @Test func noCommonProfileFails() throws {
        var pair = try DTLSPair(clientProfiles: [.aeadAES128GCM], serverProfiles: [.aes128CMHMACSHA1_80])
        pair.run()
        #expect(pair.client.state == .failed || pair.server.state == .failed)
        #expect(pair.clientKeys == nil)
    }

    /// A tampered fingerprint: the handshake fails on both sides and MeetKit says why.
    @Test func tamperedFingerprintFailsBothSides() throws {
        var pair = try DTLSPair(tamper: true)
        pair.run()
        #expect(pair.client.state == .failed)
        #expect(pair.server.state == .failed, "the server gets the client's alert")
        guard case .fingerprintMismatch? = pair.client.error else {
            Issue.record("expected a fingerprint mismatch, got \(String(describing: pair.client.error))")
            return
        }
    }

    /// Lost flights are retransmitted until the handshake completes (real time, 50 ms RTO).
    @Test(arguments: [UInt64(1), 2, 3])
    func handshakeSurvivesLoss(seed: UInt64) throws {
        var pair = try DTLSPair(initialRTO: .milliseconds(50))
        var rng = SplitMix64(seed: seed)
        // The first ClientHello and a datagram of the next flights are always lost; others
        // at random.
        pair.run { n in n == 1 || n == 4 || (n > 6 && rng.next() % 100 < 30) }
        #expect(pair.client.state == .connected && pair.server.state == .connected)
        #expect(pair.clientKeys?.localKey == pair.serverKeys?.remoteKey)
        // Datagram 1 is the client's only first-flight datagram: connecting at all proves it
        // was retransmitted.
    }

    @Test func applicationDataAndCloseNotify() throws {
        var pair = try DTLSPair()
        pair.run()
        try pair.client.send([1, 2, 3])
        for d in pair.client.drain().records { pair.server.handleDatagram(d, now: pair.now) }
        #expect(pair.server.drain().events == [.applicationData([1, 2, 3])])
        pair.client.close()
        for d in pair.client.drain().records { pair.server.handleDatagram(d, now: pair.now) }
        #expect(pair.server.drain().events == [.closed])
        #expect(throws: DTLSError.closed) { try pair.client.send([4]) }
    }

    @Test func garbageNeverCrashes() throws {
        let pair = try DTLSPair()
        var rng = SplitMix64(seed: 9)
        for _ in 0..<500 {
            let bytes =
                [UInt8(20 + rng.next() % 44)]
                + (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            pair.server.handleDatagram(bytes, now: .zero)
        }
        // The server may have failed on garbage; a fresh pair still works, nothing crashed.
        var fresh = try DTLSPair()
        fresh.run()
        #expect(fresh.client.state == .connected)
        pair.client.handleDatagram([], now: .zero)
    }

    @Test func unsupportedFingerprintHash() throws {
        let cert = try DTLSCertificate.generate()
        #expect(throws: DTLSError.unsupportedFingerprint("sha-1")) {
            try DTLSConnection(role: .client, certificate: cert, remoteFingerprint: ("sha-1", "AA"))
        }
        #expect(cert.fingerprint.split(separator: ":").count == 32)
    }
}

extension DTLSConnection {
    /// Everything the connection has to hand out now, through its one output call.
    func drain() -> (records: [[UInt8]], events: [Event]) {
        var records: [[UInt8]] = []
        var events: [Event] = []
        while true {
            switch pollOutput() {
            case .transmit(let r): records.append(r)
            case .event(let e): events.append(e)
            case .wait: return (records, events)
            }
        }
    }
}
