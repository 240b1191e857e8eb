import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// An SDP fixture from Tests/TransportTests/Fixtures.
func fixture(_ name: String) throws -> String {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    return try String(contentsOf: url, encoding: .utf8)
}

@Suite("SDP")
struct SDPTests {
    static let fixtures = ["browser-offer.sdp", "aiortc-offer.sdp", "janus-answer.sdp", "livekit-subscriber-offer.sdp"]

    /// Every fixture parses and serialises back to the very same text.
    @Test(arguments: fixtures) func roundTripsExactly(name: String) throws {
        let text = try fixture(name)
        let sdp = try SessionDescription(parsing: text)
        #expect(sdp.serialized() == text)
        // And parsing the output again gives the same value.
        #expect(try SessionDescription(parsing: sdp.serialized()) == sdp)
        // LF-only input parses to the same description.
        #expect(try SessionDescription(parsing: text.replacingOccurrences(of: "\r\n", with: "\n")) == sdp)
    }

    @Test func browserOffer() throws {
        let sdp = try SessionDescription(parsing: try fixture("browser-offer.sdp"))
        #expect(sdp.bundleGroups == [["0", "1", "2"]])
        #expect(sdp.media.map(\.kind) == ["audio", "video", "application"])
        let audio = sdp.media[0]
        #expect(audio.mid == "0" && audio.rtcpMux && audio.rtcpReducedSize && audio.direction == .sendrecv)
        #expect(audio.iceUfrag == "Hq7v" && audio.iceOptions == ["trickle"] && audio.setup == "actpass")
        #expect(audio.fingerprints.first?.algorithm == "sha-256")
        let opus = try #require(audio.codecs.first)
        #expect(opus.rtpMap == RTPMap(payloadType: 111, name: "opus", clockRate: 48_000, channels: 2))
        #expect(opus.parameters["useinbandfec"] == "1" && opus.feedback == ["transport-cc"])
        #expect(audio.codecs.count == 8)
        #expect(audio.extMaps.map(\.id) == [1, 2, 3, 4])
        let candidates = audio.candidates
        #expect(candidates.count == 3)
        #expect(candidates[1].kind == .serverReflexive && candidates[1].relatedAddress == "192.168.1.20")
        #expect(candidates[1].relatedPort == 52314 && candidates[1].extensions.first?.name == "generation")
        #expect(candidates[2].address.hasSuffix(".local") && candidates[2].transportAddress == nil)
        #expect(audio.msid?.track == "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")
        let video = sdp.media[1]
        #expect(video.codecs.first?.feedback.contains("nack pli") == true)
        #expect(video.codecs[1].rtpMap.name == "rtx" && video.codecs[1].parameters["apt"] == "96")
        #expect(
            video.rids.map(\.id) == ["h", "m", "l"] && video.rids[0].restrictions == "max-width=1280;max-height=720")
        #expect(video.simulcast == "send h;m;l")
        #expect(
            video.ssrcGroups.first?.semantics == "FID" && video.ssrcGroups.first?.ssrcs == [2_231_627_014, 632_943_048])
        let data = sdp.media[2]
        #expect(data.formats == ["webrtc-datachannel"] && data.sctpPort == 5000 && data.maxMessageSize == 262_144)
    }

    @Test func aiortcJanusAndLiveKit() throws {
        let aiortc = try SessionDescription(parsing: try fixture("aiortc-offer.sdp"))
        #expect(aiortc.media[0].endOfCandidates && aiortc.media[0].port == 51234)
        #expect(aiortc.media[0].candidates.first?.transportAddress == TransportAddress("127.0.0.1:51234"))
        #expect(aiortc.media[0].fingerprints.map(\.algorithm) == ["sha-256", "sha-384"])
        #expect(aiortc.media[1].ssrcs.count == 2)

        let janus = try SessionDescription(parsing: try fixture("janus-answer.sdp"))
        #expect(janus.sessionName == "VideoRoom 1234")
        #expect(janus.media[0].fingerprints.isEmpty)
        #expect(janus.fingerprints(of: janus.media[0]).first?.value.hasPrefix("D2:FA") == true)
        #expect(janus.media.allSatisfy { $0.direction == .recvonly && $0.setup == "active" })

        let livekit = try SessionDescription(parsing: try fixture("livekit-subscriber-offer.sdp"))
        #expect(livekit.isICELite)
        #expect(livekit.iceCredentials(of: livekit.media[1])?.ufrag == "RrUwvYkLdNqXeBjA")
        #expect(
            livekit.media[0].candidates.contains { $0.transport == "tcp" && $0.extensions.first?.value == "passive" })
        #expect(livekit.media[1].ssrcs.filter { $0.attribute == "msid" }.count == 1)
        #expect(livekit.media[2].direction == .sendonly)
    }

    @Test func unknownAttributesAndLinesRoundTrip() throws {
        let text =
            "v=0\r\no=alice 1 1 IN IP6 ::1\r\ns=x\r\ni=info\r\nb=AS:1000\r\nt=0 0\r\na=x-custom:some value\r\na=flag\r\n"
            + "m=audio 5004/2 RTP/AVP 0\r\ni=media info\r\nb=TIAS:64000\r\na=x-other\r\n"
        let sdp = try SessionDescription(parsing: text)
        #expect(sdp.serialized() == text)
        #expect(sdp.value("x-custom") == "some value" && sdp.has("flag"))
        #expect(sdp.media[0].portCount == 2)
    }

    @Test func editingAttributes() throws {
        var sdp = try SessionDescription(parsing: try fixture("aiortc-offer.sdp"))
        sdp.media[0].set("setup", "active")
        sdp.media[0].setFlag("end-of-candidates", false)
        sdp.media[0].set("mid", nil)
        let again = try SessionDescription(parsing: sdp.serialized())
        #expect(again.media[0].setup == "active" && !again.media[0].endOfCandidates && again.media[0].mid == nil)
    }

    @Test func candidateGrammar() throws {
        let c = try ICECandidate(parsing: "candidate:1 1 UDP 2130706431 192.0.2.10 50000 typ host generation 0")
        #expect(c.transport == "udp" && c.kind == .host && c.port == 50000)
        #expect(c.description == "candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host generation 0")
        #expect(try ICECandidate(parsing: "a=candidate:" + c.attributeValue) == c)
        #expect(ICECandidate.priority(kind: .host) == 2_130_706_431)
        #expect(ICECandidate.priority(kind: .serverReflexive, localPreference: 65535, component: 1) == 1_694_498_815)
        for bad in [
            "candidate:1 1 udp", "candidate:1 0 udp 1 1.2.3.4 5 typ host", "candidate:1 1 udp x 1.2.3.4 5 typ host",
            "candidate:1 1 udp 1 1.2.3.4 99999 typ host", "candidate:1 1 udp 1 1.2.3.4 5 type host",
            "candidate:1 1 udp 1 1.2.3.4 5 typ bogus", "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr",
            "candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.1.1.1 rport x",
        ] {
            #expect(throws: SDPError.self, "\(bad)") { try ICECandidate(parsing: bad) }
        }
    }

    @Test func parseErrorsNameTheLine() {
        #expect(throws: SDPError.syntax(line: 1, text: "o=- 1 1 IN IP4 x", reason: "the first line must be v=")) {
            try SessionDescription(parsing: "o=- 1 1 IN IP4 x\r\n")
        }
        #expect(throws: SDPError.syntax(line: 3, text: "garbage", reason: "expected <letter>=<value>")) {
            try SessionDescription(parsing: "v=0\r\no=- 1 1 IN IP4 x\r\ngarbage\r\n")
        }
        #expect(throws: SDPError.syntax(line: 5, text: "m=audio 70000 RTP/AVP 0", reason: "port 70000 is not 0…65535"))
        {
            try SessionDescription(parsing: "v=0\no=- 1 1 IN IP4 x\ns=-\nt=0 0\nm=audio 70000 RTP/AVP 0\n")
        }
        #expect(throws: SDPError.missingLine("t=")) { try SessionDescription(parsing: "v=0\no=- 1 1 IN IP4 x\ns=-\n") }
        #expect(throws: SDPError.self) { try SessionDescription(parsing: "v=0\no=- 1 x IN IP4 x\ns=-\nt=0 0\n") }
        #expect(throws: SDPError.self) {
            try SessionDescription(parsing: "v=0\no=- 1 1 IN IP4 x\ns=-\nt=0 0\nm=audio 9\n")
        }
        #expect(throws: SDPError.self) { try SessionDescription(parsing: "v=1\n") }
        #expect(throws: SDPError.self) { try SessionDescription(parsing: "") }
    }

    /// Random and mutated text: a typed error or a description, never a crash.
    @Test func fuzzedTextNeverCrashes() throws {
        var rng = SplitMix64(seed: 21)
        let sources = try Self.fixtures.map { Array(try fixture($0).utf8) }
        let alphabet = Array("v=om\r\n :/a0123456789candidatetyphost-;".utf8)
        var parsed = 0
        for round in 0..<3000 {
            var bytes = sources[round % sources.count]
            for _ in 0..<(1 + Int(rng.next() % 12)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                }
            }
            if let sdp = try? SessionDescription(parsing: String(decoding: bytes, as: UTF8.self)) {
                parsed += 1
                for m in sdp.media {
                    _ = (m.codecs, m.candidates, m.extMaps, m.ssrcs, m.ssrcGroups, m.rids, m.msid, m.fingerprints)
                }
                _ = try? SessionDescription(parsing: sdp.serialized())
            }
        }
        #expect(parsed > 100)
    }
}
