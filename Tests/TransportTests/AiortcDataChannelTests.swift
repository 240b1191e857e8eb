import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// Data channels between a public ``PeerConnection`` and aiortc 1.16, both offer
/// directions (`Scripts/interop/aiortc_datachannel_peer.py`): channels opened by either
/// side, strings and binary up to aiortc's max-message-size byte-equal both ways, a channel
/// closed by either side seen closed by the other, with audio and video in the same BUNDLE.
@Suite("Data channels against aiortc")
struct AiortcDataChannelTests {
    /// Reads aiortc's lines until one satisfies `match`, keeping the others.
    static func expectLine(
        _ peer: LineProcess, _ what: String, _ match: ([String: Any]) -> Bool
    ) async throws -> [String: Any] {
        for _ in 0..<200 {
            let line = try await peer.readJSON(timeout: .seconds(20))
            if match(line) { return line }
        }
        throw InteropFailure("no \(what) from aiortc")
    }

    struct InteropFailure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// What arrives on a channel, in order, gathered by a task.
    static func collect(_ channel: DataChannel) -> Task<[DataChannelMessage], Never> {
        Task {
            var out: [DataChannelMessage] = []
            for await m in channel.messages { out.append(m) }
            return out
        }
    }

    @Test func meetKitOffersWithMedia() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python, arguments: [InteropPeers.script("aiortc_datachannel_peer.py"), "--media"])
        defer { peer.terminate() }
        let pc = try await PeerConnection.start(localAddresses: [IPAddress("127.0.0.1")!])
        let audio = try await pc.addTransceiver(.audio, receive: .encoded)
        let video = try await pc.addTransceiver(.video, receive: .encoded)
        let chat = try await pc.createDataChannel(label: "chat", options: .init(protocol: "json"))
        let offer = try await pc.createOffer()
        try await pc.setLocalDescription(offer)
        try peer.writeJSON(["type": "offer", "sdp": offer.serialized()])
        let answer = try await peer.readJSON(timeout: .seconds(30))
        let answerSDP = try SessionDescription(parsing: try #require(answer["sdp"] as? String))
        #expect(answerSDP.bundleGroups.first?.count == 3, "audio, video and data in one BUNDLE")
        try await pc.setRemoteDescription(answerSDP)
        try await chat.opened()
        let open = try await Self.expectLine(peer, "open") { $0["event"] as? String == "open" }
        #expect(open["label"] as? String == "chat" && open["protocol"] as? String == "json")
        // aiortc answers `setup:active`: it is the DTLS client (even ids), MeetKit the server.
        #expect(
            open["id"] as? Int == Int(chat.id ?? 999) && chat.id.map { $0 % 2 == 1 } == true,
            "the DTLS server's id is odd")
        let received = Self.collect(chat)
        // MeetKit → aiortc: a string, bytes, empty ones, and the largest aiortc takes.
        let largest = (0..<262_144).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 7) }
        try await chat.send("bonjour ✓")
        try await chat.send([0, 1, 2, 255])
        try await chat.send("")
        try await chat.send(largest)
        await #expect(throws: PeerConnectionError.dataChannel(.messageTooLarge(size: 262_145, limit: 262_144))) {
            try await chat.send(largest + [0])
        }
        var got: [[String: Any]] = []
        for _ in 0..<4 {
            got.append(try await Self.expectLine(peer, "message") { $0["event"] as? String == "message" })
        }
        #expect(got[0]["text"] as? String == "bonjour ✓")
        #expect(got[1]["hex"] as? String == "000102ff")
        #expect(got[2]["text"] as? String == "")
        #expect(got[3]["hex"] as? String == hexString(largest), "256 KiB (aiortc's max-message-size) byte-equal")
        // aiortc → MeetKit on the same channel.
        try peer.writeJSON(["send": "chat", "text": "ça marche"])
        try peer.writeJSON(["send": "chat", "hex": hexString(largest)])
        // aiortc opens a channel of its own (even id: it is the DTLS client).
        try peer.writeJSON(["open": "files", "ordered": false, "protocol": "bin"])
        var remotes = pc.dataChannels.makeAsyncIterator()
        let files = try #require(await remotes.next())
        #expect(files.label == "files" && files.options.ordered == false && files.options.protocol == "bin")
        #expect(files.id.map { $0 % 2 == 0 } == true)
        let filesReceived = Self.collect(files)
        // aiortc's side opens when MeetKit's acknowledgement arrives.
        _ = try await Self.expectLine(peer, "files open") {
            $0["event"] as? String == "open" && $0["label"] as? String == "files"
        }
        try peer.writeJSON(["send": "files", "hex": "cafe"])
        try await files.send("from MeetKit")
        _ = try await Self.expectLine(peer, "files message") {
            $0["label"] as? String == "files" && $0["text"] as? String == "from MeetKit"
        }
        // aiortc closes "files": MeetKit sees it closed; MeetKit closes "chat": aiortc sees it.
        try peer.writeJSON(["close": "files"])
        #expect(await filesReceived.value == [.binary([0xCA, 0xFE])])
        #expect(files.state == .closed)
        await chat.close()
        _ = try await Self.expectLine(peer, "close") {
            $0["event"] as? String == "close" && $0["label"] as? String == "chat"
        }
        #expect(await received.value == [.text("ça marche"), .binary(largest)])
        // Media flowed beside the data (aiortc's tracks send frames on their own).
        let (gotAudio, gotVideo) = (
            try await pc.statistics(mid: audio)?.framesReceived ?? 0,
            try await pc.statistics(mid: video)?.framesReceived ?? 0
        )
        #expect(gotAudio > 0 && gotVideo > 0, "audio \(gotAudio), video \(gotVideo) frames from aiortc")
        try peer.writeJSON(["stop": true])
        await pc.close()
    }

    @Test func aiortcOffers() async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let peer = try LineProcess(
            executable: InteropPeers.python,
            arguments: [InteropPeers.script("aiortc_datachannel_peer.py"), "--offer", "--channel", "from-aiortc"])
        defer { peer.terminate() }
        let pc = try await PeerConnection.start(localAddresses: [IPAddress("127.0.0.1")!])
        let offer = try await peer.readJSON(timeout: .seconds(30))
        try await pc.setRemoteDescription(try SessionDescription(parsing: try #require(offer["sdp"] as? String)))
        let answer = try await pc.createAnswer()
        try await pc.setLocalDescription(answer)
        try peer.writeJSON(["type": "answer", "sdp": answer.serialized()])
        var remotes = pc.dataChannels.makeAsyncIterator()
        let channel = try #require(await remotes.next())
        #expect(channel.label == "from-aiortc" && channel.state == .open)
        let received = Self.collect(channel)
        _ = try await Self.expectLine(peer, "open") {
            $0["event"] as? String == "open" && $0["label"] as? String == "from-aiortc"
        }
        try peer.writeJSON(["send": "from-aiortc", "text": "hello"])
        try await channel.send("hi")
        _ = try await Self.expectLine(peer, "message") { $0["text"] as? String == "hi" }
        // MeetKit opens one too (it is the DTLS client here, answering actpass: even id).
        let mine = try await pc.createDataChannel(label: "from-meetkit")
        try await mine.opened()
        #expect(mine.id.map { $0 % 2 == 0 } == true)
        _ = try await Self.expectLine(peer, "open") {
            $0["event"] as? String == "open" && $0["label"] as? String == "from-meetkit"
        }
        try await mine.send([7, 7, 7])
        _ = try await Self.expectLine(peer, "message") {
            $0["label"] as? String == "from-meetkit" && $0["hex"] as? String == "070707"
        }
        try peer.writeJSON(["close": "from-aiortc"])
        #expect(await received.value == [.text("hello")])
        try peer.writeJSON(["stop": true])
        await pc.close()
    }
}
