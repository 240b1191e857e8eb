// meetkit-bench — MeetKit's codec paths against the same C calls made directly, in one
// run, printed as ratios. Build in release mode:
//
//     swift run -c release meetkit-bench [--quick]
//
// Method: inputs are generated once; each measurement runs a fresh encoder over all of
// them; the MeetKit and direct-C variants alternate for several rounds and the median
// round is kept, so both see the same machine state. Timings are wall-clock per frame.

import CMeetKitShim
import COpus
import CSRTP
import CVPX
import Codec
import Foundation
import MeetKitTestSupport
import Transport

#if canImport(Glibc)
    import Glibc
#endif

Allocations.preloadInterposer()

let quick = Bench.quick
let rounds = Bench.rounds

// MARK: Opus encode + decode, 20 ms mono at 48 kHz

func benchOpus() throws {
    let frames = quick ? 250 : 1000
    var tone = ToneGenerator.chirp(from: 200, to: 3000, seconds: 2)
    let inputs = (0..<frames).map { _ in tone.nextFrame(samplesPerChannel: 960) }
    var config = OpusEncoderConfiguration()
    config.bitrate = 32_000
    config.complexity = 9

    let times = try compare(
        {
            var error: Int32 = 0
            let enc = opus_encoder_create(48_000, 1, OPUS_APPLICATION_VOIP, &error)!
            _ = mk_opus_encoder_set(enc, OPUS_SET_BITRATE_REQUEST, 32_000)
            _ = mk_opus_encoder_set(enc, OPUS_SET_COMPLEXITY_REQUEST, 9)
            _ = mk_opus_encoder_set(enc, OPUS_SET_INBAND_FEC_REQUEST, 0)
            _ = mk_opus_encoder_set(enc, OPUS_SET_PACKET_LOSS_PERC_REQUEST, 0)
            _ = mk_opus_encoder_set(enc, OPUS_SET_DTX_REQUEST, 0)
            _ = mk_opus_encoder_set(enc, OPUS_SET_VBR_REQUEST, 1)
            let dec = opus_decoder_create(48_000, 1, &error)!
            var packet = [UInt8](repeating: 0, count: 4000)
            var pcm = [Int16](repeating: 0, count: 5760)
            for frame in inputs {
                let n = frame.samples.withUnsafeBufferPointer { opus_encode(enc, $0.baseAddress!, 960, &packet, 4000) }
                _ = opus_decode(dec, packet, n, &pcm, 5760, 0)
            }
            opus_encoder_destroy(enc)
            opus_decoder_destroy(dec)
        },
        {
            let encoder = try OpusEncoder(configuration: config)
            let decoder = try OpusDecoder(sampleRate: 48_000, channels: 1)
            for frame in inputs { _ = try decoder.decode(try encoder.encode(frame).data) }
        })
    row("Opus encode+decode, 20 ms mono 48 kHz 32 kbit/s", "µs", frames: frames, times)
}

// MARK: VP8 encode, 640x480 at 1 Mbit/s

func benchVP8() throws {
    let frames = quick ? 60 : 150
    var pattern = TestPatternGenerator(width: 640, height: 480, frameRate: 30)
    let inputs = (0..<frames).map { _ in pattern.nextFrame() }
    var config = VP8EncoderConfiguration(width: 640, height: 480)
    config.bitrate = 1_000_000

    let times = try compare(
        {
            let ctx = UnsafeMutablePointer<vpx_codec_ctx_t>.allocate(capacity: 1)
            var cfg = try VP8Encoder.libvpxConfiguration(config)
            guard mk_vpx_vp8_enc_init(ctx, &cfg, 0) == VPX_CODEC_OK else { fatalError("vpx init") }
            try VP8Encoder.applyControls(config, to: ctx)
            var image = vpx_image_t()
            var bytes = 0
            for (i, frame) in inputs.enumerated() {
                frame.withPlanes { y, u, v in
                    vpx_img_wrap(&image, VPX_IMG_FMT_I420, 640, 480, 1, UnsafeMutablePointer(mutating: y.baseAddress))
                    image.planes.1 = UnsafeMutablePointer(mutating: u.baseAddress)
                    image.planes.2 = UnsafeMutablePointer(mutating: v.baseAddress)
                    image.stride = (Int32(frame.strides.y), Int32(frame.strides.u), Int32(frame.strides.v), 0)
                    let flags: vpx_enc_frame_flags_t = i == 0 ? vpx_enc_frame_flags_t(VPX_EFLAG_FORCE_KF) : 0
                    _ = vpx_codec_encode(ctx, &image, vpx_codec_pts_t(i * 3000), 3000, flags, UInt(VPX_DL_REALTIME))
                }
                var iterator: vpx_codec_iter_t? = nil
                while let packet = vpx_codec_get_cx_data(ctx, &iterator) {
                    if packet.pointee.kind == VPX_CODEC_CX_FRAME_PKT { bytes += packet.pointee.data.frame.sz }
                }
            }
            precondition(bytes > 0)
            vpx_codec_destroy(ctx)
            ctx.deallocate()
        },
        {
            let encoder = try VP8Encoder(configuration: config)
            var bytes = 0
            for frame in inputs { bytes += try encoder.encode(frame)?.data.count ?? 0 }
            precondition(bytes > 0)
        })
    row("VP8 encode, 640x480 1 Mbit/s cpu-used -6", "ms", frames: frames, times)
}

// MARK: ICE connection setup on loopback

/// One MeetKit pair over real UDP: milliseconds from exchanging credentials and candidates
/// to both agents connected.
func meetKitICEConnect() async throws -> Double {
    var controlling = ICEConfiguration()
    controlling.role = .controlling
    var controlled = ICEConfiguration()
    controlled.role = .controlled
    let loopback = IPAddress("127.0.0.1")!
    let a = try await ICETransport.start(configuration: controlling, localAddresses: [loopback])
    let b = try await ICETransport.start(configuration: controlled, localAddresses: [loopback])
    let candidatesA = try await a.localCandidates()
    let candidatesB = try await b.localCandidates()
    func connected(_ t: ICETransport) async -> Bool {
        for await e in t.events where e == .stateChanged(.connected) { return true }
        return false
    }
    let start = clock.now
    async let doneA = connected(a)
    async let doneB = connected(b)
    try await a.setRemote(credentials: b.localCredentials, candidates: candidatesB, endOfCandidates: true)
    try await b.setRemote(credentials: a.localCredentials, candidates: candidatesA, endOfCandidates: true)
    let ok = await (doneA, doneB)
    let elapsed = (clock.now - start).seconds * 1000
    await a.close()
    await b.close()
    precondition(ok.0 && ok.1, "MeetKit pair did not connect")
    return elapsed
}

func benchICE() async throws {
    let pairs = quick ? 10 : 30
    var meetkit: [Double] = []
    for _ in 0..<pairs { meetkit.append(try await meetKitICEConnect()) }
    let python = ".venv/bin/python"
    guard FileManager.default.isExecutableFile(atPath: python) else {
        print(
            "ICE connect on loopback: MeetKit \(fmt(median(meetkit))) ms (aioice reference missing: run Scripts/bootstrap)"
        )
        return
    }
    let reference = try LineProcess(
        executable: python, arguments: ["Scripts/interop/aioice_pair_bench.py", String(pairs)])
    let result = try await reference.readJSON(timeout: .seconds(120))
    let aioice = result["median_ms"] as? Double ?? .nan
    let name = "ICE setup on loopback (checks → connected, both)".padding(toLength: 50, withPad: " ", startingAt: 0)
    print(
        "\(name) aioice \(fmt(aioice)) ms  MeetKit \(fmt(median(meetkit))) ms  ratio \(fmt(median(meetkit) / aioice, 3))"
    )
}

// MARK: Connection setup and memory (public PeerConnection, audio + video negotiated)

/// Connects a pair of PeerConnections with audio and video transceivers; returns the
/// milliseconds from applying the answer to both connected (ICE + DTLS-SRTP).
func connectPair() async throws -> (ms: Double, peers: [PeerConnection]) {
    let loopback = IPAddress("127.0.0.1")!
    let a = try await PeerConnection.start(localAddresses: [loopback])
    let b = try await PeerConnection.start(localAddresses: [loopback])
    _ = try await a.addTransceiver(.audio)
    _ = try await a.addTransceiver(.video)
    let offer = try await a.createOffer()
    try await a.setLocalDescription(offer)
    try await b.setRemoteDescription(offer)
    let answer = try await b.createAnswer()
    try await b.setLocalDescription(answer)
    func connected(_ pc: PeerConnection) async -> Bool {
        for await e in pc.events where e == .connectionState(.connected) { return true }
        return false
    }
    let start = clock.now
    async let connectedA = connected(a)
    async let connectedB = connected(b)
    try await a.setRemoteDescription(answer)
    let ok = await (connectedA, connectedB)
    precondition(ok.0 && ok.1, "MeetKit pair did not connect")
    return ((clock.now - start).seconds * 1000, [a, b])
}

func residentKiB() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
}

func benchSecureSetup() async throws {
    let pairs = quick ? 5 : 20
    var samples: [Double] = []
    for _ in 0..<pairs {
        let (ms, peers) = try await connectPair()
        samples.append(ms)
        for p in peers { await p.close() }
    }
    let before = residentKiB()
    var idle: [PeerConnection] = []
    for _ in 0..<pairs { idle += try await connectPair().peers }
    try await Task.sleep(for: .seconds(1))
    let perConnection = Double(residentKiB() - before) / Double(idle.count)
    for p in idle { await p.close() }

    var reference: [String: Any] = [:]
    if FileManager.default.isExecutableFile(atPath: ".venv/bin/python") {
        let process = try LineProcess(
            executable: ".venv/bin/python", arguments: ["Scripts/interop/aiortc_pair_bench.py", String(pairs)])
        reference = try await process.readJSON(timeout: .seconds(300))
    }
    let aiortcSetup = reference["setup_median_ms"] as? Double ?? .nan
    let aiortcMemory = reference["memory_kib_per_pc"] as? Double ?? .nan
    print(
        "\("Connection setup (answer applied → both connected)".padding(toLength: 50, withPad: " ", startingAt: 0)) aiortc \(fmt(aiortcSetup)) ms  MeetKit \(fmt(median(samples))) ms  ratio \(fmt(median(samples) / aiortcSetup, 3))"
    )
    print(
        "\("Memory per idle connected PeerConnection (RSS)".padding(toLength: 50, withPad: " ", startingAt: 0)) aiortc \(fmt(aiortcMemory)) KiB  MeetKit \(fmt(perConnection)) KiB  ratio \(fmt(perConnection / aiortcMemory, 3))"
    )
}

print("MeetKit benchmarks (median of rounds; ratio = MeetKit / reference, below 1 is faster)")
// `--receive`: only the receive-path rows; `--data`: only the data channel row.
// `--forward`: only meet-server's forwarding rows; `--multistream`: only the rows of 50
// Opus streams from aiortc; `--receive-path`: only the two rows of the bare receive path.
let forwardOnly = CommandLine.arguments.contains("--forward")
if CommandLine.arguments.contains("--multistream") {
    try await benchMultiStream(handler: false)
    try await benchMultiStream(handler: true)
    try await benchMultiStream(handler: true, readInterval: .milliseconds(5))
    try await benchMultiStream(handler: true, simultaneous: true)
    exit(0)
}
if CommandLine.arguments.contains("--receive-path") {
    let aiortcReceive = try await aiortcReceiveRates()
    try benchReceivePath(.aeadAES128GCM, aiortc: aiortcReceive)
    try benchReceivePath(.aes128CMHMACSHA1_80, aiortc: aiortcReceive)
    exit(0)
}
let dataOnly = CommandLine.arguments.contains("--data") || forwardOnly
let receiveOnly = CommandLine.arguments.contains("--receive") || dataOnly
if !receiveOnly {
    try benchOpus()
    try benchVP8()
}
if !dataOnly {
    let aiortcReceive = try await aiortcReceiveRates()
    try benchReceivePath(.aeadAES128GCM, aiortc: aiortcReceive)
    try benchReceivePath(.aes128CMHMACSHA1_80, aiortc: aiortcReceive)
    try benchPeerConnectionReceive()
    try await benchMultiStream(handler: false)
    try await benchMultiStream(handler: true)
    try await benchMultiStream(handler: true, readInterval: .milliseconds(5))
    try await benchMultiStream(handler: true, simultaneous: true)
}
if !receiveOnly {
    try await benchICE()
    try await benchSecureSetup()
}
if !receiveOnly || (dataOnly && !forwardOnly) { try await benchDataChannel() }
if !receiveOnly || forwardOnly {
    try benchServerForwarding(.audio)
    try benchServerForwarding(.video)
}
