import Foundation
import HTTPTypes
import Hummingbird
import LiveKitProtocol
import NIOCore

/// An emulation of Visio's room API (La Suite Numérique's backend, `/api/v1.0/…`) — built
/// from the field names in Visio's public source, for trying and testing the Visio link
/// flow against meet-server. It is not Visio's backend: no accounts, no administrators'
/// rights (anyone may admit from the lobby), rooms public unless configured with a lobby.
///
/// - `GET /api/v1.0/config/`: `livekit.url`.
/// - `GET /api/v1.0/rooms/<slug>/?username=`: the room, with `livekit` {url, room, token}
///   when it lets the user in directly; a lobby room answers without it.
/// - `POST /api/v1.0/rooms/<id>/request-entry/` `{"username"}`, with the
///   `lobbyParticipantId` cookie it sets: `{status: waiting|accepted|denied, …, livekit}`.
/// - `GET /api/v1.0/rooms/<id>/waiting-participants/` and `POST /api/v1.0/rooms/<id>/enter/`
///   `{"participant_id", "allow_entry"}`: what a Visio administrator's client calls.
/// - `POST /api/v1.0/rooms/<id or slug>/toggle-hand/` `{"raised"}` with
///   `Authorization: Bearer <LiveKit token>`: sets the caller's `handRaisedAt` attribute
///   (now, or empty) — how Visio raises hands for tokens that may not change attributes.
actor VisioAPIEmulation {
    /// A room behind a lobby (the others need no record).
    struct RoomRecord {
        let id: String
        let slug: String
    }

    struct Waiting {
        var username: String
        var status: String  // waiting | accepted | denied
    }

    private let keys: AccessTokenKeys
    private let key: String
    private let directory: RoomDirectory
    private var rooms: [String: RoomRecord] = [:]  // by slug
    private var waiting: [String: [String: Waiting]] = [:]  // room id → participant id →

    init(keys: [String: String], lobbyRooms: Set<String>, directory: RoomDirectory) {
        self.keys = AccessTokenKeys(keys)
        self.directory = directory
        key = keys.keys.sorted().first ?? ""
        for slug in lobbyRooms { rooms[slug] = RoomRecord(id: UUID().uuidString.lowercased(), slug: slug) }
    }

    /// The LiveKit URL of the server a request reached (`ws://` + its Host).
    nonisolated static func livekitURL(_ request: Request) -> String {
        "ws://" + (request.head.authority ?? "127.0.0.1:7880")
    }

    /// A token for a guest (a fresh identity, the display name given) in LiveKit room `room`.
    private func token(room: String, username: String) async throws -> String {
        let claims = AccessTokenClaims(
            identity: UUID().uuidString.lowercased(), name: username,
            attributes: ["is_authenticated": "false", "room_role": "member", "color": "hsl(210, 60%, 45%)"],
            grant: VideoGrant(roomJoin: true, room: room, canPublish: true, canSubscribe: true, canPublishData: true))
        return try await keys.sign(claims, key: key)
    }

    private func livekit(_ url: String, room: String, username: String) async throws -> [String: Any] {
        ["url": url, "room": room, "token": try await token(room: room, username: username)]
    }

    func room(slug: String, username: String, url: String) async throws -> Data {
        guard let record = rooms[slug] else {
            // An unregistered slug: Visio lets anyone in (the LiveKit room is the slug).
            return Self.encode([
                "id": NSNull(), "slug": slug, "name": slug, "access_level": "public", "is_administrable": false,
                "livekit": try await livekit(url, room: slug, username: username),
            ])
        }
        return Self.encode(["id": record.id, "slug": record.slug, "name": record.slug, "access_level": "restricted"])
    }

    /// A poll of the lobby: the participant (by its cookie) and its status; the LiveKit
    /// access once admitted.
    func requestEntry(roomID: String, participantID: String?, username: String, url: String) async throws
        -> (participantID: String, body: Data)?
    {
        guard let record = rooms.values.first(where: { $0.id == roomID }) else { return nil }
        let id = participantID.flatMap { waiting[roomID]?[$0] != nil ? $0 : nil } ?? UUID().uuidString.lowercased()
        var entry = waiting[roomID]?[id] ?? Waiting(username: username, status: "waiting")
        entry.username = username
        waiting[roomID, default: [:]][id] = entry
        var body: [String: Any] = ["id": id, "username": username, "status": entry.status]
        if entry.status == "accepted" { body["livekit"] = try await livekit(url, room: record.id, username: username) }
        return (id, Self.encode(body))
    }

    func waitingParticipants(roomID: String) -> Data? {
        guard rooms.values.contains(where: { $0.id == roomID }) else { return nil }
        let list = (waiting[roomID] ?? [:]).filter { $0.value.status == "waiting" }.map {
            ["id": $0.key, "username": $0.value.username, "status": $0.value.status]
        }
        return Self.encode(["participants": list])
    }

    func enter(roomID: String, participantID: String, allow: Bool) -> Bool {
        guard waiting[roomID]?[participantID] != nil else { return false }
        waiting[roomID]?[participantID]?.status = allow ? "accepted" : "denied"
        return true
    }

    /// Why a toggle-hand call failed: its HTTP status and text.
    struct Refusal: Error {
        var status: HTTPResponse.Status
        var detail: String
    }

    /// Raises or lowers the hand of the token's participant in the room `pk` (its id, or
    /// the slug of an unregistered room) names.
    func toggleHand(pk: String, authorization: String?, raised: Bool) async throws(Refusal) {
        guard let authorization, authorization.hasPrefix("Bearer ") else {
            throw Refusal(status: .unauthorized, detail: "Authentication credentials were not provided.")
        }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(String(authorization.dropFirst("Bearer ".count)))
        } catch {
            throw Refusal(status: .unauthorized, detail: "Invalid token.")
        }
        let meeting = rooms[pk]?.id ?? pk
        guard let identity = claims.identity, let granted = claims.video?.room, granted == meeting else {
            throw Refusal(status: .forbidden, detail: "You do not have permission to perform this action.")
        }
        var update = Livekit_UpdateParticipantRequest()
        update.room = meeting
        update.identity = identity
        update.attributes = ["handRaisedAt": raised ? ISO8601DateFormatter().string(from: Date()) : ""]
        do {
            _ = try await directory.updateParticipant(update)
        } catch {
            throw Refusal(status: .notFound, detail: "Participant not found")
        }
    }

    // MARK: routes

    nonisolated func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/api/v1.0/config/") { request, _ -> Response in
            Self.json(
                .ok, ["livekit": ["url": Self.livekitURL(request)], "frontend": ["is_silent_login_enabled": false]])
        }
        router.get("/api/v1.0/rooms/:id/") { request, context -> Response in
            let slug = context.parameters.get("id") ?? ""  // a slug (Visio takes an id too)
            let username = request.uri.queryParameters["username"].map(String.init) ?? ""
            do {
                return Self.json(
                    .ok, data: try await self.room(slug: slug, username: username, url: Self.livekitURL(request)))
            } catch {
                return Self.json(.internalServerError, ["detail": "\(error)"])
            }
        }
        router.post("/api/v1.0/rooms/:id/request-entry/") { request, context -> Response in
            let roomID = context.parameters.get("id") ?? ""
            let username = await Self.fields(of: request)?["username"] as? String ?? ""
            let cookie = Self.cookie("lobbyParticipantId", in: request.headers[.cookie])
            do {
                guard
                    let (id, answer) = try await self.requestEntry(
                        roomID: roomID, participantID: cookie, username: username, url: Self.livekitURL(request))
                else { return Self.json(.notFound, ["detail": "No Room matches the given query."]) }
                var response = Self.json(.ok, data: answer)
                response.headers[.setCookie] = "lobbyParticipantId=\(id); Path=/; HttpOnly"
                return response
            } catch {
                return Self.json(.internalServerError, ["detail": "\(error)"])
            }
        }
        router.get("/api/v1.0/rooms/:id/waiting-participants/") { _, context -> Response in
            guard let list = await self.waitingParticipants(roomID: context.parameters.get("id") ?? "") else {
                return Self.json(.notFound, ["detail": "No Room matches the given query."])
            }
            return Self.json(.ok, data: list)
        }
        router.post("/api/v1.0/rooms/:id/toggle-hand/") { request, context -> Response in
            guard let raised = await Self.fields(of: request)?["raised"] as? Bool else {
                return Self.json(.badRequest, ["raised": ["This field is required."]])
            }
            do {
                try await self.toggleHand(
                    pk: context.parameters.get("id") ?? "", authorization: request.headers[.authorization],
                    raised: raised)
                return Self.json(.ok, ["status": "success"])
            } catch let refusal as Refusal {
                return Self.json(refusal.status, ["detail": refusal.detail])
            } catch {
                return Self.json(.internalServerError, ["detail": "\(error)"])
            }
        }
        router.post("/api/v1.0/rooms/:id/enter/") { request, context -> Response in
            let fields = await Self.fields(of: request)
            guard let participant = fields?["participant_id"] as? String, let allow = fields?["allow_entry"] as? Bool,
                await self.enter(roomID: context.parameters.get("id") ?? "", participantID: participant, allow: allow)
            else { return Self.json(.badRequest, ["detail": "participant not waiting"]) }
            return Self.json(.ok, ["message": "Participant was updated."])
        }
    }

    /// The JSON object a request's body holds (64 KiB at most), if any.
    nonisolated static func fields(of request: Request) async -> [String: Any]? {
        guard let body = try? await request.body.collect(upTo: 64 * 1024) else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
    }

    nonisolated static func cookie(_ name: String, in header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] == name { return String(pair[1]) }
        }
        return nil
    }

    nonisolated static func encode(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    nonisolated static func json(_ status: HTTPResponse.Status, _ object: Any) -> Response {
        json(status, data: encode(object))
    }

    nonisolated static func json(_ status: HTTPResponse.Status, data: Data) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
