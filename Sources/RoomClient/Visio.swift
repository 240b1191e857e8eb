import Foundation
import Signaling

/// A chat message, as Visio's web client sends and shows it.
public struct ChatMessage: Sendable, Hashable {
    /// Its id (the text stream's): the same sender and id again is an edit.
    public var id: String
    /// The sender's id in the room.
    public var participantID: String?
    /// The sender's identity.
    public var identity: String
    /// The text.
    public var text: String
    /// When it was sent (the legacy packet's timestamp), if known.
    public var timestamp: Date?
    /// Whether it replaces an earlier message with the same id from the same sender.
    public var isEdit: Bool

    public init(
        id: String, participantID: String?, identity: String, text: String, timestamp: Date? = nil,
        isEdit: Bool = false
    ) {
        self.id = id
        self.participantID = participantID
        self.identity = identity
        self.text = text
        self.timestamp = timestamp
        self.isEdit = isEdit
    }
}

/// The reactions Visio's client shows (it ignores others).
public enum Reaction: String, Sendable, CaseIterable {
    case thumbsUp = "thumbs-up"
    case thumbsDown = "thumbs-down"
    case clappingHands = "clapping-hands"
    case redHeart = "red-heart"
    case faceWithTearsOfJoy = "face-with-tears-of-joy"
    case faceWithOpenMouth = "face-with-open-mouth"
    case partyPopper = "party-popper"
    case foldedHands = "folded-hands"
}

/// A Visio meeting's recording or transcription, as its room metadata says
/// (`recording_mode`, `recording_status`).
public struct VisioRecording: Sendable, Hashable {
    /// `transcript` or `screen_recording`.
    public var mode: String
    /// `starting`, `started`, `saving`, `aborted`, …
    public var status: String

    /// Reads the room metadata's JSON; nil when it says nothing of a recording.
    public init?(metadata: String) {
        guard metadata.utf8.count <= 1 << 16,
            let object = try? JSONSerialization.jsonObject(with: Data(metadata.utf8)) as? [String: Any],
            let status = object["recording_status"] as? String
        else { return nil }
        self.mode = object["recording_mode"] as? String ?? ""
        self.status = status
    }

    /// Whether something is being recorded or transcribed now.
    public var isActive: Bool { status == "starting" || status == "started" }
}

/// A participant with key-value attributes: ``ParticipantInfo``, ``RemoteParticipant``,
/// ``LocalParticipant`` — and Visio's badges read from them.
public protocol ParticipantAttributed {
    /// Key-value attributes (LiveKit; Visio: `handRaisedAt`, `color`, `room_role`, …).
    var attributes: [String: String] { get }
}

extension ParticipantInfo: ParticipantAttributed {}

extension ParticipantAttributed {
    /// The colour Visio gives the participant (`color` attribute, e.g. `hsl(…)`).
    public var visioColor: String? { attributes["color"] }
    /// The participant's role in the Visio room (`room_role`: member, administrator, owner).
    public var visioRole: String? { attributes["room_role"] }
    /// Whether Visio knows the participant as a signed-in user (`is_authenticated`).
    public var isAuthenticated: Bool { attributes["is_authenticated"] == "true" }
    /// When the participant raised its hand (`handRaisedAt`), if it has.
    public var handRaisedAt: Date? { VisioConventions.date(attributes[VisioConventions.handRaisedAt]) }
}

/// Visio's in-meeting conventions on LiveKit (La Suite Numérique's web client): chat sent
/// twice — a text stream on `lk.chat` and a legacy user packet on `lk-chat-topic` — and
/// received from either, once; reactions as user packets; raised hands as the
/// `handRaisedAt` attribute.
enum VisioConventions {
    static let chatTopic = "lk.chat"
    static let legacyChatTopic = "lk-chat-topic"
    static let handRaisedAt = "handRaisedAt"
    /// Visio's client sends at most this many reactions a second.
    static let reactionsPerSecond = 10

    /// The legacy chat packet: `{"id","timestamp","message","ignoreLegacy"}`, and
    /// `editTimestamp` for an edit.
    struct LegacyChat: Codable {
        var id: String
        var timestamp: Double?
        var message: String
        var ignoreLegacy: Bool?
        var editTimestamp: Double?
    }

    /// A reaction packet: `{"type":"reactionReceived","data":{"emoji":…}}`.
    struct ReactionPacket: Codable {
        struct Payload: Codable { var emoji: String }
        var type: String
        var data: Payload?
    }

    /// Whether receivers should ignore the legacy chat packet (they read the text stream):
    /// Visio's client says so to servers newer than LiveKit 1.8.2.
    static func ignoresLegacy(serverVersion: String?) -> Bool {
        guard let serverVersion else { return false }
        let parts = serverVersion.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        return [1, 8, 2].lexicographicallyPrecedes(parts)
    }

    static func legacyChat(id: String, text: String, at date: Date, editedAt: Date? = nil, ignoreLegacy: Bool)
        -> [UInt8]
    {
        let packet = LegacyChat(
            id: id, timestamp: (date.timeIntervalSince1970 * 1000).rounded(), message: text, ignoreLegacy: ignoreLegacy,
            editTimestamp: editedAt.map { ($0.timeIntervalSince1970 * 1000).rounded() })
        return Array((try? JSONEncoder().encode(packet)) ?? Data())
    }

    static func decodeLegacyChat(_ payload: [UInt8]) -> LegacyChat? {
        guard payload.count <= 1 << 20 else { return nil }
        return try? JSONDecoder().decode(LegacyChat.self, from: Data(payload))
    }

    static func reaction(_ reaction: Reaction) -> [UInt8] {
        Array(
            (try? JSONEncoder().encode(ReactionPacket(type: "reactionReceived", data: .init(emoji: reaction.rawValue))))
                ?? Data())
    }

    static func decodeReaction(_ payload: [UInt8]) -> Reaction? {
        guard payload.count <= 4096, let packet = try? JSONDecoder().decode(ReactionPacket.self, from: Data(payload)),
            packet.type == "reactionReceived", let emoji = packet.data?.emoji
        else { return nil }
        return Reaction(rawValue: emoji)
    }

    /// `handRaisedAt` as Visio's client writes it (JavaScript's `toISOString()`).
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func date(_ text: String?) -> Date? {
        guard let text, !text.isEmpty else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
