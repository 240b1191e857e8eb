import Codec
import Foundation
import MeetKitTestSupport
import RoomClient
import Testing
import Transport

/// A recording's WAVs are placed by media time (issue 12): speakers send speech-like audio
/// through real PeerConnections over the simulated network to a recorder, and each WAV is
/// compared with what was spoken by cross-correlation — where it lies, how long it is,
/// whether digital silence was inserted. Virtual time: a 7-second call runs in about a second.
@Suite("Recording timeline")
struct RecordingTimelineTests {
    /// Speech-like test audio: "words" of a few hundred milliseconds (each a chirp of its
    /// own range, with an envelope) between pauses that keep a low hum, so that decoded
    /// audio is never exact zeros and the correlation has one clear peak. Defined for any
    /// time, so the 48 kHz source and the 16 kHz reference are the same signal.
    static func speech(_ t: Double) -> Float {
        let words = [0.35, 0.5, 0.28, 0.42, 0.6, 0.31]
        let pauses = [0.2, 0.33, 0.25, 0.4, 0.22]
        let hum = 0.02 * sin(2 * Double.pi * 137 * t)
        guard t >= 0 else { return Float(hum) }
        var start = 0.0
        var k = 0
        while true {
            let length = words[k % words.count]
            if t < start + length {
                let x = t - start
                let low = 250 + Double((k * 97) % 400)
                let phase = 2 * Double.pi * (low * x + 700 * x * x / length)
                let envelope = sin(Double.pi * x / length)
                return Float(0.5 * envelope * sin(phase) + hum)
            }
            start += length + pauses[k % pauses.count]
            k += 1
        }
    }

    final class Sender {
        let node: SimulatedMachine<PeerConnectionCore>
        let receiver: SimulatedMachine<PeerConnectionCore>
        let name: String
        var mid = ""
        /// When the first block was sent (blocks are the 20 ms "captured" before they go).
        var firstSend: Duration?
        var stall: (after: Duration, length: Duration)?
        /// Link conditions of the sender from the moment it starts speaking (a lossy link
        /// from the start would lose DTLS flights, whose retransmission runs on OpenSSL's
        /// wall clock, not the simulation's).
        var linkWhileSpeaking: SimulatedNetwork.LinkConditions?
        var stalled = false
        /// Also sends a picture every 60 ms (and the recorder gets encoded audio and video too).
        var video = false
        var videoMid = ""
        var pattern = TestPatternGenerator(width: 160, height: 120, frameRate: 15)

        init(_ name: String, sender: String, receiver: String) throws {
            self.name = name
            node = SimulatedMachine(try PeerConnectionCore(), address: TransportAddress(sender)!)
            self.receiver = SimulatedMachine(try PeerConnectionCore(), address: TransportAddress(receiver)!)
        }
    }

    struct Result {
        var wavs: [String: [Float]]
        var starts: [String: Duration]
        var stop: Duration
        var statistics: MeetingRecorder.Statistics
        /// timeline.jsonl, one object a line.
        var timeline: [[String: Any]]
    }

    /// Runs the senders until `stop` (virtual), each sending `seconds` of speech from a
    /// common start once every connection is up; returns the WAVs the recorder wrote.
    static func record(
        _ senders: [Sender], net: SimulatedNetwork, seconds: Double, stop: Duration, senderReports: Bool = true
    ) throws -> Result {
        let folder = NSTemporaryDirectory() + "recording-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let recorder = try MeetingRecorder(folder: folder)
        var commonStart: Duration?
        let all = senders
        for s in senders {
            s.node.machine.start(localAddresses: [s.node.address], now: .zero)
            s.receiver.machine.start(localAddresses: [s.receiver.address], now: .zero)
            s.mid = s.node.machine.addTransceiver(.audio, direction: .sendonly)
            if s.video { s.videoMid = s.node.machine.addTransceiver(.video, direction: .sendonly) }
            let offer = s.node.machine.createOffer()
            try s.node.machine.setLocalDescription(offer)
            try s.receiver.machine.setRemoteDescription(offer, now: .zero)
            try s.receiver.machine.setReceiveOutput(
                s.video ? .both(audioSampleRate: 16_000) : .decoded(audioSampleRate: 16_000), mid: s.mid)
            if s.video { try s.receiver.machine.setReceiveOutput(.encoded, mid: s.videoMid) }
            let answer = try s.receiver.machine.createAnswer()
            try s.receiver.machine.setLocalDescription(answer)
            try s.node.machine.setRemoteDescription(answer, now: .zero)
            recorder.handle(
                .participantJoined(ParticipantInfo(id: s.name, name: s.name)), at: .zero)
            s.receiver.onEvent = { e, now in
                switch e {
                case .audio(let mid, let pcm):
                    recorder.handle(.audio(participantID: s.name, trackID: mid, pcm), at: now)
                case .frame(let mid, let frame):
                    recorder.handle(.encoded(participantID: s.name, trackID: mid, frame), at: now)
                case .senderReport(let mid, let clock) where senderReports:
                    recorder.handle(.senderReport(participantID: s.name, trackID: mid, clock), at: now)
                default: break
                }
            }
            var block = 0
            func step(_ now: Duration) {
                if commonStart == nil,
                    all.allSatisfy({
                        $0.node.machine.connectionState == .connected
                            && $0.receiver.machine.connectionState == .connected
                    })
                {
                    commonStart = now + .milliseconds(100)
                }
                if let start = commonStart, now >= start, Double(block) * 0.02 < seconds {
                    if s.firstSend == nil {
                        s.firstSend = now
                        if let link = s.linkWhileSpeaking { net.setLink(s.node.address.ip, link) }
                    }
                    if let stall = s.stall, !s.stalled, now - start >= stall.after {
                        s.stalled = true
                        net.holdUplink(s.node.address.ip, until: now + stall.length)
                    }
                    // The block "captured" over the 20 ms before it is sent.
                    let t0 = (now - start).seconds - 0.02
                    let samples = (0..<960).map { Int16(speech(t0 + Double($0) / 48_000) * 32_767) }
                    try? s.node.machine.send(
                        audio: AudioFrame(samples: samples, sampleRate: 48_000, channels: 1), mid: s.mid, now: now)
                    if s.video, block % 3 == 0 {
                        var picture = s.pattern.nextFrame()
                        picture.timestamp = MediaTime(value: Int64(block) * 1800, timescale: 90_000)  // every 60 ms
                        try? s.node.machine.send(video: picture, mid: s.videoMid, now: now)
                    }
                    block += 1
                }
                s.node.timer = (now + .milliseconds(20), step)
            }
            s.node.timer = (.milliseconds(20), step)
        }
        net.run(senders.flatMap { [$0.node, $0.receiver] as [any SimulatedEndpoint] }, until: stop)
        recorder.stop(at: stop)
        _ = recorder.finish()
        let timeline = try String(contentsOfFile: folder + "/timeline.jsonl", encoding: .utf8)
            .split(separator: "\n").compactMap {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        var wavs: [String: [Float]] = [:]
        for s in senders {
            let path = try #require(
                try FileManager.default.contentsOfDirectory(atPath: folder).first {
                    $0.hasPrefix(s.name) && $0.hasSuffix(".wav")
                })
            wavs[s.name] = try WAVReader(path: folder + "/" + path).samples.map(\.normalized)
        }
        return Result(
            wavs: wavs, starts: Dictionary(uniqueKeysWithValues: senders.map { ($0.name, try! #require(commonStart)) }),
            stop: stop, statistics: recorder.statistics, timeline: timeline)
    }

    static func network(_ hosts: [(String, SimulatedNetwork.LinkConditions)]) -> SimulatedNetwork {
        let net = SimulatedNetwork(seed: 12)
        for (ip, link) in hosts { net.addHost(IPAddress(ip)!, link: link) }
        return net
    }

    /// Where the speech spoken over `from..<to` (seconds after the start) lies in `wav`,
    /// against where it was spoken: (error in seconds, correlation).
    static func placement(_ wav: [Float], start: Duration, from: Double, to: Double) -> (
        error: Double, correlation: Double
    ) {
        let reference = (0..<Int((to - from) * 16_000)).map { speech(from + Double($0) / 16_000) }
        let expected = Int(((start.seconds + from) * 16_000).rounded())
        let found = SignalAnalysis.locate(reference, in: wav, offsets: (expected - 1600)...(expected + 1600))
        return (Double(found.offset - expected) / 16_000, found.correlation)
    }

    /// A sender whose packets stall for 0.6 s and then arrive in one burst (nothing lost):
    /// its WAV is as long as the recording, its speech lies where it was spoken (within
    /// 20 ms, the 5 ms path and the codec's delay included) before and after the stall, and
    /// no digital silence was inserted. (Placed by arrival, everything after the stall sat
    /// 0.6 s late behind 0.6 s of silence, and the WAV was 0.6 s too long.)
    @Test func aStallDelaysNothing() throws {
        let link = SimulatedNetwork.LinkConditions(latency: .milliseconds(5))
        let net = Self.network([("203.0.113.1", link), ("203.0.113.2", link)])
        let alice = try Sender("alice", sender: "203.0.113.1:5000", receiver: "203.0.113.2:5000")
        alice.stall = (after: .milliseconds(2500), length: .milliseconds(600))
        let result = try Self.record([alice], net: net, seconds: 6, stop: .seconds(8))
        let wav = try #require(result.wavs["alice"])
        let start = try #require(result.starts["alice"])
        #expect(alice.stalled)
        #expect(abs(wav.count - 8 * 16_000) <= 320, "\(wav.count) samples for an 8 s recording")
        for (from, to) in [(0.3, 2.4), (2.6, 3.4), (3.4, 5.9)] {
            let (error, correlation) = Self.placement(wav, start: start, from: from, to: to)
            #expect(abs(error) <= 0.02, "speech of \(from)-\(to) s is \(Int(error * 1000)) ms off")
            #expect(correlation > 0.8, "speech of \(from)-\(to) s correlates \(correlation)")
        }
        let speaking = wav[Int((start.seconds + 0.1) * 16_000)..<Int((start.seconds + 5.9) * 16_000)]
        #expect(SignalAnalysis.longestZeroRun(speaking) < 160, "no silence inserted inside the speech")
        #expect(result.statistics.overlapSeconds == 0)
    }

    /// The Ogg Opus and IVF files hold packets as received; timeline.jsonl says where each
    /// starts on the recording: both where the sender started (5 ms path, within 20 ms for
    /// audio, within one 60 ms picture interval for video).
    @Test func timelineSaysWhereEachFileStarts() throws {
        let link = SimulatedNetwork.LinkConditions(latency: .milliseconds(5))
        let net = Self.network([("203.0.113.1", link), ("203.0.113.2", link)])
        let alice = try Sender("alice", sender: "203.0.113.1:5000", receiver: "203.0.113.2:5000")
        alice.video = true
        let result = try Self.record([alice], net: net, seconds: 5, stop: .seconds(7))
        let start = try #require(result.starts["alice"]).seconds
        let files = result.timeline.filter { $0["event"] as? String == "file-start" }
        let opus = try #require(files.first { ($0["file"] as? String)?.hasSuffix(".opus") == true })
        let ivf = try #require(files.first { ($0["file"] as? String)?.hasSuffix(".ivf") == true })
        let opusStart = try #require(opus["start"] as? Double)
        let ivfStart = try #require(ivf["start"] as? Double)
        // The first Opus packet holds the 20 ms spoken before `start`.
        #expect(abs(opusStart - (start - 0.02)) <= 0.02, "Ogg Opus starts at \(opusStart), speech at \(start - 0.02)")
        #expect(abs(ivfStart - start) <= 0.06, "IVF starts at \(ivfStart), the first picture went at \(start)")
    }

    /// Two speakers starting at the same instant, over paths of 5 and 45 ms to the
    /// recorder: their sender reports (one clock: the simulation's) align them, so their
    /// WAVs line up within 20 ms of each other and of when they spoke. Without the reports
    /// the slower path's speaker lies 40 ms late.
    @Test(arguments: [true, false])
    func twoSpeakersLineUp(senderReports: Bool) throws {
        let net = Self.network([
            ("203.0.113.1", .init(latency: .milliseconds(5))), ("203.0.113.2", .init(latency: .milliseconds(0))),
            ("203.0.113.3", .init(latency: .milliseconds(45))), ("203.0.113.4", .init(latency: .milliseconds(0))),
        ])
        let alice = try Sender("alice", sender: "203.0.113.1:5000", receiver: "203.0.113.2:5000")
        let bob = try Sender("bob", sender: "203.0.113.3:5000", receiver: "203.0.113.4:5000")
        let result = try Self.record(
            [alice, bob], net: net, seconds: 5, stop: .seconds(7), senderReports: senderReports)
        var errors: [Double] = []
        for name in ["alice", "bob"] {
            let wav = try #require(result.wavs[name])
            #expect(abs(wav.count - 7 * 16_000) <= 320)
            let (error, correlation) = Self.placement(wav, start: try #require(result.starts[name]), from: 0.3, to: 4.8)
            #expect(correlation > 0.8, "\(name): correlation \(correlation)")
            errors.append(error)
        }
        let apart = errors[1] - errors[0]
        if senderReports {
            #expect(errors.allSatisfy { $0 >= 0 && $0 <= 0.02 }, "placement errors \(errors)")
            #expect(abs(apart) <= 0.02, "the two WAVs are \(apart * 1000) ms apart")
        } else {
            #expect(abs(apart - 0.04) <= 0.005, "by arrival alone, bob is \(apart * 1000) ms late (his extra 40 ms)")
        }
    }

    /// 10 % random loss: the WAV still has the recording's length, lost packets are
    /// concealed (no digital silence), and the speech stays where it was spoken.
    @Test func lossIsConcealedNotSilenced() throws {
        let link = SimulatedNetwork.LinkConditions(latency: .milliseconds(5))
        let net = Self.network([("203.0.113.1", link), ("203.0.113.2", link)])
        let alice = try Sender("alice", sender: "203.0.113.1:5000", receiver: "203.0.113.2:5000")
        alice.linkWhileSpeaking = .init(latency: .milliseconds(5), loss: 0.1)
        let result = try Self.record([alice], net: net, seconds: 5, stop: .seconds(7))
        let wav = try #require(result.wavs["alice"])
        let start = try #require(result.starts["alice"])
        #expect(abs(wav.count - 7 * 16_000) <= 320)
        let speaking = wav[Int((start.seconds + 0.3) * 16_000)..<Int((start.seconds + 4.9) * 16_000)]
        #expect(SignalAnalysis.longestZeroRun(speaking) < 160, "lost packets concealed, not silenced")
        // Concealment does not rebuild a chirp, so half-second pieces correlate from 0.3 to
        // 0.99 depending on what was lost; every piece lies where it was spoken.
        var located = 0
        for from in stride(from: 0.3, to: 4.8, by: 0.5) {
            let (error, correlation) = Self.placement(wav, start: start, from: from, to: from + 0.5)
            guard correlation > 0.5 else { continue }
            located += 1
            #expect(abs(error) <= 0.02, "speech of \(from) s is \(error * 1000) ms off")
        }
        #expect(located >= 4, "\(located) of 9 pieces found")
        #expect(Self.placement(wav, start: start, from: 0.3, to: 4.9).correlation > 0.3)
        #expect(result.statistics.overlapSeconds == 0)
    }
}

/// The recorder's smaller duties, fed events directly.
@Suite("Meeting recorder")
struct MeetingRecorderTests {
    /// The status line counts who is present, not everyone ever seen; a stereo sender's
    /// Ogg Opus file says two channels (its packets' TOC does).
    @Test func presentParticipantsAndStereoOpus() throws {
        let folder = NSTemporaryDirectory() + "recorder-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let recorder = try MeetingRecorder(folder: folder)
        recorder.handle(.participantJoined(ParticipantInfo(id: "1", name: "alice")), at: .zero)
        recorder.handle(.participantJoined(ParticipantInfo(id: "2", name: "bob")), at: .zero)
        #expect(recorder.statusLine(at: .seconds(1)).contains("2 participants"))
        var configuration = OpusEncoderConfiguration()
        configuration.channels = 2
        let encoder = try OpusEncoder(configuration: configuration)
        for n in 0..<5 {
            let silence = AudioFrame<Int16>(silenceOf: 960, sampleRate: 48_000, channels: 2)
            var frame = try encoder.encode(silence)
            frame.timestamp = MediaTime(value: Int64(n) * 960, timescale: 48_000)
            recorder.handle(.encoded(participantID: "2", trackID: "a", frame), at: .milliseconds(20 * n))
        }
        recorder.handle(.participantLeft(id: "2", reason: nil), at: .seconds(2))
        #expect(recorder.statusLine(at: .seconds(3)).contains("1 participants"))
        recorder.stop(at: .seconds(3))
        let files = recorder.finish()
        let opus = try #require(files.first { $0.hasSuffix(".opus") })
        let reader = try OggOpusReader(path: opus)
        #expect(reader.channels == 2 && reader.packets.count == 5)
    }
}

extension MeetingRecorderTests {
    /// A folder that disappears under the recorder: the failed writes are counted and
    /// described, not dropped silently.
    @Test func fileErrorsAreCounted() throws {
        let folder = NSTemporaryDirectory() + "recorder-\(UInt32.random(in: 0...UInt32.max))"
        let recorder = try MeetingRecorder(folder: folder)
        try FileManager.default.removeItem(atPath: folder)
        let pcm = AudioFrame<Int16>(silenceOf: 320, sampleRate: 16_000, channels: 1)
        recorder.handle(.audio(participantID: "1", trackID: "a", pcm), at: .milliseconds(20))
        let statistics = recorder.statistics
        #expect(statistics.fileErrors >= 1 && statistics.lastFileError != nil, "\(statistics)")
        _ = recorder.finish()
    }
}

extension MeetingRecorderTests {
    /// Someone who drops out and comes back with a new participant id (a LiveKit rejoin)
    /// goes on in the same files, by identity: one WAV, the tone where it was spoken both
    /// times, silence while away, the whole recording long.
    @Test func aParticipantBackWithANewIDKeepsItsFiles() throws {
        let folder = NSTemporaryDirectory() + "recorder-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let recorder = try MeetingRecorder(folder: folder)
        var tone = ToneGenerator(frequency: 440, sampleRate: 16_000)
        /// Two seconds of tone from participant `id`, its media clock starting at `base`.
        func speak(_ id: String, from start: Duration, base: Int64) {
            for n in 0..<100 {
                var block = tone.nextFrame(samplesPerChannel: 320)
                block.timestamp = MediaTime(value: base + Int64(n) * 320, timescale: 16_000)
                recorder.handle(.audio(participantID: id, trackID: "a", block), at: start + .milliseconds(20 * n))
            }
        }
        recorder.handle(.participantJoined(ParticipantInfo(id: "PA_1", name: "Alice", identity: "alice")), at: .zero)
        speak("PA_1", from: .zero, base: 0)
        recorder.handle(.participantLeft(id: "PA_1", reason: nil), at: .seconds(2))
        recorder.handle(
            .participantJoined(ParticipantInfo(id: "PA_2", name: "Alice", identity: "alice")), at: .seconds(3))
        speak("PA_2", from: .seconds(3), base: 987_654)
        recorder.stop(at: .seconds(6))
        let wavs = recorder.finish().filter { $0.hasSuffix(".wav") }
        #expect(wavs.map { ($0 as NSString).lastPathComponent } == ["Alice-alice.wav"], "\(wavs)")
        let wav = try WAVReader(path: try #require(wavs.first))
        #expect(abs(wav.duration.seconds - 6) < 0.05, "\(wav.duration)")
        func level(_ from: Double, _ to: Double) -> Double {
            let part = wav.samples[Int(from * 16_000)..<Int(to * 16_000)]
            return part.map { abs(Double($0.normalized)) }.max() ?? 0
        }
        #expect(level(0.2, 1.8) > 0.3 && level(3.2, 4.8) > 0.3, "the tone, both times")
        #expect(level(2.3, 2.7) < 0.01, "silence while away")
        let heard = SignalAnalysis.dominantFrequency(
            in: wav.samples[Int(3.5 * 16_000)..<Int(4.5 * 16_000)].map(\.normalized), sampleRate: 16_000,
            range: 200...1200)
        #expect(abs(heard - 440) <= 10)
    }
}
