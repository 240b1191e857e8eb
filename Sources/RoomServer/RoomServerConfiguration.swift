import Foundation

/// Settings of a ``RoomServer``.
public struct RoomServerConfiguration: Sendable {
    /// API keys and their secrets: tokens must be signed by one of them.
    public var keys: [String: String]
    /// The address HTTP, WebSocket and media are bound to (loopback by default).
    public var bindAddress = "127.0.0.1"
    /// The HTTP and WebSocket port (LiveKit's is 7880); 0 picks a free one.
    public var port = 7880
    /// The UDP port all media shares (LiveKit's single-port mode uses 7882); 0 picks one.
    public var udpPort = 7882
    /// The address written in ICE candidates, when clients must reach the server at
    /// another address than the bound one (e.g. bound to 0.0.0.0).
    public var advertisedAddress: String?
    /// Whether `/rtc/v1` (one PeerConnection per participant) is served; when not, it
    /// answers 404 and clients fall back to `/rtc`.
    public var singlePeerConnection = true
    /// How often clients ping, and how long the server waits for a message before it
    /// drops a silent participant.
    public var pingInterval: Duration = .seconds(5)
    public var pingTimeout: Duration = .seconds(15)
    /// How long a participant whose WebSocket dropped may resume (`reconnect=1`) before it
    /// is removed.
    public var resumeWindow: Duration = .seconds(20)
    /// The participant limit of rooms created by joining (0: none).
    public var maxParticipants: UInt32 = 0
    /// Seconds an empty room is kept.
    public var emptyTimeout: UInt32 = 300
    /// Whether an emulation of Visio's room API is served (`/api/v1.0/…`: the Visio link
    /// flow, lobby included), and the room slugs that make guests wait in the lobby.
    public var visioAPI = false
    public var visioLobbyRooms: Set<String> = []
    /// The largest signalling message accepted (a larger frame closes the connection).
    public var maxSignalMessageSize = 1 << 20
    /// The version reported to clients.
    public var serverVersion = "1.9.11"

    /// A configuration accepting tokens from `keys`.
    public init(keys: [String: String]) { self.keys = keys }

    /// The development configuration: key `devkey`, secret `secret` (LiveKit's `--dev`).
    public static var development: RoomServerConfiguration { RoomServerConfiguration(keys: ["devkey": "secret"]) }
}

/// Why a join was refused, as LiveKit gives it: an HTTP status and a message (the body of
/// the refused WebSocket upgrade and of `/rtc/validate`).
public struct JoinRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status (401 bad token or rights, 400 bad request, 404 …, 503 room full).
    public var status: Int
    /// LiveKit's message.
    public var message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status): \(message)" }
}
