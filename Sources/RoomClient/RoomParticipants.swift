import Codec
import Foundation
import Synchronization
import Transport

/// A track a remote participant publishes, as this room sees it.
public struct TrackPublication: Sendable, Hashable {
    /// The track's id (LiveKit: its sid, `TR_…`).
    public var sid: String
    /// Audio or video.
    public var kind: MediaKind
    /// Microphone, camera or screen.
    public var source: TrackSource
    /// Whether its publisher has muted it.
    public var muted: Bool
    /// Whether this room receives it now.
    public var subscribed: Bool
    /// The simulcast quality this room asked of it (``Room/setVideoQuality(_:width:height:participantID:trackID:)``),
    /// if it asked.
    public var quality: VideoQuality?
}

/// Another participant of the room, as the room knows it now (a snapshot: ask
/// ``Room/remoteParticipants`` again, or follow ``Room/events``).
public struct RemoteParticipant: Sendable, Hashable, ParticipantAttributed {
    /// The server's id for it (LiveKit: `PA_…`; a new one after it reconnects fully).
    public var sid: String
    /// Its stable identity (LiveKit: the token's subject).
    public var identity: String
    /// Its display name (or identity).
    public var name: String
    /// Its application metadata.
    public var metadata: String
    /// Its attributes (Visio: `handRaisedAt`, `color`, `room_role`, …).
    public var attributes: [String: String]
    /// What it publishes.
    public var tracks: [TrackPublication]
    /// Whether it is speaking, as the server last said.
    public var isSpeaking: Bool
    /// How well its media gets through, as the server last said (nil: not said yet).
    public var connectionQuality: ConnectionQuality?
}

/// This participant, as the server knows it.
public struct LocalParticipant: Sendable, Hashable, ParticipantAttributed {
    /// The server's id for it (a new one after a full reconnection).
    public var sid: String
    /// Its identity (LiveKit: from the token).
    public var identity: String
    /// Its display name.
    public var name: String
    /// Its application metadata.
    public var metadata: String
    /// Its attributes, as the server last reported them.
    public var attributes: [String: String]
    /// What it publishes.
    public var tracks: [LocalTrack]
    /// How well its media gets through, as the server last said (nil: not said yet).
    public var connectionQuality: ConnectionQuality?
}

/// Whether a room is connected to its server.
public enum RoomConnectionState: Sendable, Hashable {
    /// Joined; media and signalling flow.
    case connected
    /// The connection to the server was lost and is being restored.
    case reconnecting
    /// Left, or ended (see ``RoomEvent/disconnected(reason:)``).
    case disconnected
}

/// One unit of a remote track's media, as ``RoomOptions`` asks for it.
public enum TrackFrame: Sendable {
    /// Decoded audio.
    case audio(AudioFrame<Int16>)
    /// A decoded picture.
    case video(VideoFrame)
    /// An encoded frame (Opus packet, whole VP8 frame).
    case encoded(EncodedFrame)
}

/// The media of one remote track, as its own asynchronous sequence with a bounded buffer:
/// a consumer slower than the track loses the oldest frames — counted in ``dropped`` —
/// and never makes memory grow. From ``Room/frames(participantID:trackID:buffer:)``.
///
/// ```swift
/// for await frame in room.frames(participantID: speaker, trackID: microphone) {
///     if case .audio(let pcm) = frame { recogniser.feed(pcm) }
/// }
/// ```
public final class TrackFrames: AsyncSequence, Sendable {
    public typealias Element = TrackFrame
    private let stream: AsyncStream<TrackFrame>
    private let drops = Atomic(0)

    init(stream: AsyncStream<TrackFrame>) {
        self.stream = stream
    }

    /// Frames dropped because the buffer was full.
    public var dropped: Int { drops.load(ordering: .relaxed) }

    func countDrop() { drops.add(1, ordering: .relaxed) }

    public func makeAsyncIterator() -> AsyncStream<TrackFrame>.Iterator { stream.makeAsyncIterator() }
}
