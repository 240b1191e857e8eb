import Foundation
import MeetKitTestSupport
import Testing

@testable import Transport

/// The meet-peer example as a process, against aiortc and against itself, and fed bad input.
@Suite("meet-peer", .serialized)
struct MeetPeerTests {
    static var binary: String { ExampleBinary.path("meet-peer") }

    /// A meet-peer process with its stderr kept in a file.
    final class Peer: Sendable {
        let process: LineProcess
        let log: String
        init(_ arguments: [String]) throws {
            log = NSTemporaryDirectory() + "meet-peer-\(UInt32.random(in: 0...UInt32.max)).log"
            process = try LineProcess(
                executable: MeetPeerTests.binary, arguments: ["--ip", "127.0.0.1"] + arguments, stderrPath: log)
        }
        var stderr: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        /// The final STATS object, whole.
        func statsObject() throws -> [String: Any] {
            let line = try #require(stderr.split(separator: "\n").last { $0.hasPrefix("STATS ") })
            return try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
        }
        /// The final STATS object's tracks, per kind (first track of each kind).
        func stats() throws -> [String: [String: Any]] {
            var byKind: [String: [String: Any]] = [:]
            for t in try statsObject()["tracks"] as? [[String: Any]] ?? [] {
                if let kind = t["kind"] as? String, byKind[kind] == nil { byKind[kind] = t }
            }
            return byKind
        }
    }

    static func int(_ stats: [String: [String: Any]], _ kind: String, _ key: String) -> Int {
        stats[kind]?[key] as? Int ?? 0
    }

    /// meet-peer answers aiortc's offer (generated media) and, in a second run, offers to
    /// aiortc with --echo: aiortc decodes ≥ 90 % of what meet-peer says it sent.
    @Test(arguments: [false, true])
    func againstAiortc(meetPeerOffers: Bool) async throws {
        try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
        let aiortc = try LineProcess(
            executable: InteropPeers.python,
            arguments: [InteropPeers.script("aiortc_peer.py")] + (meetPeerOffers ? [] : ["--offer"]))
        defer { aiortc.terminate() }
        let peer = try Peer(["--duration", "5"] + (meetPeerOffers ? ["--offer", "--echo"] : []))
        defer { peer.process.terminate() }
        let (status, done) = try await Self.exchange(peer, with: aiortc, meetPeerOffers: meetPeerOffers)
        #expect(status == 0, "meet-peer's exit status; its log:\n\(peer.stderr)")
        try Self.expectMediaBothWays(peer, done, stack: "aiortc", decodedHere: 0)
    }

    /// Offer and answer between meet-peer and another stack's line-protocol peer; waits for
    /// meet-peer's exit status and the other's `done` report.
    static func exchange(_ peer: Peer, with other: LineProcess, meetPeerOffers: Bool) async throws -> (
        Int32?, [String: Any]
    ) {
        if meetPeerOffers {
            try other.writeLine(try await peer.process.readLine())
            try peer.process.writeLine(try await other.readLine(timeout: .seconds(30)))
        } else {
            try peer.process.writeLine(try await other.readLine(timeout: .seconds(30)))
            try other.writeLine(try await peer.process.readLine())
        }
        let status = await peer.process.exitStatus(within: .seconds(30))
        try other.writeJSON(["type": "stop"])
        return (status, try await other.readJSON(timeout: .seconds(20)))
    }

    /// Audio and video both ways: the other stack decoded ≥ 90 % of the frames meet-peer's
    /// STATS say went out, and meet-peer decoded more than `decodedHere` of each kind.
    static func expectMediaBothWays(_ peer: Peer, _ done: [String: Any], stack: String, decodedHere: Int) throws {
        let stats = try peer.stats()
        for kind in ["audio", "video"] {
            let sent = Self.int(stats, kind, "frames_sent")
            let decodedThere = done["\(kind)_frames"] as? Int ?? 0
            #expect(sent > (kind == "audio" ? 150 : 60), "meet-peer sent \(sent) \(kind) frames")
            #expect(
                Double(decodedThere) >= 0.9 * Double(sent),
                "\(stack) decoded \(decodedThere) of the \(sent) \(kind) frames meet-peer's STATS report")
            let decoded = Self.int(stats, kind, "frames_decoded")
            #expect(decoded > decodedHere, "meet-peer decoded \(decoded) \(kind) frames")
        }
    }

    /// Independent stacks offer audio, video and a data channel the way they do it:
    /// GStreamer's webrtcbin (Debian's 1.22, max-bundle: video and data channel are
    /// `bundle-only` sections with port 0) and aiortc. meet-peer answers, taking all three
    /// sections inside the BUNDLE (the data channel one too, RFC 8841) in a form both
    /// accept; media is decoded both ways (≥ 90 % of what the sender's counters say went
    /// out), and STATS lists no refused section.
    @Test(arguments: ["webrtcbin", "aiortc"])
    func answersAnOfferWithADataChannel(stack: String) async throws {
        let other: LineProcess
        if stack == "webrtcbin" {
            try #require(InteropPeers.hasWebrtcbin, "GStreamer's webrtcbin is missing: run Scripts/bootstrap")
            other = try LineProcess(
                executable: InteropPeers.systemPython,
                arguments: [InteropPeers.script("webrtcbin_peer.py"), "--data-channel"])
        } else {
            try #require(InteropPeers.isInstalled, "the interop venv is missing: run Scripts/bootstrap")
            other = try LineProcess(
                executable: InteropPeers.python,
                arguments: [InteropPeers.script("aiortc_peer.py"), "--offer", "--data-channel"])
        }
        defer { other.terminate() }
        let peer = try Peer(["--duration", "5"])
        defer { peer.process.terminate() }
        let (status, done) = try await Self.exchange(peer, with: other, meetPeerOffers: false)
        #expect(status == 0, "meet-peer's exit status; its log:\n\(peer.stderr)")
        try Self.expectMediaBothWays(peer, done, stack: stack, decodedHere: 60)
        #expect(try peer.statsObject()["rejected"] == nil, "nothing refused")
        // The offerer's data channel opened, and meet-peer's numbered messages went out on it
        // (aiortc's peer sends each back).
        let data = try #require(try peer.statsObject()["data"] as? [String: Int], "\(peer.stderr)")
        #expect(data["channels"] == 1 && (data["messages_sent"] ?? 0) > 50, "\(data)")
        if stack == "aiortc" { #expect((data["messages_received"] ?? 0) > 50, "aiortc's echoes: \(data)") }
    }

    /// Two meet-peer processes, one offering (two audio m-lines and one video), one
    /// answering; each decodes ≥ 90 % of what the other's STATS say it sent.
    @Test func againstItself() async throws {
        let offerer = try Peer(["--offer", "--audio", "2", "--video", "1", "--duration", "4"])
        let answerer = try Peer(["--duration", "4"])
        defer {
            offerer.process.terminate()
            answerer.process.terminate()
        }
        try answerer.process.writeLine(try await offerer.process.readLine())
        try offerer.process.writeLine(try await answerer.process.readLine())
        let (a, b) = (
            await offerer.process.exitStatus(within: .seconds(30)),
            await answerer.process.exitStatus(within: .seconds(30))
        )
        #expect(
            a == 0 && b == 0,
            "exit statuses \(String(describing: a)), \(String(describing: b))\n\(offerer.stderr)\n\(answerer.stderr)")
        let (so, sa) = (try offerer.stats(), try answerer.stats())
        for kind in ["audio", "video"] {
            for (from, to) in [(so, sa), (sa, so)] {
                let sent = Self.int(from, kind, "frames_sent")
                let decoded = Self.int(to, kind, "frames_decoded")
                #expect(sent > 0 && Double(decoded) >= 0.9 * Double(sent), "\(kind): \(decoded) decoded of \(sent)")
            }
        }
        // The offer's data channel: numbered messages both ways, counted on each side.
        for (from, to) in [(offerer, answerer), (answerer, offerer)] {
            let sent = try #require(try from.statsObject()["data"] as? [String: Int])
            let received = try #require(try to.statsObject()["data"] as? [String: Int])
            #expect(sent["channels"] == 1 && received["channels"] == 1)
            let (n, got) = (sent["messages_sent"] ?? 0, received["messages_received"] ?? 0)
            #expect(n > 50 && Double(got) >= 0.9 * Double(n), "data: \(got) received of \(n) sent")
            #expect((received["bytes_received"] ?? 0) > 0)
        }
        let offererStats = try offerer.statsObject()
        #expect(offererStats["srtp_profile"] as? String == "aeadAES128GCM")
        #expect(offererStats["dtls_role"] as? String == "server", "the answerer is the DTLS client")
        #expect((offererStats["setup_ms"] as? Double ?? 0) > 0)
    }

    /// A call that lost its video is a failure, not an audio-only success: the offer's video
    /// is changed in transit to a codec meet-peer lacks (H.264), so the answerer rejects it.
    /// Both sides connect and exchange audio, and both exit 1 naming the lost section.
    @Test func aCallThatLostItsVideoFails() async throws {
        let offerer = try Peer(["--offer", "--duration", "3"])
        let answerer = try Peer(["--duration", "3"])
        defer {
            offerer.process.terminate()
            answerer.process.terminate()
        }
        let offer = try await offerer.process.readLine()  // JSON: "VP8\/90000"
        #expect(offer.contains("a=rtpmap:96 VP8"))
        try answerer.process.writeLine(offer.replacingOccurrences(of: "a=rtpmap:96 VP8", with: "a=rtpmap:96 H264"))
        try offerer.process.writeLine(try await answerer.process.readLine())
        let (a, b) = (
            await offerer.process.exitStatus(within: .seconds(30)),
            await answerer.process.exitStatus(within: .seconds(30))
        )
        #expect(a == 1 && b == 1, "exit statuses \(String(describing: a)), \(String(describing: b))")
        #expect(offerer.stderr.contains("the call lost that video"), "\(offerer.stderr)")
        #expect(answerer.stderr.contains("the call lost that video"), "\(answerer.stderr)")
        for peer in [offerer, answerer] {
            #expect(Self.int(try peer.stats(), "audio", "frames_decoded") > 50, "audio still flowed")
        }
    }

    /// Bad input on stdin: one line on stderr and exit status 2, quickly.
    @Test(arguments: [
        "this is not json",
        #"{"type":"answer","sdp":"v=0"}"#,
        #"{"type":"offer"}"#,
        "NO-FINGERPRINT",
        "NO-ICE",
    ])
    func badInputIsExitStatusTwo(input: String) async throws {
        var line = input
        if input.hasPrefix("NO-") {
            // A real offer with its fingerprint or ICE credentials removed.
            let source = try Peer(["--offer", "--duration", "0.1"])
            let offer = try #require(try await source.process.readJSON()["sdp"] as? String)
            source.process.terminate()
            let drop = input == "NO-FINGERPRINT" ? "a=fingerprint" : "a=ice-"
            let sdp = offer.split(separator: "\r\n").filter { !$0.hasPrefix(drop) }.joined(separator: "\r\n") + "\r\n"
            let data = try JSONSerialization.data(withJSONObject: ["type": "offer", "sdp": sdp])
            line = String(decoding: data, as: UTF8.self)
        }
        let peer = try Peer(["--duration", "3"])
        defer { peer.process.terminate() }
        try peer.process.writeLine(line)
        let status = await peer.process.exitStatus(within: .seconds(10))
        #expect(status == 2, "exit status for \(input); log: \(peer.stderr)")
        let lines = peer.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line on stderr: \(peer.stderr)")
    }

    /// stdout or stderr whose reader has gone away (a closed pipe): exit status 1 with the
    /// reason where it can still be read — not a trap (132) or SIGPIPE (141). The second
    /// case is the one reported: `(sleep 1) | meet-peer --offer 2> >(true) >/dev/null`.
    @Test(arguments: ["stdout", "stderr"])
    func aClosedOutputIsExitStatusOne(closed: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["--offer", "--ip", "127.0.0.1", "--duration", "2"]
        let input = Pipe()
        let broken = Pipe()
        let log = NSTemporaryDirectory() + "meet-peer-closed-\(UInt32.random(in: 0...UInt32.max)).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardInput = input
        if closed == "stdout" {
            process.standardOutput = broken
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = broken
        }
        try broken.fileHandleForReading.close()  // nobody will ever read it
        try process.run()
        defer { stop(process) }
        try await Task.sleep(for: .seconds(1))
        try input.fileHandleForWriting.close()  // no answer: end of input
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(
            process.terminationReason == .exit && process.terminationStatus == 1, "status \(process.terminationStatus)")
        if closed == "stdout" {
            let text = try String(contentsOfFile: log, encoding: .utf8)
            #expect(text.contains("stdout is closed"), "the reason on stderr: \(text)")
        }
    }
}
