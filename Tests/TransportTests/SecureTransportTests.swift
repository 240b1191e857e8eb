import Codec
import MeetKitTestSupport
import Testing

@testable import Transport

/// A media endpoint on the simulated network: ICE + DTLS + SRTP, sending a tone (Opus,
/// PT 111) and a test pattern (VP8, PT 96) once secured, decoding what it receives.
final class SimulatedMediaPeer: SimulatedEndpoint {
    let core: SecureTransportCore
    let address: TransportAddress
    var secured = false
    var failure: String?
    private var out: [SimulatedNetwork.Datagram] = []
    private var nextAudio: Duration?
    private var nextVideo: Duration?
    private var tone: ToneGenerator
    private var pattern = TestPatternGenerator(width: 320, height: 240, frameRate: 30)
    private let opus: OpusEncoder
    private let vp8: VP8Encoder
    private var vp8Packetizer = try! VP8RTPPacketizer(maxPayloadSize: 1100)
    private let ssrc: UInt32
    private var audioSeq: UInt16 = 0
    private var videoSeq: UInt16 = 0
    private var videoFramesSent = 0
    private(set) var audioFramesSent = 0
    let opusDecoder = try! OpusDecoder(sampleRate: 48_000, channels: 1)
    let vp8Decoder = try! VP8Decoder()
    private var assembler = VP8FrameAssembler()
    private(set) var audioDecoded = 0
    private(set) var videoDecoded = 0
    private(set) var receivedPCM: [Float] = []
    var sendMediaUntil: Duration = .seconds(6)

    init(address: TransportAddress, role: ICERole, frequency: Double, ssrc: UInt32) throws {
        var config = ICEConfiguration()
        config.role = role
        core = try SecureTransportCore(ice: config)
        self.address = address
        self.ssrc = ssrc
        tone = ToneGenerator(frequency: frequency)
        opus = try OpusEncoder()
        vp8 = try VP8Encoder(configuration: .init(width: 320, height: 240))
    }

    var ip: IPAddress { address.ip }
    var videoSent: Int { videoFramesSent }

    var nextDeadline: Duration? {
        [coreDeadline, nextAudio, nextVideo].compactMap { $0 }.min()
    }
    private var coreDeadline: Duration?
    private var lastInput: Duration = .zero

    func handle(_ datagram: SimulatedNetwork.Datagram, now: Duration) {
        core.handleDatagram(datagram.data, from: datagram.from, to: datagram.to, now: now)
        collect(now: now)
    }

    func handleTimeout(now: Duration) {
        core.handleTimeout(now: now)
        if let at = nextAudio, now >= at {
            sendAudio(now: now)
            nextAudio = now < sendMediaUntil ? at + .milliseconds(20) : nil
        }
        if let at = nextVideo, now >= at {
            sendVideo(now: now)
            nextVideo = now < sendMediaUntil ? at + .milliseconds(33) : nil
        }
        collect(now: now)
    }

    func drainTransmits() -> [SimulatedNetwork.Datagram] {
        collect(now: lastInput)
        defer { out = [] }
        return out
    }

    private func sendAudio(now: Duration) {
        let frame = tone.nextFrame(samplesPerChannel: 960)
        guard let packet = try? opus.encode(frame) else { return }
        let header = RTPHeader(
            payloadType: 111, sequenceNumber: audioSeq, timestamp: UInt32(truncatingIfNeeded: packet.timestamp.value),
            ssrc: ssrc)
        audioSeq &+= 1
        if (try? core.sendRTP(RTPPacket(header: header, payload: packet.data[...]))) != nil { audioFramesSent += 1 }
    }

    private func sendVideo(now: Duration) {
        guard let frame = try? vp8.encode(pattern.nextFrame()), let fragments = try? vp8Packetizer.packetize(frame)
        else {
            return
        }
        for f in fragments {
            let header = RTPHeader(
                payloadType: 96, sequenceNumber: videoSeq, timestamp: f.timestamp, ssrc: ssrc + 1, marker: f.marker)
            videoSeq &+= 1
            try? core.sendRTP(RTPPacket(header: header, payload: f.payload[...]))
        }
        videoFramesSent += 1
    }

    /// Takes the core's outputs, through its one output call, until it says to wait.
    private func collect(now: Duration) {
        lastInput = now
        coreDeadline = core.drainOutputs(transmit: { out.append($0) }) { handle($0, now: now) }
    }

    private func handle(_ e: SecureTransportCore.Event, now: Duration) {
        switch e {
        case .secured:
            secured = true
            nextAudio = now
            nextVideo = now
        case .failed(let why): failure = why.description
        case .rtp(let packet) where packet.header.payloadType == 111:
            if let frame = try? opusDecoder.decode(Array(packet.payload)) {
                audioDecoded += 1
                receivedPCM += frame.samples.map(\.normalized)
            }
        case .rtp(let packet) where packet.header.payloadType == 96:
            for output in (try? assembler.insert(packet.payloadPacket, now: now)) ?? [] {
                switch output {
                case .frame(let f): if (try? vp8Decoder.decode(f.encoded)) != nil { videoDecoded += 1 }
                case .incomplete: vp8Decoder.frameLost()
                }
            }
        default: break
        }
    }
}

@Suite("ICE + DTLS + SRTP over the simulated network")
struct SecureTransportTests {
    /// What signalling carries: credentials, candidates and fingerprints; `a` is the DTLS
    /// client (a=setup:active). `fingerprintOfB` overrides what `a` is told of `b`.
    static func signal(_ a: SimulatedMediaPeer, _ b: SimulatedMediaPeer, fingerprintOfB: String? = nil) throws {
        a.core.start(localAddresses: [a.address], now: .zero)
        b.core.start(localAddresses: [b.address], now: .zero)
        try a.core.setRemote(
            credentials: b.core.ice.localCredentials, candidates: b.core.ice.localCandidates, endOfCandidates: true,
            fingerprint: ("sha-256", fingerprintOfB ?? b.core.certificate.fingerprint), dtlsRole: .client, now: .zero)
        try b.core.setRemote(
            credentials: a.core.ice.localCredentials, candidates: a.core.ice.localCandidates, endOfCandidates: true,
            fingerprint: ("sha-256", a.core.certificate.fingerprint), dtlsRole: .server, now: .zero)
    }

    /// Two peers negotiate ICE, DTLS-SRTP, then send Opus and VP8 both ways for 5 s.
    @Test func audioAndVideoBothWays() throws {
        let net = SimulatedNetwork(seed: 17)
        let link = SimulatedNetwork.LinkConditions(latency: .milliseconds(15), jitter: .milliseconds(5))
        let natA = net.addNAT(publicIP: IPAddress("203.0.113.10")!, behavior: .portRestricted)
        net.addHost(IPAddress("10.0.0.2")!, behind: natA, link: link)
        net.addHost(IPAddress("203.0.113.20")!, link: link)
        let a = try SimulatedMediaPeer(
            address: TransportAddress("10.0.0.2:5000")!, role: .controlling, frequency: 440, ssrc: 1000)
        let b = try SimulatedMediaPeer(
            address: TransportAddress("203.0.113.20:5000")!, role: .controlled, frequency: 880, ssrc: 2000)
        try Self.signal(a, b)
        net.run([a, b], until: .seconds(8))
        #expect(a.secured && b.secured, "a: \(a.failure ?? "-"), b: \(b.failure ?? "-")")
        #expect(a.core.srtp?.profile == .aeadAES128GCM)
        #expect(a.audioFramesSent > 250 && b.audioFramesSent > 250)
        #expect(
            Double(b.audioDecoded) >= 0.9 * Double(a.audioFramesSent),
            "b decoded \(b.audioDecoded) of \(a.audioFramesSent)")
        #expect(
            Double(a.audioDecoded) >= 0.9 * Double(b.audioFramesSent),
            "a decoded \(a.audioDecoded) of \(b.audioFramesSent)")
        #expect(
            Double(b.videoDecoded) >= 0.9 * Double(a.videoSent),
            "b decoded \(b.videoDecoded) of \(a.videoSent) video frames")
        #expect(
            Double(a.videoDecoded) >= 0.9 * Double(b.videoSent),
            "a decoded \(a.videoDecoded) of \(b.videoSent) video frames")
        // Each side hears the other's tone.
        let heardByB = SignalAnalysis.dominantFrequency(
            in: Array(b.receivedPCM.suffix(48_000)), sampleRate: 48_000, range: 200...1200)
        let heardByA = SignalAnalysis.dominantFrequency(
            in: Array(a.receivedPCM.suffix(48_000)), sampleRate: 48_000, range: 200...1200)
        #expect(abs(heardByB - 440) <= 10 && abs(heardByA - 880) <= 10)
        #expect(a.core.statistics.srtpRejected == 0 && b.core.statistics.srtpRejected == 0)
    }

    /// A tampered fingerprint: DTLS fails on both sides, no media is decrypted.
    @Test func tamperedFingerprintStopsMedia() throws {
        let net = SimulatedNetwork(seed: 18)
        net.addHost(IPAddress("203.0.113.1")!)
        net.addHost(IPAddress("203.0.113.2")!)
        let a = try SimulatedMediaPeer(
            address: TransportAddress("203.0.113.1:5000")!, role: .controlling, frequency: 440, ssrc: 1)
        let b = try SimulatedMediaPeer(
            address: TransportAddress("203.0.113.2:5000")!, role: .controlled, frequency: 880, ssrc: 2)
        try Self.signal(a, b, fingerprintOfB: String(b.core.certificate.fingerprint.reversed()))
        net.run([a, b], until: .seconds(5))
        #expect(!a.secured && !b.secured)
        #expect(a.failure?.contains("fingerprint") == true)
        #expect(b.failure != nil)
        #expect(a.audioDecoded == 0 && b.audioDecoded == 0)
    }
}
