/// Why a Janus request failed. Server and plugin errors carry Janus's own code and reason
/// (e.g. VideoRoom's 426 "No such room").
public enum JanusError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The Janus core refused the request (`{"janus":"error"}`), e.g. 458 no such session.
    case server(code: Int, reason: String)
    /// The plugin refused it (`error_code` / `error` in the plugin data).
    case plugin(code: Int, reason: String)
    /// No answer within the request timeout.
    case timeout(request: String)
    /// The connection to Janus ended (the reason given), or the session expired.
    case disconnected(String)
    /// The WebSocket could not be opened.
    case connection(SignalingConnectionError)
    /// Janus answered something this client cannot use.
    case unexpectedResponse(String)

    public var description: String {
        switch self {
        case .server(let code, let reason): "Janus error \(code): \(reason)"
        case .plugin(let code, let reason): "Janus plugin error \(code): \(reason)"
        case .timeout(let request): "Janus did not answer \(request) in time"
        case .disconnected(let why): "disconnected from Janus: \(why)"
        case .connection(let e): e.description
        case .unexpectedResponse(let what): "unexpected Janus response: \(what)"
        }
    }

    /// VideoRoom's code for a room that does not exist.
    public static let noSuchRoom = 426
    /// VideoRoom's code for a feed that does not exist (yet).
    public static let noSuchFeed = 428
}
