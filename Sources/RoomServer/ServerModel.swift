import Foundation
import LiveKitProtocol

/// A participant as the server keeps it (owned by the ``RoomDirectory`` actor).
final class Participant {
    let sid: String
    let identity: String
    let room: String
    var name: String
    var metadata: String
    var attributes: [String: String]
    let grant: VideoGrant
    let kind: Livekit_ParticipantInfo.Kind
    var state = Livekit_ParticipantInfo.State.joining
    /// Published tracks, in publication order.
    var tracks: [Livekit_TrackInfo] = []
    /// Tracks announced by AddTrackRequest whose media section is not negotiated yet, by cid.
    var pendingTracks: [String: Livekit_TrackInfo] = [:]
    let joinedAtMs: Int64
    var version: UInt32 = 1
    var clientProtocol: Int32 = 0
    /// What its client advertised (ClientInfo), mirrored to the others.
    var capabilities: [Livekit_ClientInfo.Capability] = []
    var autoSubscribe = true
    let singlePeerConnection: Bool
    /// The signalling session's outbox; nil while the WebSocket is gone (until resumed).
    var outbox: AsyncStream<Livekit_SignalResponse>.Continuation?
    /// The session the outbox belongs to (a resumed one replaces it).
    var session = 0
    var lastHeard = ContinuousClock.now
    /// When the WebSocket went away without a leave (nil while connected).
    var signalLostAt: ContinuousClock.Instant?
    var publisher: MediaConnectionID?
    var subscriber: MediaConnectionID?
    /// Whether it was last reported speaking (SpeakersChanged).
    var speaking = false
    /// The others' tracks it receives: track sid → the mid on its downlink connection.
    var subscriptions: [String: String] = [:]
    /// Track sids whose subscription is being set up (the directory is an actor: another
    /// request may come in while the media plane adds the section).
    var subscribing: Set<String> = []
    /// `/rtc/v1`: subscriptions waiting for a section the participant offers to receive on
    /// (asked for with MediaSectionsRequirement): track sid → the track and its publisher.
    var waitingSubscriptions: [String: (track: Livekit_TrackInfo, publisher: String)] = [:]
    /// The connection the server sends media and data to it on.
    var downlink: MediaConnectionID? { subscriber ?? publisher }
    /// Candidates trickled before the description they belong to, by target.
    var earlyCandidates: [Livekit_SignalTarget: [String]] = [:]
    var nextOfferID: UInt32 = 1
    /// A subscriber offer is out and not answered yet.
    var awaitingAnswer = false
    /// The subscriber connection needs another offer once the outstanding one is answered.
    var renegotiate = false

    init(
        sid: String, identity: String, room: String, claims: AccessTokenClaims, grant: VideoGrant,
        singlePeerConnection: Bool, now: Date
    ) {
        self.sid = sid
        self.identity = identity
        self.room = room
        name = claims.name ?? ""
        metadata = claims.metadata ?? ""
        attributes = claims.attributes ?? [:]
        self.grant = grant
        kind = claims.kind.flatMap(Self.kind(named:)) ?? .standard
        self.singlePeerConnection = singlePeerConnection
        joinedAtMs = Int64(now.timeIntervalSince1970 * 1000)
    }

    private static func kind(named name: String) -> Livekit_ParticipantInfo.Kind? {
        switch name {
        case "standard": .standard
        case "ingress": .ingress
        case "egress": .egress
        case "sip": .sip
        case "agent": .agent
        default: nil
        }
    }

    var canPublish: Bool { grant.canPublish ?? true }
    var canSubscribe: Bool { grant.canSubscribe ?? true }
    var canPublishData: Bool { grant.canPublishData ?? true }
    var canUpdateMetadata: Bool { grant.canUpdateOwnMetadata ?? false }
    var hidden: Bool { grant.hidden ?? false }

    /// The participant as LiveKit describes it to clients.
    var info: Livekit_ParticipantInfo {
        var p = Livekit_ParticipantInfo()
        p.sid = sid
        p.identity = identity
        p.name = name
        p.metadata = metadata
        p.attributes = attributes
        p.state = state
        p.tracks = tracks
        p.joinedAt = joinedAtMs / 1000
        p.joinedAtMs = joinedAtMs
        p.version = version
        p.kind = kind
        p.isPublisher = !tracks.isEmpty
        p.clientProtocol = clientProtocol
        p.capabilities = capabilities
        var permission = Livekit_ParticipantPermission()
        permission.canPublish = canPublish
        permission.canSubscribe = canSubscribe
        permission.canPublishData = canPublishData
        permission.canUpdateMetadata = canUpdateMetadata
        permission.hidden = hidden
        permission.canPublishSources = (grant.canPublishSources ?? []).compactMap(Self.source(named:))
        p.permission = permission
        return p
    }

    static func source(named name: String) -> Livekit_TrackSource? {
        switch name {
        case "camera": .camera
        case "microphone": .microphone
        case "screen_share": .screenShare
        case "screen_share_audio": .screenShareAudio
        default: nil
        }
    }

    /// Whether the grant lets it publish from `source`.
    func mayPublish(_ source: Livekit_TrackSource) -> Bool {
        guard canPublish else { return false }
        let allowed = (grant.canPublishSources ?? []).compactMap(Self.source(named:))
        return allowed.isEmpty || allowed.contains(source)
    }

    /// Queues a message for the participant; false when it could not be (no session, or
    /// a client so far behind that its outbox is full).
    @discardableResult
    func send(_ message: Livekit_SignalResponse.OneOf_Message) -> Bool {
        guard let outbox else { return false }
        var response = Livekit_SignalResponse()
        response.message = message
        if case .enqueued = outbox.yield(response) { return true }
        return false
    }
}

/// A room as the server keeps it.
final class Room {
    let sid: String
    let name: String
    var metadata = ""
    var maxParticipants: UInt32
    var emptyTimeout: UInt32
    let creationTimeMs: Int64
    /// Participants by sid, in join order.
    var participants: [Participant] = []
    /// When the last participant left (for the empty timeout).
    var emptySince: ContinuousClock.Instant?

    init(sid: String, name: String, maxParticipants: UInt32, emptyTimeout: UInt32, now: Date) {
        self.sid = sid
        self.name = name
        self.maxParticipants = maxParticipants
        self.emptyTimeout = emptyTimeout
        creationTimeMs = Int64(now.timeIntervalSince1970 * 1000)
    }

    func participant(sid: String) -> Participant? { participants.first { $0.sid == sid } }
    func participant(identity: String) -> Participant? { participants.first { $0.identity == identity } }

    /// The room as LiveKit describes it.
    var info: Livekit_Room {
        var r = Livekit_Room()
        r.sid = sid
        r.name = name
        r.metadata = metadata
        r.maxParticipants = maxParticipants
        r.emptyTimeout = emptyTimeout
        r.creationTime = creationTimeMs / 1000
        r.creationTimeMs = creationTimeMs
        r.numParticipants = UInt32(participants.filter { !$0.hidden }.count)
        r.numPublishers = UInt32(participants.filter { !$0.tracks.isEmpty }.count)
        r.enabledCodecs = Self.codecs
        return r
    }

    /// The codecs meet-server relays.
    static let codecs: [Livekit_Codec] = ["audio/opus", "video/VP8"].map { mime in
        var codec = Livekit_Codec()
        codec.mime = mime
        return codec
    }
}

/// LiveKit-style identifiers: a prefix and 12 random base-62 characters.
enum ServerID {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    static func make(_ prefix: String) -> String {
        prefix + String((0..<12).map { _ in alphabet.randomElement()! })
    }
}
