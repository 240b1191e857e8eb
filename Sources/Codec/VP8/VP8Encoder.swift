import CMeetKitShim
import CVPX

/// Settings of a ``VP8Encoder``. Defaults are those of a real-time camera track.
public struct VP8EncoderConfiguration: Sendable, Equatable {
    /// Picture width; frames of another size re-initialise the encoder (next frame is a keyframe).
    public var width: Int
    /// Picture height.
    public var height: Int
    /// Target bitrate in bits per second.
    public var bitrate: Int = 1_000_000
    /// Expected frames per second, used by rate control.
    public var frameRate: Int = 30
    /// Longest distance between automatic keyframes, in frames. Real-time senders keep
    /// this long and send keyframes when receivers ask (PLI/FIR).
    public var keyframeInterval: Int = 3000
    /// Error-resilient mode: frames decode even after the loss of earlier non-reference
    /// data (VPX_ERROR_RESILIENT_DEFAULT).
    public var errorResilient: Bool = true
    /// Encoder threads (1…16). More threads help above 640x480.
    public var threads: Int = 1
    /// libvpx speed: negative values are fixed speeds (-16…-1, faster as magnitude grows),
    /// positive values adapt speed to the wall clock. WebRTC stacks use -6.
    public var cpuUsed: Int = -6
    /// Smallest and largest quantizer (0…63).
    public var quantizerRange: ClosedRange<Int> = 2...56
    /// Tunes for screen content (sharper text, fewer updates).
    public var screenContent: Bool = false

    /// A configuration for `width` x `height` pictures.
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}

/// A VP8 encoder (libvpx) in real-time mode: I420 frames in, VP8 frames out.
///
/// ```swift
/// let encoder = try VP8Encoder(configuration: .init(width: 640, height: 360))
/// if let frame = try encoder.encode(picture) { send(frame) }
/// encoder.requestKeyframe()          // a receiver sent a PLI
/// ```
///
/// Not thread-safe: use one encoder from one task at a time.
public final class VP8Encoder {
    /// The configuration in force.
    public private(set) var configuration: VP8EncoderConfiguration
    private let context = UnsafeMutablePointer<vpx_codec_ctx_t>.allocate(capacity: 1)
    private let config = UnsafeMutablePointer<vpx_codec_enc_cfg_t>.allocate(capacity: 1)
    private let image = UnsafeMutablePointer<vpx_image_t>.allocate(capacity: 1)
    private var initialised = false
    private var keyframeRequested = false
    private var lastPTS: Int64 = -1
    /// Frames encoded since creation.
    public private(set) var framesEncoded = 0

    /// Creates an encoder. Throws ``VP8Error/invalidConfiguration(_:)`` for values out of range.
    public init(configuration: VP8EncoderConfiguration) throws(VP8Error) {
        self.configuration = configuration
        // On a throw, deinit runs (every stored property is initialised) and releases.
        try open()
    }

    deinit {
        if initialised { vpx_codec_destroy(context) }
        context.deallocate()
        config.deallocate()
        image.deallocate()
    }

    private func open() throws(VP8Error) {
        config.pointee = try Self.libvpxConfiguration(configuration)
        let rc = mk_vpx_vp8_enc_init(context, config, 0)
        guard rc == VPX_CODEC_OK else { throw VP8Error(rc, context: context) }
        initialised = true
        try Self.applyControls(configuration, to: context)
        keyframeRequested = true
    }

    /// The libvpx encoder configuration for `c`: one-pass CBR real-time, no lag, error
    /// resilient on request. Shared with the benchmark's direct C reference.
    package static func libvpxConfiguration(_ c: VP8EncoderConfiguration) throws(VP8Error) -> vpx_codec_enc_cfg_t {
        guard c.width > 0, c.height > 0, c.width <= 16383, c.height <= 16383 else {
            throw .invalidConfiguration("size \(c.width)x\(c.height)")
        }
        guard c.bitrate >= 1000 else { throw .invalidConfiguration("bitrate \(c.bitrate) bit/s") }
        guard (1...240).contains(c.frameRate) else { throw .invalidConfiguration("frame rate \(c.frameRate)") }
        guard (1...16).contains(c.threads) else { throw .invalidConfiguration("\(c.threads) threads") }
        guard (-16...16).contains(c.cpuUsed) else { throw .invalidConfiguration("cpuUsed \(c.cpuUsed)") }
        guard c.quantizerRange.lowerBound >= 0, c.quantizerRange.upperBound <= 63 else {
            throw .invalidConfiguration("quantizer range \(c.quantizerRange)")
        }
        guard c.keyframeInterval >= 1 else { throw .invalidConfiguration("keyframe interval \(c.keyframeInterval)") }
        var cfg = vpx_codec_enc_cfg_t()
        let rc = mk_vpx_vp8_enc_config_default(&cfg)
        guard rc == VPX_CODEC_OK else { throw VP8Error(rc, context: nil) }
        cfg.g_w = UInt32(c.width)
        cfg.g_h = UInt32(c.height)
        cfg.g_timebase = vpx_rational(num: 1, den: 90_000)
        cfg.g_threads = UInt32(c.threads)
        cfg.g_lag_in_frames = 0
        cfg.g_error_resilient = c.errorResilient ? vpx_codec_er_flags_t(VPX_ERROR_RESILIENT_DEFAULT) : 0
        cfg.g_pass = VPX_RC_ONE_PASS
        cfg.rc_end_usage = VPX_CBR
        cfg.rc_target_bitrate = UInt32(max(1, c.bitrate / 1000))
        cfg.rc_min_quantizer = UInt32(c.quantizerRange.lowerBound)
        cfg.rc_max_quantizer = UInt32(c.quantizerRange.upperBound)
        cfg.rc_undershoot_pct = 100
        cfg.rc_overshoot_pct = 15
        cfg.rc_buf_initial_sz = 500
        cfg.rc_buf_optimal_sz = 600
        cfg.rc_buf_sz = 1000
        cfg.rc_dropframe_thresh = 0
        cfg.kf_mode = VPX_KF_AUTO
        cfg.kf_min_dist = 0
        cfg.kf_max_dist = UInt32(c.keyframeInterval)
        return cfg
    }

    /// Applies the codec controls of `c` to an initialised libvpx encoder context.
    package static func applyControls(
        _ c: VP8EncoderConfiguration, to context: UnsafeMutablePointer<vpx_codec_ctx_t>
    ) throws(VP8Error) {
        let controls: [(vp8e_enc_control_id, Int32)] = [
            (VP8E_SET_CPUUSED, Int32(c.cpuUsed)),
            (VP8E_SET_NOISE_SENSITIVITY, 0),
            (VP8E_SET_STATIC_THRESHOLD, 1),
            (VP8E_SET_MAX_INTRA_BITRATE_PCT, 300),
            (VP8E_SET_SCREEN_CONTENT_MODE, c.screenContent ? 1 : 0),
        ]
        for (id, value) in controls {
            let rc = mk_vpx_control_int(context, Int32(id.rawValue), value)
            guard rc == VPX_CODEC_OK else { throw VP8Error(rc, context: context) }
        }
    }

    /// Makes the next encoded frame a keyframe (answer to a PLI or FIR).
    public func requestKeyframe() { keyframeRequested = true }

    /// Changes the target bitrate from the next frame on.
    public func setBitrate(_ bitrate: Int) throws(VP8Error) {
        guard bitrate >= 1000 else { throw .invalidConfiguration("bitrate \(bitrate) bit/s") }
        config.pointee.rc_target_bitrate = UInt32(bitrate / 1000)
        let rc = vpx_codec_enc_config_set(context, config)
        guard rc == VPX_CODEC_OK else { throw VP8Error(rc, context: context) }
        configuration.bitrate = bitrate
    }

    /// Encodes one picture.
    ///
    /// A picture of another size than the configuration re-initialises the encoder at the
    /// new size. Returns nil when rate control drops the frame.
    /// - Parameter forceKeyframe: make this frame a keyframe.
    public func encode(_ frame: VideoFrame, forceKeyframe: Bool = false) throws(VP8Error) -> EncodedFrame? {
        if frame.width != configuration.width || frame.height != configuration.height {
            vpx_codec_destroy(context)
            initialised = false
            configuration.width = frame.width
            configuration.height = frame.height
            try open()
        }
        var pts = frame.timestamp.converted(to: 90_000).value
        if pts <= lastPTS { pts = lastPTS + 1 }
        lastPTS = pts
        let flags: vpx_enc_frame_flags_t =
            (forceKeyframe || keyframeRequested) ? vpx_enc_frame_flags_t(VPX_EFLAG_FORCE_KF) : 0
        let duration = UInt(90_000 / configuration.frameRate)
        let rc: vpx_codec_err_t = frame.withPlanes { y, u, v in
            vpx_img_wrap(
                image, VPX_IMG_FMT_I420, UInt32(frame.width), UInt32(frame.height), 1,
                UnsafeMutablePointer(mutating: y.baseAddress))
            image.pointee.planes.0 = UnsafeMutablePointer(mutating: y.baseAddress)
            image.pointee.planes.1 = UnsafeMutablePointer(mutating: u.baseAddress)
            image.pointee.planes.2 = UnsafeMutablePointer(mutating: v.baseAddress)
            image.pointee.stride.0 = Int32(frame.strides.y)
            image.pointee.stride.1 = Int32(frame.strides.u)
            image.pointee.stride.2 = Int32(frame.strides.v)
            return vpx_codec_encode(context, image, vpx_codec_pts_t(pts), duration, flags, UInt(VPX_DL_REALTIME))
        }
        guard rc == VPX_CODEC_OK else { throw VP8Error(rc, context: context) }
        keyframeRequested = false
        var output: EncodedFrame?
        var iterator: vpx_codec_iter_t? = nil
        while let packet = vpx_codec_get_cx_data(context, &iterator) {
            guard packet.pointee.kind == VPX_CODEC_CX_FRAME_PKT else { continue }
            let f = packet.pointee.data.frame
            let bytes = Array(UnsafeRawBufferPointer(start: f.buf, count: f.sz))
            output = EncodedFrame(
                codec: .vp8, data: bytes, timestamp: MediaTime(value: f.pts, timescale: 90_000),
                duration: MediaTime(value: Int64(f.duration), timescale: 90_000),
                isKeyframe: f.flags & vpx_codec_frame_flags_t(VPX_FRAME_IS_KEY) != 0)
        }
        if output != nil { framesEncoded += 1 }
        return output
    }
}
