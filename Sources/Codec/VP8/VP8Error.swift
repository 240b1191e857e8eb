import CVPX

/// What went wrong in a VP8 encoder, decoder or frame header.
public enum VP8Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// A configuration value libvpx does not accept.
    case invalidConfiguration(String)
    /// The bytes are not a VP8 frame, or a truncated one (RFC 6386 §9.1).
    case invalidFrame(reason: String)
    /// The decoder found the frame corrupt, or decoding it would show corruption
    /// (a reference frame it depends on is missing). The frame is not shown.
    case corruptFrame(reason: String)
    /// An inter frame arrived while the decoder needs a keyframe (at the start, or after a
    /// loss or a corrupt frame). Request a keyframe (PLI/FIR) from the sender.
    case waitingForKeyframe
    /// libvpx returned an error.
    case library(code: Int32, message: String)

    init(_ code: vpx_codec_err_t, context: UnsafeMutablePointer<vpx_codec_ctx_t>?) {
        var message = String(cString: vpx_codec_err_to_string(code))
        if let context, let detail = vpx_codec_error_detail(context) {
            message += ": " + String(cString: detail)
        }
        self = .library(code: Int32(code.rawValue), message: message)
    }

    public var description: String {
        switch self {
        case .invalidConfiguration(let what): "invalid VP8 configuration: \(what)"
        case .invalidFrame(let reason): "invalid VP8 frame: \(reason)"
        case .corruptFrame(let reason): "corrupt VP8 frame: \(reason)"
        case .waitingForKeyframe: "VP8 decoder is waiting for a keyframe"
        case .library(let code, let message): "libvpx error \(code): \(message)"
        }
    }
}
