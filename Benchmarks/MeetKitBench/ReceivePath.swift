// The receive path: SRTP unprotect + RTP parse + depacketize, against bare libsrtp and
// aiortc; and the whole PeerConnection receive path down to decoded PCM, against bare
// libsrtp + libopus. Each with the heap allocations it makes per packet.

import COpus
import CSRTP
import Codec
import Foundation
import MeetKitNet
import MeetKitTestSupport
import Transport

/// aiortc's receive path (pylibsrtp unprotect + RtpPacket.parse + depayload) in packets
/// per second, by profile name, from `Scripts/interop/aiortc_receive_bench.py`.
func aiortcReceiveRates() async throws -> [String: Double] {
    guard FileManager.default.isExecutableFile(atPath: ".venv/bin/python") else { return [:] }
    let process = try LineProcess(
        executable: ".venv/bin/python",
        arguments: [
            "Scripts/interop/aiortc_receive_bench.py", String(Bench.quick ? 5_000 : 20_000), String(Bench.rounds),
        ])
    let result = try await process.readJSON(timeout: .seconds(300))
    return result.compactMapValues { $0 as? Double }
}

/// A bare libsrtp context for `profile`: inbound (any SSRC, replay window 1024) or
/// outbound (any SSRC).
func bareSRTPSession(_ profile: SRTPProfile, key: [UInt8], salt: [UInt8], outbound: Bool = false) -> srtp_t {
    var policy = srtp_policy_t()
    if profile == .aeadAES128GCM {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
    } else {
        srtp_crypto_policy_set_rtp_default(&policy.rtp)
        srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
    }
    policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound
    if !outbound { policy.window_size = 1024 }
    var material = key + salt
    var session: srtp_t?
    let status = material.withUnsafeMutableBufferPointer { m in
        policy.key = m.baseAddress
        return srtp_create(&session, &policy)
    }
    guard status == srtp_err_status_ok, let session else { fatalError("srtp_create") }
    return session
}

/// `count` Opus RTP packets (cycling through `payloads`) protected with fixed test keys,
/// for the bare references and for SRTPSession.
struct FixedKeyWire {
    let profile: SRTPProfile
    let key = (0..<16).map { UInt8($0) }
    let salt: [UInt8]
    let packets: [[UInt8]]

    /// Packets of `streams` streams (SSRCs 7, 8, …) taking turns, each stream going through
    /// `payloads` in order.
    let streams: Int

    init(_ profile: SRTPProfile, payloads: [[UInt8]], count: Int, streams: Int = 1) throws {
        self.profile = profile
        self.streams = streams
        salt = (0..<profile.saltLength).map { UInt8(100 + $0) }
        let sender = try SRTPSession(
            keys: SRTPKeyingMaterial(profile: profile, localKey: key, localSalt: salt, remoteKey: key, remoteSalt: salt)
        )
        packets = try (0..<count).map { i in
            let (n, stream) = i.quotientAndRemainder(dividingBy: streams)
            let header = RTPHeader(
                payloadType: 111, sequenceNumber: UInt16(truncatingIfNeeded: n), timestamp: UInt32(n * 960),
                ssrc: UInt32(7 + stream))
            return try sender.protectRTP(
                RTPPacket(header: header, payload: payloads[n % payloads.count][...]).serialized())
        }
    }

    /// The keys for an SRTPSession receiving these packets.
    var keys: SRTPKeyingMaterial {
        SRTPKeyingMaterial(profile: profile, localKey: key, localSalt: salt, remoteKey: key, remoteSalt: salt)
    }

    /// A fresh bare libsrtp inbound context for these packets.
    func bareSession() -> srtp_t { bareSRTPSession(profile, key: key, salt: salt) }

    /// Runs `body` with a fresh bare libsrtp context and libopus decoder (48 kHz,
    /// `channels`), freed afterwards.
    func withBareReceiver(channels: Int32, _ body: (srtp_t, [OpaquePointer]) -> Void) {
        var error: Int32 = 0
        let session = bareSession()
        let decoders = (0..<streams).map { _ in opus_decoder_create(48_000, channels, &error)! }
        body(session, decoders)
        for decoder in decoders { opus_decoder_destroy(decoder) }
        srtp_dealloc(session)
    }

    /// The bare receive: each packet copied into one reused buffer, then
    /// ``bareUnprotectAndDecode(_:length:session:decoders:pcm:)``. Returns the packets that
    /// got through.
    func bareReceive(_ session: srtp_t, decoders: [OpaquePointer] = []) -> Int {
        var buffer = [UInt8](repeating: 0, count: 2048)
        var pcm = [Int16](repeating: 0, count: 5760 * 2)
        var done = 0
        for packet in packets {
            buffer.withUnsafeMutableBytes { b in
                packet.withUnsafeBytes { b.copyMemory(from: $0) }
                if Self.bareUnprotectAndDecode(
                    b.baseAddress!, length: Int32(packet.count), session: session, decoders: decoders, pcm: &pcm)
                {
                    done += 1
                }
            }
        }
        return done
    }

    /// One packet of these (in `packet`, `length` bytes) unprotected in place by libsrtp and,
    /// with decoders, its payload (after the 12-byte header: no CSRC, no extension) decoded by
    /// its stream's decoder (by SSRC: Opus decoding keeps state per stream) into `pcm`.
    /// Whether it got through.
    static func bareUnprotectAndDecode(
        _ packet: UnsafeMutableRawPointer, length: Int32, session: srtp_t, decoders: [OpaquePointer],
        pcm: inout [Int16]
    ) -> Bool {
        var length = length
        guard srtp_unprotect(session, packet, &length) == srtp_err_status_ok else { return false }
        guard !decoders.isEmpty else { return true }
        let ssrc = packet.loadUnaligned(fromByteOffset: 8, as: UInt32.self).bigEndian
        let decoder = decoders[Int(ssrc &- 7) % decoders.count]
        let payload = packet.advanced(by: 12).assumingMemoryBound(to: UInt8.self)
        return opus_decode(decoder, payload, length - 12, &pcm, 5760, 0) > 0
    }
}

/// Real Opus packets (20 ms, 32 kbit/s ≈ 80 bytes) of a tone.
func opusPackets(_ count: Int) throws -> [[UInt8]] {
    let encoder = try OpusEncoder()
    var tone = ToneGenerator(frequency: 440)
    return try (0..<count).map { _ in try encoder.encode(tone.nextFrame(samplesPerChannel: 960)).data }
}

func benchReceivePath(_ profile: SRTPProfile, aiortc: [String: Double]) throws {
    // Many short rounds (a few milliseconds each): the per-round ratio is what is reported.
    let count = 4_000
    let wire = try FixedKeyWire(profile, payloads: try opusPackets(50), count: count)
    // Both sides copy each packet into a reused buffer (as a driver copies it out of the
    // socket's) and work there in place.
    func meetKit(_ receiver: SRTPSession) throws {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(2048)
        var frames = 0
        for packet in wire.packets {
            packet.withUnsafeBytes { buffer.overwrite(with: $0) }
            let rtp = try receiver.unprotectRTPPacket(inPlace: &buffer)
            frames += try OpusRTPDepacketizer.depacketize(payload: rtp.payload).samplesPerChannel48k > 0 ? 1 : 0
        }
        precondition(frames == count)
    }
    // Each round receives the packets afresh, with contexts made just before it (untimed)
    // and freed after it (untimed). Made together: libsrtp's crypto back end (NSS here)
    // keeps process-wide state whose cost per packet depends on what was made and freed
    // before, so two pools of contexts made at different times differ by up to a fifth
    // with the very same code (the control row below measures the method against itself).
    let rounds = Bench.quick ? 21 : 101
    var bare: srtp_t?
    var other: srtp_t?
    var session: SRTPSession?
    func freeRound() {
        if let bare { srtp_dealloc(bare) }
        if let other { srtp_dealloc(other) }
        (bare, other, session) = (nil, nil, nil)
    }
    // MeetKit as it receives (its own receiver, on OpenSSL), and MeetKit with
    // libsrtp receiving (its wrapper, parse and framing check around the reference).
    func measure(libsrtpReceivesRTP: Bool) throws -> Comparison {
        try compare(
            rounds: rounds,
            prepare: {
                freeRound()
                bare = wire.bareSession()
                session = try! SRTPSession(keys: wire.keys, libsrtpReceivesRTP: libsrtpReceivesRTP)
            },
            { precondition(wire.bareReceive(bare!) == count) },
            { try meetKit(session!) })
    }
    let times = try measure(libsrtpReceivesRTP: false)
    let onLibsrtp = try measure(libsrtpReceivesRTP: true)
    // The control: bare libsrtp against itself, both contexts made as above.
    let control = compare(
        rounds: rounds,
        prepare: {
            freeRound()
            bare = wire.bareSession()
            other = wire.bareSession()
        },
        { precondition(wire.bareReceive(bare!) == count) },
        { precondition(wire.bareReceive(other!) == count) })
    freeRound()
    // Allocations of one more run each, sessions made outside the count. libsrtp itself
    // allocates per packet with some crypto back ends (Debian's is built on NSS): MeetKit's
    // own share is the difference.
    let counting = wire.bareSession()
    let bareAllocations = Allocations.count { _ = wire.bareReceive(counting) }
    srtp_dealloc(counting)
    let counted = try SRTPSession(keys: wire.keys)
    let allocations = try Allocations.count { try meetKit(counted) }
    let reference = Double(count) / times.reference
    let meetkit = Double(count) / times.candidate
    let profileName = profile == .aeadAES128GCM ? "AES-GCM" : "AES-CM"
    let name = "Receive path \(profileName) (unprotect+parse+depacketize)"
    print(
        "\(name.padding(toLength: 50, withPad: " ", startingAt: 0)) libsrtp \(fmt(reference / 1000)) kpkt/s  MeetKit \(fmt(meetkit / 1000)) kpkt/s  ratio \(fmt(1 / times.ratio, 3))  allocations/packet: libsrtp \(Allocations.perItem(bareAllocations, count)), MeetKit \(Allocations.perItem(allocations, count))"
    )
    print(
        "\("  same, MeetKit with libsrtp receiving".padding(toLength: 50, withPad: " ", startingAt: 0)) libsrtp \(fmt(Double(count) / onLibsrtp.reference / 1000)) kpkt/s  MeetKit \(fmt(Double(count) / onLibsrtp.candidate / 1000)) kpkt/s  ratio \(fmt(1 / onLibsrtp.ratio, 3))"
    )
    print(
        "\("  control: bare libsrtp against itself".padding(toLength: 50, withPad: " ", startingAt: 0)) ratio \(fmt(1 / control.ratio, 3)) (the method's own bias; 1 is none)"
    )
    let python = aiortc[profileName] ?? .nan
    print(
        "\("  same, against aiortc's receive path".padding(toLength: 50, withPad: " ", startingAt: 0)) aiortc \(fmt(python / 1000)) kpkt/s  MeetKit \(fmt(meetkit / 1000)) kpkt/s  ratio \(fmt(meetkit / python, 3))"
    )
}

// MARK: The whole PeerConnection receive path, to decoded PCM

/// A connected pair of PeerConnectionCores on the simulated network, `a` sending Opus on
/// one audio transceiver, `b` decoding it to 48 kHz mono; and `count` SRTP datagrams from
/// `a` to `b`, taken off the wire.
struct ReceivingPair {
    let b: SimulatedMachine<PeerConnectionCore>
    let wire: [Datagram]
    var decoded = 0

    init(opus: [[UInt8]], count: Int) throws {
        let net = SimulatedNetwork(seed: 5)
        net.addHost(IPAddress("203.0.113.1")!, link: .init(latency: .milliseconds(1)))
        net.addHost(IPAddress("203.0.113.2")!, link: .init(latency: .milliseconds(1)))
        let a = SimulatedMachine(try PeerConnectionCore(), address: TransportAddress("203.0.113.1:5000")!)
        let b = SimulatedMachine(try PeerConnectionCore(), address: TransportAddress("203.0.113.2:5000")!)
        a.machine.start(localAddresses: [a.address], now: .zero)
        b.machine.start(localAddresses: [b.address], now: .zero)
        let mid = a.machine.addTransceiver(.audio, direction: .sendonly)
        let offer = a.machine.createOffer()
        try a.machine.setLocalDescription(offer)
        try b.machine.setRemoteDescription(offer, now: .zero)
        try b.machine.setReceiveOutput(.decoded(audioSampleRate: 48_000, audioChannels: 1), mid: mid)
        let answer = try b.machine.createAnswer()
        try b.machine.setLocalDescription(answer)
        try a.machine.setRemoteDescription(answer, now: .zero)
        let connected = net.run([a, b], until: .seconds(10)) {
            a.machine.connectionState == .connected && b.machine.connectionState == .connected
        }
        precondition(connected, "the simulated pair did not connect")
        var wire: [Datagram] = []
        for i in 0..<count {
            let frame = EncodedFrame(
                codec: .opus, data: opus[i % opus.count],
                timestamp: MediaTime(value: Int64(i * 960), timescale: 48_000),
                duration: MediaTime(value: 960, timescale: 48_000), isKeyframe: true)
            try a.machine.send(frame, mid: mid, now: .seconds(1))
            wire += a.drainTransmits().filter { DatagramKind($0.data) == .rtp }
        }
        self.b = b
        self.wire = wire
    }

    /// Hands every datagram to `b` as a driver does (copied into one reused buffer, then
    /// the machine polled until it waits); counts the decoded frames.
    mutating func receiveAll() {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(2048)
        let pc = b.machine
        for d in wire {
            d.data.withUnsafeBytes { buffer.overwrite(with: $0) }
            pc.handleDatagram(&buffer, from: d.from, to: d.to, now: .seconds(2))
            pc.drainOutputs(transmit: { _ in }) { if case .audio = $0 { decoded += 1 } }
        }
    }
}

func benchPeerConnectionReceive() throws {
    let count = Bench.quick ? 2_000 : 5_000
    let opus = try opusPackets(50)
    var pairs = try (0...Bench.rounds).map { _ in try ReceivingPair(opus: opus, count: count) }
    // The bare cost: the same payloads protected with fixed keys, unprotected with libsrtp
    // and decoded with libopus into reused buffers.
    let wire = try FixedKeyWire(.aeadAES128GCM, payloads: opus, count: count)
    func bare(_ session: srtp_t, _ decoders: [OpaquePointer]) {
        precondition(wire.bareReceive(session, decoders: decoders) == count)
    }
    var round = 0
    let times = compare(
        { wire.withBareReceiver(channels: 1, bare) },
        {
            pairs[round].receiveAll()
            precondition(pairs[round].decoded == count, "decoded \(pairs[round].decoded) of \(count)")
            round += 1
        })
    var bareAllocations: Int?
    wire.withBareReceiver(channels: 1) { session, decoders in
        bareAllocations = Allocations.count { bare(session, decoders) }
    }
    let allocations = Allocations.count { pairs[Bench.rounds].receiveAll() }
    row("PeerConnection receive → 48 kHz PCM (vs srtp+opus)", "µs", frames: count, times)
    print(
        "  allocations per packet: srtp+opus \(Allocations.perItem(bareAllocations, count)), MeetKit \(Allocations.perItem(allocations, count)) (MeetKit hands out each frame's PCM as a new array)"
    )
}
