import Codec
import Foundation
import NIOCore
import NIOPosix
import Signaling
import Transport

/// A remote track, as a key.
struct TrackKey: Hashable, Sendable {
    var participantID: String
    var trackID: String
}

/// The room's other event consumers, by number.
typealias Observers = [Int: AsyncStream<RoomEvent>.Continuation]

/// One consumer of a remote track's media.
struct FrameSink: Sendable {
    let continuation: AsyncStream<TrackFrame>.Continuation
    let frames: TrackFrames
}

extension Room {
    // MARK: connecting

    /// Connects to a LiveKit room — Visio's server, LiveKit Cloud, meet-server — with the
    /// server's URL and a token (which names the room and this participant).
    /// - Throws: ``LiveKitError`` (``LiveKitError/unauthorized(_:)``, ``LiveKitError/roomFull(_:)``, …).
    public static func connect(
        url: String, token: String, options: RoomOptions = .init(), connect: LiveKitConnectOptions = .init()
    ) async throws -> Room {
        let signaling = LiveKitRoomSignaling(url: url, token: token, options: connect)
        return try await join(signaling: signaling, room: "", displayName: "", options: options, group: connect.group)
    }

    /// Joins room `room` of a Janus VideoRoom server at `janus` (`ws://host:8188`) as
    /// `displayName`.
    /// - Throws: ``JanusError`` (426 for a room that does not exist, …).
    public static func connect(
        janus url: String, room: String, displayName: String, options: RoomOptions = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Room {
        let signaling = try await JanusRoomSignaling.connect(url: url, group: group)
        do {
            return try await join(
                signaling: signaling, room: room, displayName: displayName, options: options, group: group)
        } catch {
            await signaling.leave()  // the Janus session closes with the refusal
            throw error
        }
    }

    // MARK: participants

    /// This participant: its id, identity, name, metadata, attributes and published tracks.
    public var localParticipant: LocalParticipant {
        state.withLock { s in
            LocalParticipant(
                sid: s.localID, identity: s.localInfo.identity, name: s.localInfo.name, metadata: s.localInfo.metadata,
                attributes: s.localInfo.attributes, tracks: s.localTracks,
                connectionQuality: s.connectionQuality[s.localID])
        }
    }

    /// The other participants now, with their track publications (ordered by id).
    public var remoteParticipants: [RemoteParticipant] {
        state.withLock { s in
            let receiving = Set(s.subscriberTracks.values.map { $0.participantID + "/" + $0.trackID })
            return s.participants.values.sorted { $0.id < $1.id }.map { p in
                RemoteParticipant(
                    sid: p.id, identity: p.identity, name: p.name, metadata: p.metadata, attributes: p.attributes,
                    tracks: p.tracks.map { t in
                        let key = p.id + "/" + t.id
                        return TrackPublication(
                            sid: t.id, kind: t.kind, source: t.source, muted: t.muted,
                            subscribed: receiving.contains(key), quality: s.qualities[key])
                    }, isSpeaking: s.speaking.contains(p.id), connectionQuality: s.connectionQuality[p.id])
            }
        }
    }

    /// Whether the room is connected, reconnecting, or ended.
    public var connectionState: RoomConnectionState { state.withLock { $0.connection } }

    // MARK: consumers

    /// Another sequence of the room's events, for another consumer: every event from now
    /// on, until the room ends. With `buffer`, a consumer that falls behind loses the
    /// oldest events beyond that many (media events come at the tracks' rates); without,
    /// it keeps them all.
    public func makeEvents(buffer: Int? = nil) -> AsyncStream<RoomEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: RoomEvent.self, bufferingPolicy: buffer.map { .bufferingNewest(max(1, $0)) } ?? .unbounded)
        let id = state.withLock { s -> Int? in
            guard s.connection != .disconnected else { return nil }
            s.nextConsumer += 1
            s.observers[s.nextConsumer] = continuation
            return s.nextConsumer
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.observers.removeValue(forKey: id) }
        }
        return stream
    }

    /// The media of one remote track (as ``RoomOptions`` asks it decoded or encoded), as
    /// its own sequence with room for `buffer` frames: a slower consumer loses the oldest
    /// (``TrackFrames/dropped`` counts them). It ends when the room does or the consumer
    /// stops; frames come while the track is subscribed.
    public func frames(participantID: String, trackID: String, buffer: Int = 64) -> TrackFrames {
        let (stream, continuation) = AsyncStream.makeStream(
            of: TrackFrame.self, bufferingPolicy: .bufferingNewest(max(1, buffer)))
        let frames = TrackFrames(stream: stream)
        let key = TrackKey(participantID: participantID, trackID: trackID)
        let id = state.withLock { s -> Int? in
            guard s.connection != .disconnected else { return nil }
            s.nextConsumer += 1
            s.frameSinks[key, default: [:]][s.nextConsumer] = FrameSink(continuation: continuation, frames: frames)
            return s.nextConsumer
        }
        guard let id else {
            continuation.finish()
            return frames
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { s in
                s.frameSinks[key]?[id] = nil
                if s.frameSinks[key]?.isEmpty == true { s.frameSinks[key] = nil }
            }
        }
        return frames
    }

    /// Hands a frame to a track's consumers, counting what a full buffer pushed out.
    static func deliver(_ frame: TrackFrame, to sinks: [Int: FrameSink]) {
        for sink in sinks.values {
            if case .dropped = sink.continuation.yield(frame) { sink.frames.countDrop() }
        }
    }

    /// Reports an event to the room's event sequence and to every other consumer.
    func emit(_ event: RoomEvent) {
        emit(event, to: state.withLock { $0.observers.isEmpty ? nil : $0.observers })
    }

    /// Reports an event to the room's event sequence and to `observers`, read by the caller
    /// (received media reads them with its track, under one lock).
    func emit(_ event: RoomEvent, to observers: Observers?) {
        if let handler = options.eventHandler {
            handlerTurn.withLock { _ in handler(event) }
        } else {
            sink.yield(event)
        }
        if let observers { for o in observers.values { o.yield(event) } }
    }

    /// Ends every other consumer's sequence (the room ended).
    func finishConsumers() {
        let (observers, sinks) = state.withLock { s in
            defer {
                s.observers = [:]
                s.frameSinks = [:]
            }
            return (Array(s.observers.values), s.frameSinks.values.flatMap(\.values))
        }
        for o in observers { o.finish() }
        for f in sinks { f.continuation.finish() }
    }
}
