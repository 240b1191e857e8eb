import Foundation

/// Why connecting to a LiveKit room failed, or why the connection ended.
public enum LiveKitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The token was refused — invalid, expired, signed with another key, without the right
    /// to join this room (HTTP 401), with the server's reason.
    case unauthorized(String)
    /// The room does not exist and the server does not create rooms on join (HTTP 404).
    case roomNotFound(String)
    /// The room already has its maximum number of participants.
    case roomFull(String)
    /// Another refusal: the HTTP status and the server's text.
    case refused(status: Int, message: String)
    /// The server could not be reached, or refused the WebSocket without saying why.
    case unreachable(String)
    /// The server did not answer in time (joining, publishing, pings).
    case timedOut(String)
    /// The server sent something this client cannot use.
    case protocolViolation(String)
    /// The server refused a request this participant has no right to make, with its reason.
    case notAllowed(String)
    /// The server removed this participant (a LeaveRequest), with its reason.
    case removed(String)
    /// The connection is closed.
    case disconnected(String)

    /// The error an HTTP refusal of joining stands for (LiveKit's `/rtc/validate` answers).
    init(status: Int, message: String) {
        let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
        switch status {
        case 401, 403: self = .unauthorized(text)
        case 404: self = .roomNotFound(text)
        case 503 where text.contains("max participants") || text.contains("full"): self = .roomFull(text)
        default: self = .refused(status: status, message: text)
        }
    }

    /// Whether trying again cannot help: the token, the room or the server's decision.
    var isFinalRefusal: Bool {
        switch self {
        case .unauthorized, .roomNotFound, .roomFull, .notAllowed, .removed: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .unauthorized(let why): "unauthorized: \(why)"
        case .roomNotFound(let why): "room not found: \(why)"
        case .roomFull(let why): "room full: \(why)"
        case .refused(let status, let message): "refused (\(status)): \(message)"
        case .unreachable(let why): "server unreachable: \(why)"
        case .timedOut(let what): "timed out: \(what)"
        case .protocolViolation(let why): "protocol violation: \(why)"
        case .notAllowed(let why): "not allowed: \(why)"
        case .removed(let why): "removed by the server: \(why)"
        case .disconnected(let why): "disconnected: \(why)"
        }
    }
}
