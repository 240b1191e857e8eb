import COpus

/// What went wrong in an Opus encoder or decoder.
public enum OpusError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A configuration value libopus does not accept (rate, channels, frame duration…).
    case invalidConfiguration(String)
    /// A frame whose size is not one Opus can encode: `samplesPerChannel` at `sampleRate`
    /// must be 2.5, 5, 10, 20, 40 or 60 ms, and its rate and channels must match the encoder.
    case invalidFrameSize(samplesPerChannel: Int, sampleRate: Int, channels: Int)
    /// The bytes are not a valid Opus packet (RFC 6716 §3.4).
    case invalidPacket(reason: String)
    /// libopus returned an error code.
    case library(code: Int32, message: String)

    init(code: Int32) {
        self = .library(code: code, message: String(cString: opus_strerror(code)))
    }

    public var description: String {
        switch self {
        case .invalidConfiguration(let what): "invalid Opus configuration: \(what)"
        case .invalidFrameSize(let n, let rate, let ch):
            "invalid Opus frame: \(n) samples per channel at \(rate) Hz, \(ch) channel(s)"
        case .invalidPacket(let reason): "invalid Opus packet: \(reason)"
        case .library(let code, let message): "libopus error \(code): \(message)"
        }
    }
}
