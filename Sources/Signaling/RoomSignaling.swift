import MeetKitSDP

/// Where a track's media comes from.
public enum TrackSource: String, Sendable, Hashable {
    case microphone, camera, screen, unknown
}

/// A track a participant publishes, as the server announces it.
public struct TrackInfo: Sendable, Hashable {
    /// The track's id within its participant (Janus: the publisher's mid; LiveKit: the track sid).
    public var id: String
    /// Audio or video.
    public var kind: MediaKind
    /// Microphone, camera or screen.
    public var source: TrackSource
    /// Whether the publisher has muted it.
    public var muted: Bool

    public init(id: String, kind: MediaKind, source: TrackSource, muted: Bool = false) {
        self.id = id
        self.kind = kind
        self.source = source
        self.muted = muted
    }
}

/// A participant of a room.
public struct ParticipantInfo: Sendable, Hashable {
    /// The server's id for the participant.
    public var id: String
    /// Display name (or identity).
    public var name: String
    /// What it publishes now.
    public var tracks: [TrackInfo]
    /// Its identity (LiveKit: the token's subject, stable across reconnections; Janus, which
    /// has none: its participant id).
    public var identity: String
    /// Application metadata (LiveKit), often JSON.
    public var metadata: String
    /// Key-value attributes (LiveKit; Visio: `handRaisedAt`, `color`, `room_role`, …).
    public var attributes: [String: String]

    public init(
        id: String, name: String, tracks: [TrackInfo] = [], identity: String? = nil, metadata: String = "",
        attributes: [String: String] = [:]
    ) {
        self.id = id
        self.name = name
        self.tracks = tracks
        self.identity = identity ?? name
        self.metadata = metadata
        self.attributes = attributes
    }
}

/// A local m-line offered for publishing, with what it carries.
public struct PublishedTrack: Sendable, Hashable {
    /// Its mid in the publisher offer.
    public var mid: String
    /// Audio or video.
    public var kind: MediaKind
    /// Microphone, camera or screen.
    public var source: TrackSource

    public init(mid: String, kind: MediaKind, source: TrackSource) {
        self.mid = mid
        self.kind = kind
        self.source = source
    }
}

/// Which remote track an m-line of the subscriber connection carries.
public struct SubscribedTrack: Sendable, Hashable {
    /// The mid in the subscriber connection.
    public var mid: String
    /// The participant that publishes it.
    public var participantID: String
    /// The track's id within that participant.
    public var trackID: String
    /// Audio or video.
    public var kind: MediaKind

    public init(mid: String, participantID: String, trackID: String, kind: MediaKind) {
        self.mid = mid
        self.participantID = participantID
        self.trackID = trackID
        self.kind = kind
    }
}

/// A data channel a server wants on the publisher connection from the start (LiveKit:
/// `_reliable`, ordered; `_lossy`, unordered without retransmissions).
public struct DataChannelRequest: Sendable, Hashable {
    /// The channel's label.
    public var label: String
    /// Whether messages arrive in order.
    public var ordered: Bool
    /// How often a message is retransmitted at most (nil: reliable).
    public var maxRetransmits: Int?

    public init(label: String, ordered: Bool = true, maxRetransmits: Int? = nil) {
        self.label = label
        self.ordered = ordered
        self.maxRetransmits = maxRetransmits
    }
}

/// Bytes a participant sent to the room (LiveKit: a user packet).
public struct RoomData: Sendable, Hashable {
    /// The sender's id (nil when the server sent it).
    public var participantID: String?
    /// The sender's identity, as the server stamped it.
    public var identity: String
    /// The application's topic, if any.
    public var topic: String?
    /// The bytes.
    public var payload: [UInt8]
    /// Whether it came on the reliable channel.
    public var reliable: Bool

    public init(participantID: String?, identity: String, topic: String?, payload: [UInt8], reliable: Bool) {
        self.participantID = participantID
        self.identity = identity
        self.topic = topic
        self.payload = payload
        self.reliable = reliable
    }
}

/// Text a participant sent as a text stream (LiveKit's `send_text`: chat on `lk.chat`,
/// transcriptions on `lk.transcription`), whole.
public struct RoomText: Sendable, Hashable {
    /// The sender's id (nil when the server sent it).
    public var participantID: String?
    /// The sender's identity.
    public var identity: String
    /// The stream's topic.
    public var topic: String
    /// The text.
    public var text: String
    /// The stream's id (a chat message's id: the same id again is an edit).
    public var id: String
    /// The stream's attributes.
    public var attributes: [String: String]

    public init(
        participantID: String?, identity: String, topic: String, text: String, id: String,
        attributes: [String: String] = [:]
    ) {
        self.participantID = participantID
        self.identity = identity
        self.topic = topic
        self.text = text
        self.id = id
        self.attributes = attributes
    }
}

/// How well a participant's media gets through, as the server judges it (LiveKit's
/// ConnectionQuality, from the loss it sees).
public enum ConnectionQuality: String, Sendable, Hashable, CaseIterable {
    case excellent, good, poor
    /// Its connection is gone for now (reconnecting, or dropped).
    case lost
}

/// Bytes a participant sent as a byte stream (LiveKit's `send_bytes` / `send_file`), whole.
public struct RoomBytes: Sendable, Hashable {
    /// The sender's id (nil when the server sent it).
    public var participantID: String?
    /// The sender's identity.
    public var identity: String
    /// The stream's topic.
    public var topic: String
    /// The name the sender gave it (a file name).
    public var name: String
    /// Its MIME type.
    public var mimeType: String
    /// The bytes.
    public var bytes: [UInt8]
    /// The stream's id.
    public var id: String
    /// The stream's attributes.
    public var attributes: [String: String]

    public init(
        participantID: String?, identity: String, topic: String, name: String, mimeType: String, bytes: [UInt8],
        id: String, attributes: [String: String] = [:]
    ) {
        self.participantID = participantID
        self.identity = identity
        self.topic = topic
        self.name = name
        self.mimeType = mimeType
        self.bytes = bytes
        self.id = id
        self.attributes = attributes
    }
}

/// The quality asked of a remote video track a publisher sends in several layers
/// (simulcast): the server forwards the matching layer.
public enum VideoQuality: String, Sendable, Hashable, CaseIterable {
    case low, medium, high
    /// Nothing: the track is paused.
    case off
}

/// Live subtitles: a transcription agent's segments of one participant's speech
/// (LiveKit's Transcription packet, which Visio's interface shows).
public struct RoomTranscription: Sendable, Hashable {
    /// One stretch of transcribed speech; interim versions come before the final one.
    public struct Segment: Sendable, Hashable {
        public var id: String
        public var text: String
        /// Start and end in the track's time, in milliseconds.
        public var start: UInt64
        public var end: UInt64
        /// Whether this is the segment's last version.
        public var isFinal: Bool
        public var language: String

        public init(id: String, text: String, start: UInt64, end: UInt64, isFinal: Bool, language: String) {
            self.id = id
            self.text = text
            self.start = start
            self.end = end
            self.isFinal = isFinal
            self.language = language
        }
    }

    /// The identity of the participant whose speech it is.
    public var speakerIdentity: String
    /// The transcribed track.
    public var trackID: String
    public var segments: [Segment]

    public init(speakerIdentity: String, trackID: String, segments: [Segment]) {
        self.speakerIdentity = speakerIdentity
        self.trackID = trackID
        self.segments = segments
    }
}

/// Why a room operation is not possible with this server's protocol.
public enum RoomSignalingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server's protocol has no such thing (data on Janus VideoRoom, …).
    case unsupported(String)
    /// The data channels are not open (yet, or any more).
    case dataChannelUnavailable(String)

    public var description: String {
        switch self {
        case .unsupported(let what): "not supported by this server: \(what)"
        case .dataChannelUnavailable(let label): "data channel \(label) is not open"
        }
    }
}

/// What joining told this client.
public struct RoomJoinInfo: Sendable, Hashable {
    /// This participant's id.
    public var localID: String
    /// The participants already there.
    public var participants: [ParticipantInfo]
    /// This participant as the server describes it (identity, name, metadata,
    /// attributes), when it does.
    public var local: ParticipantInfo?

    public init(localID: String, participants: [ParticipantInfo], local: ParticipantInfo? = nil) {
        self.localID = localID
        self.participants = participants
        self.local = local
    }
}

/// What the server reports about the room.
public enum RoomSignalingEvent: Sendable, Equatable {
    /// Someone joined (possibly publishing nothing yet).
    case participantJoined(ParticipantInfo)
    /// A participant's published tracks changed (published, unpublished, muted): the full
    /// new list.
    case tracksChanged(participantID: String, tracks: [TrackInfo])
    /// A participant's name, metadata or attributes changed (the full new description;
    /// its tracks are reported by ``tracksChanged(participantID:tracks:)``). This
    /// participant's own changes are reported too, with its id.
    case participantUpdated(ParticipantInfo)
    /// Someone left.
    case participantLeft(id: String, reason: String?)
    /// Someone started or stopped speaking.
    case speaking(participantID: String, Bool)
    /// A participant's connection quality changed (this participant's own too).
    case connectionQuality(participantID: String, ConnectionQuality)
    /// The server offers (or re-offers) the subscriber connection; answer it with
    /// ``RoomSignaling/answerSubscription(_:)``.
    case subscriberOffer(SessionDescription, tracks: [SubscribedTrack])
    /// A candidate of the server's side of the publisher (or subscriber) connection,
    /// trickled after its description (LiveKit trickles; Janus puts them in its SDP).
    case remoteCandidate(ICECandidate, publisher: Bool)
    /// A single-connection server (``RoomSignaling/singlePeerConnection``) wants this many
    /// more receiving sections on the connection, for tracks it is to send: add them
    /// (receive-only) and offer again; the answer assigns them
    /// (``RoomSignaling/receivingTracks``).
    case receiveSectionsNeeded(audio: Int, video: Int)
    /// The server's side of the publisher (or subscriber) connection is up.
    case mediaConnected(publisher: Bool)
    /// Bytes a participant sent.
    case data(RoomData)
    /// A text stream a participant sent, complete (LiveKit's legacy ChatMessage packets
    /// come as text on `lk.chat`).
    case text(RoomText)
    /// A byte stream a participant sent, complete.
    case bytes(RoomBytes)
    /// Transcription segments (live subtitles).
    case transcription(RoomTranscription)
    /// The room's metadata (LiveKit: set by the server's API; Visio keeps its recording
    /// and transcription status there), at the join and on every change.
    case roomMetadata(String)
    /// The connection to the server was lost and is being restored (LiveKit: resumed);
    /// media goes on meanwhile.
    case reconnecting(reason: String)
    /// The connection to the server is back; the session goes on as before.
    case reconnected
    /// The session could not be resumed and the server started a new one for this
    /// participant (LiveKit's full reconnect: a restarted server, a session it dropped):
    /// a new id, the participants there now. Connections, publications and
    /// subscriptions are to be made again; then the room is reconnected.
    case rejoined(RoomJoinInfo)
    /// The connection to the server ended.
    case disconnected(reason: String)
}

/// How a room is joined on a particular server — the seam between ``RoomClient`` and a
/// server's protocol. MeetKit implements it for Janus VideoRoom (``JanusRoomSignaling``);
/// LiveKit's adapter plugs in beside it. The shape follows what SFUs have in common: a
/// publisher connection this side offers, a subscriber connection the server offers, and
/// events about participants and their tracks.
///
/// ``RoomClient``'s `Room` makes the subscription calls (`subscribe`, `unsubscribe`,
/// `answerSubscription`) one at a time, in order; an adapter may rely on that, and other
/// callers should do the same.
public protocol RoomSignaling: AnyObject, Sendable {
    /// Events about the room, until the connection ends.
    var events: AsyncStream<RoomSignalingEvent> { get }
    /// Joins `room` as `displayName`.
    func join(room: String, displayName: String) async throws -> RoomJoinInfo
    /// Publishes the tracks of a publisher offer; returns the server's answer.
    func publish(offer: SessionDescription, tracks: [PublishedTrack]) async throws -> SessionDescription
    /// Stops publishing.
    func unpublish() async throws
    /// Asks for remote tracks; the server answers with a ``RoomSignalingEvent/subscriberOffer(_:tracks:)``.
    /// A track the server does not have ready yet is the adapter's to wait for (Janus
    /// answers 428 until a publisher's media is up): callers ask once.
    func subscribe(to tracks: [(participantID: String, trackID: String)]) async throws
    /// Stops receiving remote tracks (a new subscriber offer follows).
    func unsubscribe(from tracks: [(participantID: String, trackID: String)]) async throws
    /// Answers the latest subscriber offer.
    func answerSubscription(_ answer: SessionDescription) async throws
    /// Sends a local candidate gathered after the description the server has (trickle ICE,
    /// RFC 8838) for the publisher or the subscriber connection; nil says gathering ended.
    func trickle(_ candidate: ICECandidate?, publisher: Bool) async throws
    /// Tells the server that a published track is muted or unmuted.
    func setMuted(_ muted: Bool, mid: String) async throws
    /// Leaves the room and closes the connection to the server.
    func leave() async

    /// Whether one connection carries both ways (LiveKit's `/rtc/v1`): this side offers it,
    /// remote tracks arrive on receive-only sections of it, and no subscriber offer comes.
    /// Known once joined.
    var singlePeerConnection: Bool { get }
    /// With a single connection: the remote track each receiving section carries, as the
    /// server's answer to the latest ``publish(offer:tracks:)`` assigned them.
    var receivingTracks: [SubscribedTrack] { get }

    /// The data channels the server wants on the publisher connection from the join on
    /// (none: the room opens no publisher connection before something is published).
    var publisherDataChannels: [DataChannelRequest] { get }
    /// How to send on those channels (by label), given by the room once they exist.
    func attachDataSender(_ send: @escaping @Sendable (_ label: String, _ bytes: [UInt8]) async throws -> Void)
    /// A message that arrived on a data channel `label` of either connection: the adapter
    /// decodes it and reports ``RoomSignalingEvent/data(_:)`` or ``RoomSignalingEvent/text(_:)``.
    func receiveData(_ bytes: [UInt8], label: String)
    /// Starts the session anew (LiveKit's full reconnection: a new join, reported as
    /// ``RoomSignalingEvent/rejoined(_:)``): for a connection this side cannot restart.
    func reconnectFully(reason: String) async
    /// Asks the server to restart the ICE of the connection it offers (the subscriber),
    /// which failed: it sends an offer with new credentials.
    func restartSubscriberConnection() async
    /// Sends bytes to the room (to the participants with `identities`, or everyone).
    func sendData(_ payload: [UInt8], topic: String?, reliable: Bool, to identities: [String]) async throws
    /// Sends a text stream on `topic`; returns its id.
    func sendText(_ text: String, topic: String, attributes: [String: String]) async throws -> String
    /// Sends a new version (`version`, from 1) of the text stream `id` on `topic`: an edit,
    /// which receivers apply to the text they got with that id from this participant.
    func sendTextUpdate(_ text: String, id: String, version: Int, topic: String, attributes: [String: String])
        async throws
    /// Sends `bytes` as a byte stream named `name` on `topic`; returns its id.
    func sendBytes(_ bytes: [UInt8], name: String, mimeType: String, topic: String, attributes: [String: String])
        async throws -> String
    /// Changes this participant's name, metadata (nil: unchanged) and attributes (an empty
    /// value removes one), if its rights allow.
    func updateLocalParticipant(name: String?, metadata: String?, attributes: [String: String]) async throws
    /// Asks for a quality of a subscribed remote video track (a simulcast layer), or for
    /// a size (the server picks the smallest layer covering it).
    func setVideoQuality(_ quality: VideoQuality, width: Int?, height: Int?, trackID: String) async throws
}

extension RoomSignaling {
    /// Two connections.
    public var singlePeerConnection: Bool { false }
    /// None.
    public var receivingTracks: [SubscribedTrack] { [] }
    /// None.
    public var publisherDataChannels: [DataChannelRequest] { [] }
    /// Ignored.
    public func attachDataSender(_ send: @escaping @Sendable (_ label: String, _ bytes: [UInt8]) async throws -> Void) {
    }
    /// Ignored.
    public func receiveData(_ bytes: [UInt8], label: String) {}
    /// Nothing (a server without sessions to start anew).
    public func reconnectFully(reason: String) async {}
    /// Nothing (a server that cannot restart it).
    public func restartSubscriberConnection() async {}
    /// Throws ``RoomSignalingError/unsupported(_:)``.
    public func sendData(_ payload: [UInt8], topic: String?, reliable: Bool, to identities: [String]) async throws {
        throw RoomSignalingError.unsupported("data packets")
    }
    /// Throws ``RoomSignalingError/unsupported(_:)``.
    public func sendText(_ text: String, topic: String, attributes: [String: String]) async throws -> String {
        throw RoomSignalingError.unsupported("text streams")
    }
    /// Throws ``RoomSignalingError/unsupported(_:)``.
    public func sendTextUpdate(
        _ text: String, id: String, version: Int, topic: String, attributes: [String: String]
    ) async throws {
        throw RoomSignalingError.unsupported("text streams")
    }
    /// Throws ``RoomSignalingError/unsupported(_:)``.
    public func sendBytes(
        _ bytes: [UInt8], name: String, mimeType: String, topic: String, attributes: [String: String]
    ) async throws -> String {
        throw RoomSignalingError.unsupported("byte streams")
    }
    /// Throws ``RoomSignalingError/unsupported(_:)``.
    public func setVideoQuality(_ quality: VideoQuality, width: Int?, height: Int?, trackID: String) async throws {
        throw RoomSignalingError.unsupported("simulcast layer selection")
    }
    /// Throws ``RoomSignalingError/unsupported(_:)``.
    public func updateLocalParticipant(name: String?, metadata: String?, attributes: [String: String]) async throws {
        throw RoomSignalingError.unsupported("participant metadata and attributes")
    }
}
