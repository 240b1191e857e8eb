import Foundation
import MeetKitTestSupport
import Testing
import Transport

// The README's Transport example, compiled here and run below; the test checks the README
// still shows exactly this code.

// README-EXAMPLE-BEGIN
/// Two ICE agents on loopback find each other and exchange a datagram.
func transportTour() async throws -> [UInt8]? {
    let loopback = IPAddress("127.0.0.1")!
    var config = ICEConfiguration()  // no STUN server unless you configure one
    config.role = .controlling
    let alice = try await ICETransport.start(configuration: config, localAddresses: [loopback])
    config.role = .controlled
    let bob = try await ICETransport.start(configuration: config, localAddresses: [loopback])

    // What signalling would carry: credentials and candidates (SDP a=candidate lines).
    try await alice.setRemote(
        credentials: bob.localCredentials, candidates: try await bob.localCandidates(), endOfCandidates: true)
    try await bob.setRemote(
        credentials: alice.localCredentials, candidates: try await alice.localCandidates(), endOfCandidates: true)

    for await event in alice.events where event == .stateChanged(.connected) { break }
    for await event in bob.events where event == .stateChanged(.connected) { break }
    try await alice.send([0x80, 0x01, 0x02])  // DTLS and RTP ride on the selected pair
    var received: [UInt8]?
    for await datagram in bob.incoming {
        received = datagram.data
        break
    }
    await alice.close()
    await bob.close()
    return received
}
// README-EXAMPLE-END

@Suite("Transport documentation examples")
struct TransportDocumentationTests {
    @Test func readmeExampleRuns() async throws {
        #expect(try await transportTour() == [0x80, 0x01, 0x02])
    }

    @Test func readmeShowsThisCode() throws {
        #expect(
            try ReadmeExample.isShown(testFile: #filePath, module: "Transport"),
            "README's Transport example differs from this file's")
    }
}
