import Foundation
import JWTKit

/// What a LiveKit access token allows in rooms: the `video` claim of the token (field
/// names as LiveKit's token minters write them). A grant left out is nil and reads as
/// LiveKit reads it: publishing, subscribing and sending data default to allowed once
/// `roomJoin` is granted; updating one's own metadata, the room admin and list rights and
/// hiding default to denied.
public struct VideoGrant: Codable, Sendable, Equatable {
    /// May create rooms through the server API.
    public var roomCreate: Bool?
    /// May list rooms through the server API.
    public var roomList: Bool?
    /// May record rooms.
    public var roomRecord: Bool?
    /// May manage the participants of `room` through the server API.
    public var roomAdmin: Bool?
    /// May join `room`.
    public var roomJoin: Bool?
    /// The room the grant is for.
    public var room: String?
    /// May publish tracks.
    public var canPublish: Bool?
    /// May subscribe to the others' tracks.
    public var canSubscribe: Bool?
    /// May send data packets.
    public var canPublishData: Bool?
    /// The track sources it may publish (`camera`, `microphone`, `screen_share`,
    /// `screen_share_audio`); nil or empty: any.
    public var canPublishSources: [String]?
    /// May change its own name, metadata and attributes.
    public var canUpdateOwnMetadata: Bool?
    /// Invisible to the other participants.
    public var hidden: Bool?
    /// Joins as a recorder.
    public var recorder: Bool?
    /// Joins as an agent.
    public var agent: Bool?

    /// A grant with every right unset.
    public init(
        roomCreate: Bool? = nil, roomList: Bool? = nil, roomRecord: Bool? = nil, roomAdmin: Bool? = nil,
        roomJoin: Bool? = nil, room: String? = nil, canPublish: Bool? = nil, canSubscribe: Bool? = nil,
        canPublishData: Bool? = nil, canPublishSources: [String]? = nil, canUpdateOwnMetadata: Bool? = nil,
        hidden: Bool? = nil, recorder: Bool? = nil, agent: Bool? = nil
    ) {
        self.roomCreate = roomCreate
        self.roomList = roomList
        self.roomRecord = roomRecord
        self.roomAdmin = roomAdmin
        self.roomJoin = roomJoin
        self.room = room
        self.canPublish = canPublish
        self.canSubscribe = canSubscribe
        self.canPublishData = canPublishData
        self.canPublishSources = canPublishSources
        self.canUpdateOwnMetadata = canUpdateOwnMetadata
        self.hidden = hidden
        self.recorder = recorder
        self.agent = agent
    }

    /// A grant to join `room` with the default rights.
    public static func join(_ room: String) -> VideoGrant { VideoGrant(roomJoin: true, room: room) }
}

/// The claims of a LiveKit access token (a JWT signed with HS256 by the API secret whose
/// key is the issuer): who the participant is, what it may do, and for how long.
public struct AccessTokenClaims: JWTPayload, Equatable {
    /// The API key the token was signed for (`iss`).
    public var issuer: String?
    /// The participant's identity (`sub`).
    public var identity: String?
    /// Expiry (`exp`, required).
    public var expires: Date?
    /// Not valid before (`nbf`).
    public var notBefore: Date?
    /// The display name.
    public var name: String?
    /// Application metadata of the participant.
    public var metadata: String?
    /// Participant attributes set at join.
    public var attributes: [String: String]?
    /// Room rights.
    public var video: VideoGrant?
    /// The participant kind (`standard`, `agent`, …).
    public var kind: String?

    enum CodingKeys: String, CodingKey {
        case issuer = "iss", identity = "sub", expires = "exp", notBefore = "nbf"
        case name, metadata, attributes, video, kind
    }

    /// Claims for `identity` with `grant`, valid for `validFor` from `now`.
    public init(
        identity: String, name: String? = nil, metadata: String? = nil, attributes: [String: String]? = nil,
        grant: VideoGrant, validFor: Duration = .seconds(6 * 3600), now: Date = Date()
    ) {
        self.identity = identity
        self.name = name
        self.metadata = metadata
        self.attributes = attributes
        self.video = grant
        notBefore = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        expires = Date(
            timeIntervalSince1970: (now.timeIntervalSince1970 + Double(validFor.components.seconds)).rounded(.down))
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        issuer = try c.decodeIfPresent(String.self, forKey: .issuer)
        identity = try c.decodeIfPresent(String.self, forKey: .identity)
        expires = try c.decodeIfPresent(Double.self, forKey: .expires).map(Date.init(timeIntervalSince1970:))
        notBefore = try c.decodeIfPresent(Double.self, forKey: .notBefore).map(Date.init(timeIntervalSince1970:))
        name = try c.decodeIfPresent(String.self, forKey: .name)
        metadata = try c.decodeIfPresent(String.self, forKey: .metadata)
        attributes = try c.decodeIfPresent([String: String].self, forKey: .attributes)
        video = try c.decodeIfPresent(VideoGrant.self, forKey: .video)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(issuer, forKey: .issuer)
        try c.encodeIfPresent(identity, forKey: .identity)
        try c.encodeIfPresent(expires.map { Int64($0.timeIntervalSince1970) }, forKey: .expires)
        try c.encodeIfPresent(notBefore.map { Int64($0.timeIntervalSince1970) }, forKey: .notBefore)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encodeIfPresent(metadata, forKey: .metadata)
        try c.encodeIfPresent(attributes, forKey: .attributes)
        try c.encodeIfPresent(video, forKey: .video)
        try c.encodeIfPresent(kind, forKey: .kind)
    }

    /// Time checks are done by ``AccessTokenKeys/verify(_:now:)`` (with its leeway).
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Why a token was refused.
public enum AccessTokenError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a JWT, or its claims do not decode.
    case malformed(String)
    /// Signed for an API key this server does not have (or no `iss`).
    case unknownKey(String)
    /// The signature does not match the key's secret, or the algorithm is not HS256.
    case badSignature
    /// No `exp`, or it is past.
    case expired
    /// `nbf` is in the future.
    case notYetValid

    public var description: String {
        switch self {
        case .malformed(let why): "invalid token: \(why)"
        case .unknownKey(let key): "invalid token: unknown API key \"\(key)\""
        case .badSignature: "invalid token: signature is invalid"
        case .expired: "invalid token: token is expired (exp)"
        case .notYetValid: "invalid token: token is not valid yet (nbf)"
        }
    }
}

/// The API keys and secrets a server accepts tokens from, and mints them with.
///
/// ```swift
/// let keys = AccessTokenKeys(["devkey": "secret"])
/// let token = try await keys.sign(AccessTokenClaims(identity: "bot", grant: .join("r")), key: "devkey")
/// let claims = try await keys.verify(token)
/// ```
public struct AccessTokenKeys: Sendable {
    /// How far `exp` and `nbf` may be off (LiveKit's server allows a minute of clock skew).
    public var leeway: Duration = .seconds(60)
    private let secrets: [String: String]

    /// Keys from API key to secret.
    public init(_ secrets: [String: String]) { self.secrets = secrets }

    /// Whether tokens signed for `key` are accepted.
    public func has(key: String) -> Bool { secrets[key] != nil }

    /// The key collection holding the secret of `key` alone: a token is checked against
    /// the secret its issuer names, never against another.
    private func collection(for key: String) async -> JWTKeyCollection? {
        guard let secret = secrets[key] else { return nil }
        // HMAC pads a key shorter than its 64-byte block with zeros (RFC 2104 §2), so a
        // short secret (LiveKit's development one is "secret") padded to the 32 bytes
        // jwt-kit insists on signs and verifies exactly as the secret itself.
        var bytes = Array(secret.utf8)
        if bytes.count < 32 { bytes += [UInt8](repeating: 0, count: 32 - bytes.count) }
        return await JWTKeyCollection().add(hmac: HMACKey(from: bytes), digestAlgorithm: .sha256)
    }

    /// Signs `claims` with the secret of `key` (which becomes the issuer).
    public func sign(_ claims: AccessTokenClaims, key: String) async throws -> String {
        guard let c = await collection(for: key) else { throw AccessTokenError.unknownKey(key) }
        var claims = claims
        claims.issuer = key
        return try await c.sign(claims)
    }

    /// The claims of `token` once its signature, issuer and times are checked.
    public func verify(_ token: String, now: Date = Date()) async throws(AccessTokenError) -> AccessTokenClaims {
        let unverified: AccessTokenClaims
        do {
            unverified = try await JWTKeyCollection().unverified(token, as: AccessTokenClaims.self)
        } catch {
            throw .malformed(String(describing: error))
        }
        guard let key = unverified.issuer, let c = await collection(for: key) else {
            throw .unknownKey(unverified.issuer ?? "")
        }
        let claims: AccessTokenClaims
        do {
            claims = try await c.verify(token, as: AccessTokenClaims.self)
        } catch {
            throw .badSignature
        }
        let skew = Double(leeway.components.seconds)
        guard let exp = claims.expires, now.timeIntervalSince(exp) < skew else { throw .expired }
        if let nbf = claims.notBefore, nbf.timeIntervalSince(now) > skew { throw .notYetValid }
        return claims
    }
}
