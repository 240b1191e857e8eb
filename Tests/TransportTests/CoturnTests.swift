import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// Server-reflexive gathering from a real STUN server (coturn, Debian), through a real
/// kernel NAT, all inside a network namespace the test creates: the client binds
/// 127.0.0.2, an nftables rule source-NATs its packets to 127.0.0.3, so coturn (on
/// 127.0.0.1:3478) reports a mapped address that differs from the base, exactly as a NAT
/// on a real path would. No traffic leaves the namespace's loopback.
@Suite("Server-reflexive candidates from coturn", .serialized)
struct CoturnTests {
    @Test func gathersServerReflexiveCandidateThroughNAT() async throws {
        let ns = try NetworkNamespace(name: "mk-coturn-\(getpid())")
        defer { ns.close() }
        try ns.applyNftables(
            """
            table ip meetkit {
              chain post {
                type nat hook postrouting priority srcnat; policy accept;
                ip saddr 127.0.0.2 udp dport 3478 snat to 127.0.0.3
              }
            }
            """)
        let log = NSTemporaryDirectory() + "meetkit-coturn-\(getpid()).log"
        _ = try ns.spawn(
            [
                "turnserver", "-n", "--listening-ip=127.0.0.1", "--listening-port=3478", "--stun-only", "--no-tls",
                "--no-dtls", "--no-cli", "--log-file=stdout", "--simple-log",
                "--pidfile=/tmp/meetkit-coturn-\(getpid()).pid",
            ], log: log)
        for _ in 0..<100 where !ns.isListeningUDP(port: 3478) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(ns.isListeningUDP(port: 3478), "coturn listens (log: \(log))")

        var config = ICEConfiguration()
        config.stunServers = [TransportAddress("127.0.0.1:3478")!]
        let group = try await ns.eventLoopGroup()
        let ice = try await ICETransport.start(
            configuration: config, localAddresses: [IPAddress("127.0.0.2")!], group: group)
        #expect(await waitFor(ice) { $0 == .gatheringComplete })
        let candidates = try await ice.localCandidates()
        await ice.close()
        let host = try #require(candidates.first { $0.kind == .host })
        let srflx = try #require(candidates.first { $0.kind == .serverReflexive }, "\(candidates)")
        #expect(host.address == "127.0.0.2")
        #expect(srflx.address == "127.0.0.3" && srflx.port == host.port, "SNAT keeps the port when it can")
        #expect(srflx.relatedAddress == "127.0.0.2" && srflx.relatedPort == host.port)
        #expect(srflx.priority < host.priority)
    }
}
