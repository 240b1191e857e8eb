import MeetKitNet

/// Why an SDP could not be parsed or used. Parse errors name the offending line.
public enum SDPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Line `line` (1-based) is malformed.
    case syntax(line: Int, text: String, reason: String)
    /// A required line is absent (e.g. "v=", "o=", "s=", "t=").
    case missingLine(String)
    /// A candidate attribute is malformed.
    case invalidCandidate(String, reason: String)
    /// The description is well-formed but unusable (no fingerprint, no ICE credentials…).
    case unusable(String)

    public var description: String {
        switch self {
        case .syntax(let line, let text, let reason): "SDP line \(line) \"\(text.prefix(80))\": \(reason)"
        case .missingLine(let type): "SDP has no \(type) line"
        case .invalidCandidate(let text, let reason): "invalid candidate \"\(text.prefix(80))\": \(reason)"
        case .unusable(let why): "unusable SDP: \(why)"
        }
    }
}
