import Foundation
import NIOCore
import NIOPosix
import Signaling

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Why joining a Visio meeting by its link failed.
public enum VisioError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a meeting link (`https://HOST/<slug>`).
    case invalidLink(String)
    /// The room API answered with an error status (and its text).
    case api(status: Int, message: String)
    /// The room API's answer could not be read.
    case unexpectedAnswer(String)
    /// The room API could not be reached.
    case unreachable(String)
    /// A moderator refused entry from the lobby.
    case lobbyDenied
    /// Nobody admitted this participant from the lobby in time.
    case lobbyTimeout

    public var description: String {
        switch self {
        case .invalidLink(let link): "not a Visio meeting link: \(link)"
        case .api(let status, let message): "Visio's room API answered \(status): \(message)"
        case .unexpectedAnswer(let why): "unexpected answer from Visio's room API: \(why)"
        case .unreachable(let why): "Visio's room API is unreachable: \(why)"
        case .lobbyDenied: "entry refused from the lobby"
        case .lobbyTimeout: "nobody admitted this participant from the lobby in time"
        }
    }
}

/// Joining a Visio meeting (La Suite Numérique) by its link, as Visio's web client does:
/// the room API (`/api/v1.0/config/`, `/api/v1.0/rooms/<slug>/`) gives the LiveKit server
/// and a token; a room with a lobby makes the participant wait (`request-entry`, polled
/// every second with the `lobbyParticipantId` cookie) until a moderator admits it.
///
/// ```swift
/// let room = try await VisioRoom.join(link: "https://visio.numerique.gouv.fr/abc-defg-hij", displayName: "Scribe")
/// ```
public enum VisioRoom {
    /// Where a meeting link points: the site and the room's slug.
    public struct Link: Sendable, Hashable {
        /// `https://HOST` (or `http://` for a local emulation).
        public var site: String
        public var slug: String

        /// Parses `https://HOST/<slug>` (a trailing slash, query or fragment ignored).
        public init(_ link: String) throws(VisioError) {
            guard let url = URL(string: link.trimmingCharacters(in: .whitespaces)), let scheme = url.scheme,
                ["https", "http"].contains(scheme.lowercased()), let host = url.host, !host.isEmpty
            else { throw .invalidLink(link) }
            let parts = url.path.split(separator: "/")
            guard parts.count == 1, let slug = parts.first, slug.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" })
            else { throw .invalidLink(link) }
            site = "\(scheme.lowercased())://\(host)" + (url.port.map { ":\($0)" } ?? "")
            self.slug = String(slug)
        }
    }

    /// How the lobby is waited in.
    public struct LobbyOptions: Sendable {
        /// How long to wait for admission (Visio's client gives up after 10 minutes).
        public var timeout: Duration = .seconds(600)
        /// How often to ask (Visio's client: every second; an entry not asked for within a
        /// few seconds expires).
        public var pollInterval: Duration = .seconds(1)

        public init() {}
    }

    /// What the room API grants: where to connect and with which token, and the room it
    /// is about (for the room API's later calls, such as raising a hand).
    public struct Access: Sendable, Hashable {
        /// The LiveKit server's URL.
        public var url: String
        /// The LiveKit token (identity, display name, rights).
        public var token: String
        /// The site's API root, `https://HOST/api/v1.0`.
        public var api: String
        /// The room as the API names it: its id, or the slug of an unregistered room.
        public var room: String
    }

    /// The LiveKit server and token to join the meeting at `link` as `displayName`,
    /// waiting in the lobby when the room has one.
    /// - Throws: ``VisioError`` (``VisioError/lobbyDenied``, ``VisioError/lobbyTimeout`` …).
    public static func access(link: String, displayName: String, lobby: LobbyOptions = .init())
        async throws(VisioError) -> Access
    {
        let link = try Link(link)
        let api = link.site + "/api/v1.0"
        let config = try await request("GET", api + "/config/")
        let configured = (config.object["livekit"] as? [String: Any])?["url"] as? String
        let room = try await request("GET", api + "/rooms/\(link.slug)/?" + queryString([("username", displayName)]))
        let id = room.object["id"] as? String
        if let (url, token) = livekit(room.object, fallback: configured) {
            return Access(url: url, token: token, api: api, room: id ?? link.slug)
        }
        // A lobby: ask to enter until admitted, refused, or out of time.
        guard let id else { throw .unexpectedAnswer("a room without id nor access") }
        var cookie: String?
        let deadline = ContinuousClock.now + lobby.timeout
        while ContinuousClock.now < deadline {
            let answer = try await request(
                "POST", api + "/rooms/\(id)/request-entry/", body: ["username": displayName],
                cookie: cookie.map { "lobbyParticipantId=\($0)" })
            cookie = answer.cookies["lobbyParticipantId"] ?? cookie
            switch answer.object["status"] as? String {
            case "accepted":
                guard let (url, token) = livekit(answer.object, fallback: configured) else {
                    throw .unexpectedAnswer("accepted without access")
                }
                return Access(url: url, token: token, api: api, room: id)
            case "denied": throw .lobbyDenied
            case "waiting": break
            default: throw .unexpectedAnswer("lobby status \(answer.object["status"] ?? "none")")
            }
            try? await Task.sleep(for: lobby.pollInterval)
        }
        throw .lobbyTimeout
    }

    /// Joins the meeting at `link` as `displayName` (see ``access(link:displayName:lobby:)``).
    /// The room raises hands as Visio does (``Room/setHandRaised(_:)``: through the room
    /// API's `toggle-hand`, as Visio's tokens forbid changing one's own attributes).
    public static func join(
        link: String, displayName: String, options: RoomOptions = .init(), lobby: LobbyOptions = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Room {
        let access = try await access(link: link, displayName: displayName, lobby: lobby)
        var connect = LiveKitConnectOptions()
        connect.group = group
        let room = try await Room.join(
            signaling: LiveKitRoomSignaling(url: access.url, token: access.token, options: connect), room: "",
            displayName: displayName, options: options, group: group)
        room.visioAccess = access
        return room
    }

    /// Raises or lowers the hand of the token's participant through the room API
    /// (`POST rooms/<room>/toggle-hand/` with the LiveKit token).
    static func toggleHand(_ raised: Bool, access: Access, token: String) async throws(VisioError) {
        _ = try await request(
            "POST", access.api + "/rooms/\(access.room)/toggle-hand/", body: ["raised": raised],
            authorization: "Bearer " + token)
    }

    private static func livekit(_ object: [String: Any], fallback: String?) -> (url: String, token: String)? {
        guard let livekit = object["livekit"] as? [String: Any], let token = livekit["token"] as? String,
            let url = livekit["url"] as? String ?? fallback
        else { return nil }
        return (url, token)
    }

    /// One JSON request: the answer's object and cookies; an error status is an error.
    private static func request(
        _ method: String, _ address: String, body: [String: Any]? = nil, cookie: String? = nil,
        authorization: String? = nil
    ) async throws(VisioError) -> (object: [String: Any], cookies: [String: String]) {
        guard let url = URL(string: address) else { throw .invalidLink(address) }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 15
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try? JSONSerialization.data(withJSONObject: body)
        }
        if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await fetchUncancelled(request)
        } catch {
            throw .unreachable("\(error)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let text = String(decoding: data.prefix(2048), as: UTF8.self)
        guard (200..<300).contains(status) else { throw .api(status: status, message: text) }
        guard data.count <= 1 << 20, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .unexpectedAnswer(text)
        }
        var cookies: [String: String] = [:]
        if let header = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Set-Cookie") {
            for part in header.split(separator: ",") {
                let pair = part.split(separator: ";").first?.split(separator: "=", maxSplits: 1) ?? []
                if pair.count == 2 {
                    cookies[pair[0].trimmingCharacters(in: .whitespaces)] = String(pair[1])
                }
            }
        }
        return (object, cookies)
    }
}
