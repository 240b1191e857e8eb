import MeetKitTestSupport
import Testing

@testable import Transport

/// Waits for an event matching `predicate` on `transport`, up to `timeout` (a safety net
/// against hangs, not a timing assertion).
func waitFor(
    _ transport: ICETransport, timeout: Duration = .seconds(20), _ predicate: @escaping @Sendable (ICEEvent) -> Bool
) async -> Bool {
    await firstElement(of: transport.events, timeout: timeout, where: predicate) != nil
}

/// The first `count` application datagrams of `transport`, or fewer after `timeout`.
func receive(_ transport: ICETransport, count: Int, timeout: Duration = .seconds(10)) async -> [[UInt8]] {
    await withTaskGroup(of: [[UInt8]].self) { group in
        group.addTask {
            var got: [[UInt8]] = []
            for await d in transport.incoming {
                got.append(d.data)
                if got.count == count { break }
            }
            return got
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return []
        }
        var best: [[UInt8]] = []
        for await r in group {
            if r.count > best.count { best = r }
            if !r.isEmpty || best.count == count { break }
        }
        group.cancelAll()
        return best
    }
}

@Suite("ICE over real UDP (SwiftNIO driver)")
struct ICETransportTests {
    @Test func twoTransportsConnectOnLoopback() async throws {
        var configA = ICEConfiguration()
        configA.role = .controlling
        var configB = ICEConfiguration()
        configB.role = .controlled
        let loopback = IPAddress("127.0.0.1")!
        let a = try await ICETransport.start(configuration: configA, localAddresses: [loopback])
        let b = try await ICETransport.start(configuration: configB, localAddresses: [loopback])
        let candidatesA = try await a.localCandidates()
        let candidatesB = try await b.localCandidates()
        #expect(candidatesA.count == 1 && candidatesA[0].kind == .host && candidatesA[0].address == "127.0.0.1")
        async let connectedA = waitFor(a) { $0 == .stateChanged(.connected) }
        async let connectedB = waitFor(b) { $0 == .stateChanged(.connected) }
        try await a.setRemote(credentials: b.localCredentials, candidates: candidatesB, endOfCandidates: true)
        try await b.setRemote(credentials: a.localCredentials, candidates: candidatesA, endOfCandidates: true)
        let (okA, okB) = await (connectedA, connectedB)
        #expect(okA && okB)
        async let gotB = receive(b, count: 10)
        async let gotA = receive(a, count: 10)
        try await Task.sleep(for: .milliseconds(20))
        for i in 0..<10 {
            try await a.send([0x80, UInt8(i), 1])
            try await b.send([0x80, UInt8(i), 2])
        }
        let (receivedA, receivedB) = await (gotA, gotB)
        #expect(receivedB.count == 10 && receivedB.allSatisfy { $0[2] == 1 })
        #expect(receivedA.count == 10 && receivedA.allSatisfy { $0[2] == 2 })
        let pair = try await a.selectedPair()
        await a.close()
        await b.close()
        // Every socket is released: the same port binds again.
        let again = try await ICETransport.start(localAddresses: [loopback], port: pair!.local.port)
        #expect(try await again.localCandidates().first?.port == pair!.local.port)
        await again.close()
        await #expect(throws: UDPDriverError.closed) { try await a.send([0x80]) }
    }

    @Test func sendingBeforeConnectionIsATypedError() async throws {
        let t = try await ICETransport.start(localAddresses: [IPAddress("127.0.0.1")!])
        await #expect(throws: ICETransport.Failure.notConnected) { try await t.send([0x80]) }
        await t.close()
    }
}

@Suite("Host address discovery")
struct HostAddressTests {
    @Test func loopbackOnlyWhenAsked() throws {
        let with = try HostAddresses.discover(includeLoopback: true)
        let without = try HostAddresses.discover(includeLoopback: false)
        #expect(with.contains(IPAddress("127.0.0.1")!))
        #expect(!without.contains { $0.isLoopback })
        #expect(!with.contains { $0.isIPv6 && $0.isLinkLocal })
        #expect(Set(without).isSubset(of: Set(with)))
    }

    /// Gathering on discovered interfaces binds one socket per address and reports one
    /// host candidate each.
    @Test func gathersFromInterfaces() async throws {
        let ice = try await ICETransport.start(includeLoopback: true, includeIPv6: false)
        let candidates = try await ice.localCandidates()
        #expect(candidates.contains { $0.address == "127.0.0.1" })
        #expect(candidates.allSatisfy { $0.kind == .host && $0.port != 0 })
        #expect(Set(candidates.map(\.priority)).count == candidates.count, "distinct local preferences")
        await ice.close()
    }
}
