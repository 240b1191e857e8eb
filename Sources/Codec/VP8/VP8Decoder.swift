import CMeetKitShim
import CVPX

/// A VP8 decoder (libvpx): VP8 frames in, I420 pictures out.
///
/// A frame that is corrupt, truncated, or that depends on a frame which never arrived is
/// reported with a typed error and never shown. After such a frame (or after
/// ``frameLost()``) the decoder refuses inter frames with ``VP8Error/waitingForKeyframe``
/// until a keyframe arrives: ask the sender for one.
///
/// ```swift
/// let decoder = try VP8Decoder()
/// do {
///     if let picture = try decoder.decode(frame) { show(picture) }
/// } catch .waitingForKeyframe {
///     sendPLI()
/// }
/// ```
///
/// Not thread-safe: use one decoder from one task at a time.
public final class VP8Decoder {
    private let context = UnsafeMutablePointer<vpx_codec_ctx_t>.allocate(capacity: 1)
    /// Whether the decoder only accepts a keyframe next.
    public private(set) var needsKeyframe = true
    /// Frames decoded and shown.
    public private(set) var framesDecoded = 0
    /// Frames refused: corrupt, invalid, or inter frames while waiting for a keyframe.
    public private(set) var framesRejected = 0

    private var initialised = false

    /// Creates a decoder using `threads` threads (1…16).
    public init(threads: Int = 1) throws(VP8Error) {
        // On a throw, deinit runs (every stored property is initialised) and releases.
        guard (1...16).contains(threads) else { throw .invalidConfiguration("\(threads) threads") }
        var cfg = vpx_codec_dec_cfg_t(threads: UInt32(threads), w: 0, h: 0)
        let rc = mk_vpx_vp8_dec_init(context, &cfg, 0)
        guard rc == VPX_CODEC_OK else { throw VP8Error(rc, context: nil) }
        initialised = true
    }

    deinit {
        if initialised { vpx_codec_destroy(context) }
        context.deallocate()
    }

    /// Tells the decoder that a frame of the stream was lost (e.g. the RTP assembler
    /// reported it incomplete): inter frames are refused until the next keyframe.
    public func frameLost() { needsKeyframe = true }

    /// Decodes one whole VP8 frame. Returns the picture, or nil for a frame that is not
    /// meant to be shown. The picture takes `frame.timestamp`.
    public func decode(_ frame: EncodedFrame) throws(VP8Error) -> VideoFrame? {
        try decode(frame.data, timestamp: frame.timestamp)
    }

    /// Decodes one whole VP8 frame given as bytes. See ``decode(_:)``.
    public func decode(_ data: [UInt8], timestamp: MediaTime) throws(VP8Error) -> VideoFrame? {
        let header: VP8FrameHeader
        do {
            header = try VP8FrameHeader(data)
        } catch {
            framesRejected += 1
            if !needsKeyframe { needsKeyframe = true }
            throw error
        }
        if needsKeyframe && !header.isKeyframe {
            framesRejected += 1
            throw .waitingForKeyframe
        }
        let rc = data.withUnsafeBufferPointer { vpx_codec_decode(context, $0.baseAddress, UInt32($0.count), nil, 0) }
        guard rc == VPX_CODEC_OK else {
            framesRejected += 1
            needsKeyframe = true
            throw .corruptFrame(reason: VP8Error(rc, context: context).description)
        }
        var corrupted: Int32 = 0
        _ = mk_vpx_control_get_int(context, Int32(VP8D_GET_FRAME_CORRUPTED.rawValue), &corrupted)
        var iterator: vpx_codec_iter_t? = nil
        guard let image = vpx_codec_get_frame(context, &iterator) else {
            needsKeyframe = false
            return nil
        }
        // Drain: VP8 yields at most one picture per frame.
        while vpx_codec_get_frame(context, &iterator) != nil {}
        guard corrupted == 0 else {
            framesRejected += 1
            needsKeyframe = true
            throw .corruptFrame(reason: "libvpx marked the decoded picture corrupt")
        }
        needsKeyframe = false
        let picture = copy(image.pointee, timestamp: timestamp)
        framesDecoded += 1
        return picture
    }

    private func copy(_ img: vpx_image_t, timestamp: MediaTime) -> VideoFrame {
        var out = VideoFrame(width: Int(img.d_w), height: Int(img.d_h), timestamp: timestamp)
        let (cw, ch) = (out.chromaWidth, out.chromaHeight)
        let (w, h) = (out.width, out.height)
        out.withMutablePlanes { y, u, v in
            func rows(
                _ dst: UnsafeMutableBufferPointer<UInt8>, _ src: UnsafeMutablePointer<UInt8>?, _ srcStride: Int32,
                _ width: Int, _ height: Int
            ) {
                guard let src else { return }
                for row in 0..<height {
                    (dst.baseAddress! + row * width).update(from: src + row * Int(srcStride), count: width)
                }
            }
            rows(y, img.planes.0, img.stride.0, w, h)
            rows(u, img.planes.1, img.stride.1, cw, ch)
            rows(v, img.planes.2, img.stride.2, cw, ch)
        }
        return out
    }
}
