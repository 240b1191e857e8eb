import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// MeetKit's ICE against aioice, an independent implementation, over real UDP on loopback.
@Suite("ICE interop with aioice")
struct AioiceInteropTests {
    static func run(meetkitControlling: Bool) async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python,
            arguments: [InteropPeers.script("aioice_peer.py"), "--count", "20"]
                + (meetkitControlling ? [] : ["--controlling"]))
        defer { peer.terminate() }
        let local = try await peer.readJSON()
        #expect(local["type"] as? String == "local")
        let remoteCandidates = try (local["candidates"] as? [String] ?? []).map { try ICECandidate(parsing: $0) }
        #expect(remoteCandidates.contains { $0.address == "127.0.0.1" })

        var config = ICEConfiguration()
        config.role = meetkitControlling ? .controlling : .controlled
        let ice = try await ICETransport.start(configuration: config, localAddresses: [IPAddress("127.0.0.1")!])
        async let connected = waitFor(ice) { $0 == .stateChanged(.connected) }
        async let received = receive(ice, count: 20, timeout: .seconds(20))
        try await ice.setRemote(
            credentials: ICECredentials(ufrag: local["ufrag"] as! String, pwd: local["pwd"] as! String),
            candidates: remoteCandidates, endOfCandidates: true)
        try peer.writeJSON([
            "ufrag": ice.localCredentials.ufrag, "pwd": ice.localCredentials.pwd,
            "candidates": try await ice.localCandidates().map(\.attributeValue),
        ])
        #expect(await connected, "MeetKit reaches connected")
        let theirs = try await peer.readJSON()
        #expect(theirs["type"] as? String == "connected", "aioice reaches connected")
        for i in 0..<20 {
            try await ice.send([0x80, UInt8(i), 0x5A])
            try await Task.sleep(for: .milliseconds(5))
        }
        let got = await received
        #expect(got.count == 20 && got.allSatisfy { $0.first == 0x80 && $0.last == 0xA1 }, "datagrams from aioice")
        let done = try await peer.readJSON()
        #expect(done["received"] as? Int == 20, "aioice received MeetKit's datagrams")
        #expect(try await ice.statistics().badIntegrity == 0)
        await ice.close()
        #expect(peer.waitForExit() == 0)
    }

    @Test func meetKitControlling() async throws { try await Self.run(meetkitControlling: true) }
    @Test func meetKitControlled() async throws { try await Self.run(meetkitControlling: false) }
}
