import MeetKitTestSupport
import NIOCore
import Testing
import Transport

@testable import RoomClient

/// Trickle ICE towards the server (issue 14): local candidates the server did not get in a
/// description reach it, and it uses them.
@Suite("Trickle to the server", .serialized)
struct TrickleTests {
    /// The description without any candidate or end-of-candidates.
    static func withoutCandidates(_ sdp: SessionDescription) -> SessionDescription {
        var out = sdp
        for i in out.media.indices {
            out.media[i].attributes.removeAll { $0.name == "candidate" || $0.name == "end-of-candidates" }
        }
        return out
    }

    /// A publisher whose offer reaches Janus without candidates, and which ignores Janus's
    /// candidates, so that only Janus can start the checks: with the candidate trickled
    /// after the offer (`trickle`, then `completed`), Janus checks it, MeetKit answers and
    /// the connection comes up; without the trickle it never does.
    @Test(arguments: [true, false])
    func aCandidateTrickledAfterTheOfferIsUsed(trickle: Bool) async throws {
        try #require(JanusServer.isInstalled, "janus is missing: run Scripts/bootstrap")
        let janus = try JanusServer.start()
        defer { janus.stop() }
        let group = try await janus.eventLoopGroup(threads: 1)
        let signaling = try await JanusRoomSignaling.connect(url: janus.url, group: group)
        _ = try await signaling.join(room: "1234", displayName: "late candidates")
        let pc = try await PeerConnection.start(localAddresses: [janus.address], group: group)
        let mid = try await pc.addTransceiver(.audio, direction: .sendonly)
        let offer = try await pc.createOffer()
        try await pc.setLocalDescription(offer)
        let candidates = offer.media[0].candidates
        #expect(!candidates.isEmpty)
        let answer = try await signaling.publish(
            offer: Self.withoutCandidates(offer), tracks: [PublishedTrack(mid: mid, kind: .audio, source: .microphone)])
        try await pc.setRemoteDescription(Self.withoutCandidates(answer))
        if trickle {
            for c in candidates { try await signaling.trickle(c, publisher: true) }
            try await signaling.trickle(nil, publisher: true)
        }
        let connected = await eventuallyAsync(.seconds(trickle ? 15 : 5)) {
            (try? await pc.connectionState()) == .connected
        }
        #expect(connected == trickle, "connected: \(connected), trickled: \(trickle)")
        await pc.close()
        await signaling.leave()
    }

    /// The Room's trickler: candidates gathered before the first description wait for it and
    /// go only if it lacks them; later ones go once each, in order; the end of gathering
    /// goes once, and not at all when a description already said it.
    @Test func theTricklerSendsWhatTheServerLacksOnceInOrder() async throws {
        let sent = SentCandidates()
        let trickler = CandidateTrickler { await sent.append($0?.attributeValue ?? "end") }
        let host = try ICECandidate(parsing: "1 1 udp 2130706431 10.0.0.1 5000 typ host")
        let early = try ICECandidate(parsing: "2 1 udp 2130706175 10.0.0.2 5000 typ host")
        let reflexive = try ICECandidate(
            parsing: "3 1 udp 1694498815 203.0.113.9 40000 typ srflx raddr 10.0.0.1 rport 5000")
        trickler.gathered(host)
        trickler.gathered(early)
        var offer = SessionDescription(origin: SDPOrigin(sessionID: "1", sessionVersion: 1))
        var m = MediaDescription(kind: "audio", formats: ["111"])
        m.attributes = [SDPAttribute("candidate", host.attributeValue)]
        offer.media = [m]
        trickler.described(offer)  // has the host candidate, not the early one, no end
        trickler.gathered(reflexive)
        trickler.gathered(reflexive)
        trickler.gathered(nil)
        trickler.gathered(nil)
        let expected = [early.attributeValue, reflexive.attributeValue, "end"]
        #expect(await eventuallyAsync(.seconds(5)) { await sent.values == expected })
        #expect(await sent.values == expected)
        trickler.finish()
    }
}

actor SentCandidates {
    var values: [String] = []
    func append(_ value: String) { values.append(value) }
}
