import Codec
import Foundation
@_exported import Signaling
import Transport

/// What a ``Room`` reports.
public enum RoomEvent: Sendable, Equatable {
    /// A participant joined (its tracks follow as ``trackPublished(participantID:_:)``).
    case participantJoined(ParticipantInfo)
    /// A participant's name, metadata or attributes changed (this participant's own too).
    case participantUpdated(ParticipantInfo)
    /// A participant left.
    case participantLeft(id: String, reason: String?)
    /// A participant published a track.
    case trackPublished(participantID: String, TrackInfo)
    /// A participant stopped publishing a track.
    case trackUnpublished(participantID: String, trackID: String)
    /// A participant muted or unmuted a track.
    case trackMuted(participantID: String, trackID: String, muted: Bool)
    /// A remote track is now received (its media follows as audio/video/frame events).
    case trackSubscribed(participantID: String, TrackInfo)
    /// Decoded audio of a remote track (at the room's audio output rate).
    case audio(participantID: String, trackID: String, AudioFrame<Int16>)
    /// A decoded picture of a remote track.
    case video(participantID: String, trackID: String, VideoFrame)
    /// An encoded frame of a remote track (Opus packet or whole VP8 frame).
    case encoded(participantID: String, trackID: String, EncodedFrame)
    /// A remote track's sender report: its sender's clock against its media time (see
    /// ``MeetingRecorder``, which aligns speakers whose reports share a clock).
    case senderReport(participantID: String, trackID: String, SenderClock)
    /// A participant started or stopped speaking (as the server detects it).
    case speaking(participantID: String, Bool)
    /// A participant's connection quality changed, as the server judges it (this
    /// participant's own too, with its id).
    case connectionQuality(participantID: String, ConnectionQuality)
    /// A participant sent bytes to the room (LiveKit: a user packet).
    case data(RoomData)
    /// A participant sent a text stream (LiveKit: `send_text`; chat on `lk.chat`).
    case text(RoomText)
    /// A participant sent a byte stream (LiveKit: `send_bytes`, `send_file`), whole.
    case bytes(RoomBytes)
    /// The room's metadata changed (LiveKit; the first report comes with the join).
    case roomMetadataChanged(String)
    /// Visio's recording or transcription status changed (read from the room metadata).
    case recording(VisioRecording)
    /// Live subtitles: a transcription agent's segments of a participant's speech.
    case transcription(RoomTranscription)
    /// A chat message (Visio's convention: an `lk.chat` text stream or the legacy packet,
    /// reported once; again with ``ChatMessage/isEdit`` when edited).
    case chat(ChatMessage)
    /// A participant sent a reaction (Visio's convention).
    case reaction(participantID: String?, identity: String, Reaction)
    /// A participant raised its hand (at that time) or lowered it (nil): the `handRaisedAt`
    /// attribute Visio's clients set. This participant's own hand too.
    case handRaised(participantID: String, at: Date?)
    /// The publisher or subscriber connection changed state.
    case connectionState(PeerConnectionState, publisher: Bool)
    /// The connection to the server was lost and is being restored; media goes on.
    case reconnecting(reason: String)
    /// The connection to the server is back (the session and its tracks as before).
    case reconnected
    /// The room connection ended without ``Room/leave()``.
    case disconnected(reason: String)
}

/// How a ``Room`` receives and what it hands out.
public struct RoomOptions: Sendable {
    /// Subscribe to every remote track as it is published (otherwise call
    /// ``Room/subscribe(participantID:trackID:)``).
    public var autoSubscribe = true
    /// What remote audio tracks hand out: decoded PCM (at its rate and channels), encoded
    /// Opus packets, or both.
    public var audioOutput = ReceiveOutput.decoded(audioSampleRate: 48_000, audioChannels: 1)
    /// What remote video tracks hand out.
    public var videoOutput = ReceiveOutput.decoded()
    /// Local addresses the connections gather (host candidates); nil discovers the
    /// machine's non-loopback interfaces.
    public var localAddresses: [IPAddress]?
    /// PeerConnection settings (ICE, NACKs, encoders).
    public var peerConnection = PeerConnectionConfiguration()
    /// Takes every event of the room instead of ``Room/events`` (which then ends at once;
    /// ``Room/makeEvents(buffer:)`` and ``Room/frames(participantID:trackID:buffer:)`` still
    /// work). It is called on the thread that produced the event — a connection's event
    /// loop for received media —, one event at a time, in the order the room reports them.
    ///
    /// For a consumer that keeps up with the media at its rate and wants no task in
    /// between: a bot recording a room of 150 speakers receives 7 500 packets a second, and
    /// handing each to a task costs more than decoding it. The handler must return quickly
    /// (no waiting, no blocking I/O beyond a buffered write) and must not wait for the room.
    public var eventHandler: (@Sendable (RoomEvent) -> Void)?

    /// The defaults: subscribe to everything, decoded audio at 48 kHz mono and decoded video.
    public init() {}
}

/// A track this side publishes.
public struct LocalTrack: Sendable, Hashable {
    /// Its mid in the publisher connection.
    public let mid: String
    /// Audio or video.
    public let kind: MediaKind
    /// Microphone, camera or screen.
    public let source: TrackSource
}

/// Why a room operation failed.
public enum RoomError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The room was left or its connection ended.
    case notConnected
    /// The track is not published by this room.
    case unknownTrack(String)
    /// Too many in too short a time (reactions: 10 a second, as Visio's client allows).
    case rateLimited
    /// Only the participant who sent a chat message can edit it.
    case notOwnMessage

    public var description: String {
        switch self {
        case .notConnected: "the room is not connected"
        case .unknownTrack(let mid): "no local track \(mid)"
        case .rateLimited: "rate limited"
        case .notOwnMessage: "the message was sent by another participant"
        }
    }
}
