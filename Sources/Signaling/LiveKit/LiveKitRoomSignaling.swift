import Foundation
import LiveKitProtocol
import Logging
import MeetKitSDP
import NIOCore
import NIOPosix
import Synchronization

/// How a ``LiveKitRoomSignaling`` connects.
public struct LiveKitConnectOptions: Sendable {
    /// How long the server may take to answer a join, a track publication or an offer.
    public var timeout: Duration = .seconds(10)
    /// The event loops of the WebSocket.
    public var group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    /// How long a lost signalling connection is tried again (resumed: same participant,
    /// same tracks, the media connections untouched) before the session ends.
    public var resumeWindow: Duration = .seconds(15)
    /// Which of LiveKit's two signalling protocols to speak.
    public var mode: LiveKitSignalMode = .automatic

    /// The defaults: 10 s answers, NIO's shared event loops, `/rtc/v1` when the server has it.
    public init() {}
}

/// LiveKit's two client protocols.
public enum LiveKitSignalMode: Sendable, Hashable {
    /// `/rtc/v1` first (one PeerConnection both ways), `/rtc` when the server answers 404
    /// (LiveKit servers before 1.9.10, Visio's among them) — what LiveKit's SDKs do.
    case automatic
    /// `/rtc/v1` only: one PeerConnection this side offers, carrying what it publishes and
    /// what it receives (the server asks for receiving sections with MediaSectionsRequirement).
    case singlePeerConnection
    /// `/rtc` only: a publisher connection this side offers, a subscriber connection the
    /// server offers.
    case twoPeerConnections
}

/// Joining a LiveKit room — Visio's server, LiveKit Cloud, `meet-server` — behind the
/// ``RoomSignaling`` seam, with LiveKit's client protocol (protobuf over a WebSocket at
/// `/rtc`): a publisher connection this side offers and a subscriber connection the server
/// offers, as for Janus.
///
/// The token names the room and the participant (identity, display name, rights): `join`'s
/// `room` and `displayName` are not sent. A refused join throws ``LiveKitError`` with the
/// server's reason (`/rtc/validate`): ``LiveKitError/unauthorized(_:)`` for a bad, expired
/// or wrongly signed token, ``LiveKitError/roomFull(_:)``, …
///
/// ```swift
/// let signaling = LiveKitRoomSignaling(url: "wss://livekit.example", token: token)
/// let room = try await Room.join(signaling: signaling, room: "", displayName: "")
/// ```
///
/// Subscriptions are explicit (`auto_subscribe=0`): ``RoomClient``'s `Room` asks for the
/// tracks it wants with ``subscribe(to:)`` (UpdateSubscription) and the server offers them.
/// The server is pinged; a connection that closes, or whose server stays silent longer
/// than the ping timeout it announced, is resumed
/// (``RoomSignalingEvent/reconnecting(reason:)``, then ``RoomSignalingEvent/reconnected``
/// or ``RoomSignalingEvent/disconnected(reason:)``).
public final class LiveKitRoomSignaling: RoomSignaling {
    public let events: AsyncStream<RoomSignalingEvent>
    let sink: AsyncStream<RoomSignalingEvent>.Continuation
    private let endpoint: Result<LiveKitEndpoint, LiveKitError>
    private let options: LiveKitConnectOptions
    let state: Mutex<State>
    private let joined = PendingReplies<Livekit_JoinResponse>()
    private let published = PendingReplies<Livekit_TrackInfo>()
    private let answers = PendingReplies<Livekit_SessionDescription>()
    private let requests = PendingReplies<Livekit_RequestResponse>()
    private let resumed = PendingReplies<ResumeOutcome>()

    /// How a lost session came back: resumed, or started anew by the server.
    enum ResumeOutcome: Sendable {
        case resumed
        case rejoined(Livekit_JoinResponse)
    }
    let logger = Logger(label: "meetkit.livekit")

    struct State {
        var token: String
        /// Sends on the publisher's data channels (by label), once the room gave it.
        var dataSender: (@Sendable (String, [UInt8]) async throws -> Void)?
        /// Text streams being received, by stream id.
        var incoming: [String: IncomingStream] = [:]
        /// The sequence number of the last reliable data packet sent.
        var reliableSequence: UInt32 = 0
        var channel: LiveKitSignalChannel?
        var join: Livekit_JoinResponse?
        /// Remote participants by sid.
        var remote: [String: Livekit_ParticipantInfo] = [:]
        /// This side's published tracks: the sid of the track on each publisher mid.
        var publishedByMid: [String: String] = [:]
        var lastOfferID: UInt32 = 0
        var lastRequestID: UInt32 = 0
        var lastPong = ContinuousClock.now
        var roundTrip: Duration?
        var ended = false
        /// A lost signalling connection is being resumed.
        var resuming = false
        /// The connection quality last reported per participant sid.
        var quality: [String: ConnectionQuality] = [:]
        /// `/rtc/v1`: one connection both ways.
        var single = false
        /// `/rtc/v1`: the remote track each receiving section carries, by the latest answer.
        var receiving: [SubscribedTrack] = []
        /// Counts of the data streams received and sent.
        var streams = LiveKitDataStreamStatistics()
        var tasks: [Task<Void, Never>] = []
    }

    /// A client for the LiveKit server at `url` (`wss://…`, `ws://…:7880`, `https://…`)
    /// joining with `token`; nothing is sent before ``join(room:displayName:)``.
    public init(url: String, token: String, options: LiveKitConnectOptions = .init()) {
        do throws(LiveKitError) {
            endpoint = .success(try LiveKitEndpoint(url))
        } catch {
            endpoint = .failure(error)
        }
        self.options = options
        state = Mutex(State(token: token))
        (events, sink) = AsyncStream.makeStream(of: RoomSignalingEvent.self)
    }

    /// The round-trip time of the last ping the server answered.
    public var roundTripTime: Duration? { state.withLock { $0.roundTrip } }

    /// The server's version, from its JoinResponse.
    public var serverVersion: String? { state.withLock { $0.join?.serverVersion } }

    /// The room's name, from the JoinResponse.
    public var roomName: String? { state.withLock { $0.join?.room.name } }

    /// The token in use: the one given, or the last the server refreshed it with (for
    /// calls to an application's API that take it, as Visio's do).
    public var accessToken: String { state.withLock { $0.token } }

    /// Whether this participant may change its own name, metadata and attributes (its
    /// token's `canUpdateOwnMetadata`, as the server last reported it); nil before joining.
    public var canUpdateOwnMetadata: Bool? {
        state.withLock { $0.join.map { $0.participant.permission.canUpdateMetadata } }
    }

    // MARK: joining

    /// Connects with the token and waits for the server's JoinResponse.
    /// - Throws: ``LiveKitError``: the server's refusal, ``LiveKitError/unreachable(_:)``,
    ///   ``LiveKitError/timedOut(_:)``.
    public func join(room: String, displayName: String) async throws -> RoomJoinInfo {
        let endpoint = try endpoint.get()
        let channel = try await connect(endpoint, resuming: false)
        state.withLock { $0.channel = channel }
        let reader = Task { await self.read(channel) }
        state.withLock { $0.tasks.append(reader) }
        let join: Livekit_JoinResponse
        do {
            join = try await joined.wait(for: "join", timeout: options.timeout, what: "the server's JoinResponse")
        } catch {
            await end(.disconnected("join failed: \(error)"), announce: false)
            throw error
        }
        let info = adopt(join)
        if !join.room.metadata.isEmpty { sink.yield(.roomMetadata(join.room.metadata)) }
        let pinger = Task { await self.ping(every: join.pingInterval, timeout: join.pingTimeout) }
        state.withLock { $0.tasks.append(pinger) }
        return info
    }

    /// Opens the signalling connection for a join (or a resume, with this participant's
    /// sid): `/rtc/v1` as the mode says, `/rtc` when the server has no `/rtc/v1` (404).
    private func connect(
        _ endpoint: LiveKitEndpoint, resuming: Bool, reason: Livekit_ReconnectReason = .rrSignalDisconnected
    ) async throws(LiveKitError) -> LiveKitSignalChannel {
        let timeout = attemptTimeout
        let (token, sid, single) = state.withLock { ($0.token, $0.join?.participant.sid ?? "", $0.single) }
        let tryV1 = resuming ? single : options.mode != .twoPeerConnections
        if tryV1 {
            do {
                let channel = try await LiveKitSignalChannel.open(
                    endpoint, path: "/rtc/v1", query: try Self.v1Query(token: token, resumingSID: resuming ? sid : nil),
                    timeout: timeout, group: options.group)
                state.withLock { $0.single = true }
                return channel
            } catch {
                // A server without `/rtc/v1` answers 404, as it does for a room it lacks:
                // `/rtc` then tells which.
                guard case .roomNotFound = error, options.mode == .automatic, !resuming else { throw error }
                logger.debug("no /rtc/v1 here: joining on /rtc")
            }
        }
        var query = Self.query(token: token)
        if resuming { query += [("reconnect", "1"), ("sid", sid), ("reconnect_reason", "\(reason.rawValue)")] }
        return try await LiveKitSignalChannel.open(
            endpoint, path: "/rtc", query: query, timeout: timeout, group: options.group)
    }

    /// How long one attempt may wait for the server (the upgrade, then its answer): the
    /// answer timeout when joining; when reconnecting, a few seconds, so that a server that
    /// accepted and went quiet (one shutting down) leaves time for more tries.
    var attemptTimeout: Duration {
        state.withLock { $0.join == nil } ? options.timeout : min(options.timeout, .seconds(3))
    }

    /// The query of `/rtc/v1`: the token and the JoinRequest (who this client is, explicit
    /// subscriptions; for a resume, the participant's sid), wrapped and compressed.
    static func v1Query(token: String, resumingSID: String?) throws(LiveKitError) -> [(String, String)] {
        var request = Livekit_JoinRequest()
        request.clientInfo.sdk = .swift
        request.clientInfo.version = "0.1.0"
        request.clientInfo.protocol = 16
        request.clientInfo.os = "linux"
        // Data streams: whole texts inline in their header, and deflate-raw compression,
        // are both read (LiveKit's senders use them when every recipient advertises them).
        request.clientInfo.clientProtocol = Self.clientProtocol
        request.clientInfo.capabilities = [.capCompressionDeflateRaw]
        request.connectionSettings.autoSubscribe = false
        if let resumingSID {
            request.reconnect = true
            request.participantSid = resumingSID
        }
        do {
            return [("access_token", token), ("join_request", try JoinRequestCodec.encode(request))]
        } catch {
            throw .protocolViolation("could not encode the join request: \(error)")
        }
    }

    /// The query of `/rtc`: the token, explicit subscriptions, who this client is.
    static func query(token: String) -> [(String, String)] {
        [
            ("access_token", token), ("auto_subscribe", "0"), ("sdk", "swift"), ("version", "0.1.0"),
            ("protocol", "16"), ("client_protocol", "\(clientProtocol)"), ("adaptive_stream", "0"),
        ]
    }

    /// Whether one PeerConnection carries both ways (`/rtc/v1`), known once joined.
    public var singlePeerConnection: Bool { state.withLock { $0.single } }

    /// `/rtc/v1`: the remote track each receiving section of the connection carries, as the
    /// server's latest answer assigned them (`mid_to_track_id`).
    public var receivingTracks: [SubscribedTrack] { state.withLock { $0.receiving } }

    /// Reads the server's messages until the connection ends; a joined session whose
    /// connection was lost (not left, not refused) is then resumed.
    private func read(_ channel: LiveKitSignalChannel) async {
        for await response in channel.responses {
            guard let message = response.message else { continue }
            handle(message)
        }
        let reason = channel.closeReason ?? "the signalling connection closed"
        let (ended, joined, resuming, current) = state.withLock {
            ($0.ended, $0.join != nil, $0.resuming, $0.channel === channel)
        }
        if ended || !current { return }  // a connection already replaced ends unheard
        if resuming {
            resumed.fail("resume", .disconnected(reason))  // the reconnect loop tries again
        } else if joined {
            await reconnect(after: reason)
        } else {
            await end(.disconnected(reason))
        }
    }

    /// Asks the server to restart the subscriber connection's ICE (`/rtc`, where the server
    /// offers that connection): a resume with reason RR_SUBSCRIBER_FAILED, after which the
    /// server sends an offer with new ICE credentials.
    public func restartSubscriberConnection() async {
        await reconnect(after: "the subscriber connection failed", cause: .rrSubscriberFailed)
    }

    /// Reconnects the signalling connection (`reconnect=1` with this participant's sid and
    /// `cause` as its `reconnect_reason`) until the server resumes the session, for
    /// ``LiveKitConnectOptions/resumeWindow``; the room reports
    /// ``RoomSignalingEvent/reconnecting(reason:)`` then ``RoomSignalingEvent/reconnected``,
    /// or the end. The media connections are left as they are (they do not depend on the
    /// WebSocket). A server that answers with a new session (it no longer knows this one) —
    /// or any server, when `full` — gets a new join: ``RoomSignalingEvent/rejoined(_:)``.
    private func reconnect(
        after reason: String, full: Bool = false, cause: Livekit_ReconnectReason = .rrSignalDisconnected
    ) async {
        guard let endpoint = try? endpoint.get() else { return }
        let (already, channel) = state.withLock { s in
            defer { s.resuming = true }
            return (s.resuming, s.channel)
        }
        guard !already else { return }
        sink.yield(.reconnecting(reason: reason))
        if full { await channel?.close() }
        let deadline = ContinuousClock.now + options.resumeWindow
        var delay = Duration.milliseconds(100)
        var last: LiveKitError = .disconnected(reason)
        while ContinuousClock.now < deadline, !state.withLock({ $0.ended }) {
            do {
                let channel = try await connect(endpoint, resuming: !full, reason: cause)
                let old = state.withLock { s in
                    defer { s.channel = channel }
                    return s.channel
                }
                if old !== channel { await old?.close() }
                let reader = Task { await self.read(channel) }
                state.withLock { $0.tasks.append(reader) }
                let outcome = try await resumed.wait(
                    for: "resume", timeout: attemptTimeout, what: "the server's resume")
                switch outcome {
                case .resumed:
                    state.withLock { s in
                        s.resuming = false
                        s.lastPong = .now
                    }
                    logger.info("signalling resumed", metadata: ["after": "\(reason)"])
                    sink.yield(.reconnected)
                case .rejoined(let join):
                    // Adopted and reported as it arrived (``handle(_:)``).
                    logger.info(
                        "rejoined as a new participant",
                        metadata: ["after": "\(reason)", "sid": "\(join.participant.sid)"])
                }
                return
            } catch {
                last = error
                // A refusal that will not change (the token, the room) ends the session now.
                if error.isFinalRefusal { break }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
        await end(.disconnected("could not resume after \(reason): \(last)"))
    }

    /// Takes a JoinResponse as the session's: this participant, the others, the room;
    /// what belonged to a previous session (published tracks, receiving sections) is
    /// forgotten. Returns what the room is told.
    private func adopt(_ join: Livekit_JoinResponse) -> RoomJoinInfo {
        let others = state.withLock { s in
            s.join = join
            s.lastPong = .now
            s.remote = [:]
            for p in join.otherParticipants { s.remote[p.sid] = p }
            s.publishedByMid = [:]
            s.receiving = []
            s.quality = [:]
            s.resuming = false
            return join.otherParticipants
        }
        return RoomJoinInfo(
            localID: join.participant.sid, participants: others.map(Self.participant),
            local: Self.participant(join.participant))
    }

    /// Pings the server every `interval` seconds with the last round-trip time, and closes a
    /// connection whose server went quiet for `timeout` seconds (which starts a resume).
    private func ping(every interval: Int32, timeout: Int32) async {
        let interval = Duration.seconds(max(1, Int(interval)))
        let timeout = Duration.seconds(max(2, Int(timeout)))
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            let (channel, silent, rtt, resuming) = state.withLock {
                ($0.channel, ContinuousClock.now - $0.lastPong, $0.roundTrip, $0.resuming)
            }
            if resuming { continue }
            if silent > timeout {
                // The connection is dead without having closed: closing it starts a resume.
                logger.warning("no answer to pings", metadata: ["for": "\(silent)"])
                state.withLock { $0.lastPong = .now }
                await channel?.close()
                continue
            }
            var ping = Livekit_Ping()
            ping.timestamp = Self.milliseconds()
            ping.rtt = rtt.map { Int64($0 / .milliseconds(1)) } ?? 0
            try? await channel?.send(.pingReq(ping))
        }
    }

    private static func milliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: server messages

    private func handle(_ message: Livekit_SignalResponse.OneOf_Message) {
        switch message {
        case .join(let join):
            // A JoinResponse while joined: the server could not resume this participant's
            // session and started a new one.
            if state.withLock({ $0.join != nil }) {
                // Reported here, in order: what the new session sends next (offers,
                // candidates) belongs to it.
                sink.yield(.rejoined(adopt(join)))
                // Tracks, offers and requests of the old session get no answer now.
                for pending in [published.failWaiting, answers.failWaiting, requests.failWaiting] {
                    pending(.disconnected("the session was replaced"))
                }
                resumed.resolve("resume", .rejoined(join))
            } else {
                joined.resolve("join", join)
            }
        case .answer(let answer):
            let id = answer.id != 0 ? answer.id : state.withLock { $0.lastOfferID }
            answers.resolve("answer-\(id)", answer)
        case .offer(let offer):
            subscriberOffer(offer)
        case .trickle(let trickle):
            guard let value = CandidateInit.attributeValue(fromJSON: trickle.candidateInit),
                let candidate = try? ICECandidate(parsing: value)
            else { return }
            let single = state.withLock { $0.single }
            sink.yield(.remoteCandidate(candidate, publisher: single || trickle.target == .publisher))
        case .update(let update):
            participantsChanged(update.participants)
        case .trackPublished(let response):
            published.resolve("track-\(response.cid)", response.track)
        case .trackUnpublished(let response):
            state.withLock { s in s.publishedByMid = s.publishedByMid.filter { $0.value != response.trackSid } }
        case .roomUpdate(let update):
            let changed = state.withLock { s -> Bool in
                defer { s.join?.room.metadata = update.room.metadata }
                return s.join?.room.metadata != update.room.metadata
            }
            if changed { sink.yield(.roomMetadata(update.room.metadata)) }
        case .speakersChanged(let changed):
            for speaker in changed.speakers { sink.yield(.speaking(participantID: speaker.sid, speaker.active)) }
        case .connectionQuality(let update):
            // Only changes are reported.
            let changed = state.withLock { s in
                update.updates.compactMap { info -> (String, ConnectionQuality)? in
                    let quality: ConnectionQuality =
                        switch info.quality {
                        case .excellent: .excellent
                        case .good: .good
                        case .lost: .lost
                        default: .poor
                        }
                    guard s.quality[info.participantSid] != quality else { return nil }
                    s.quality[info.participantSid] = quality
                    return (info.participantSid, quality)
                }
            }
            for (sid, quality) in changed { sink.yield(.connectionQuality(participantID: sid, quality)) }
        case .leave(let leave):
            switch leave.action {
            case .resume, .reconnect:
                // The server asks this client to come back (a resume, or a new session).
                Task {
                    await self.reconnect(
                        after: "the server asked to reconnect (\(leave.reason))", full: leave.action == .reconnect)
                }
            default:
                Task { await self.end(.removed("\(leave.reason)")) }
            }
        case .pongResp(let pong):
            state.withLock { s in
                s.lastPong = .now
                s.roundTrip = .milliseconds(max(0, Self.milliseconds() - pong.lastPingTimestamp))
            }
        case .pong:
            state.withLock { $0.lastPong = .now }
        case .reconnect:
            resumed.resolve("resume", .resumed)
        case .requestResponse(let response):
            requests.resolve("request-\(response.requestID)", response)
        case .refreshToken(let token):
            state.withLock { $0.token = token }
        case .mediaSectionsRequirement(let requirement):
            sink.yield(
                .receiveSectionsNeeded(audio: Int(requirement.numAudios), video: Int(requirement.numVideos)))
        default:
            break
        }
    }

    /// ParticipantUpdate: joins, leaves and track changes of the others (newer versions only).
    private func participantsChanged(_ infos: [Livekit_ParticipantInfo]) {
        var out: [RoomSignalingEvent] = []
        state.withLock { s in
            for info in infos where info.sid == s.join?.participant.sid {
                guard let old = s.join?.participant, old.version <= info.version else { continue }
                s.join?.participant = info
                if !Self.describedAlike(old, info) {
                    out.append(.participantUpdated(Self.participant(info)))
                }
            }
            for info in infos where info.sid != s.join?.participant.sid {
                let known = s.remote[info.sid]
                if let known, known.version > info.version { continue }
                if info.state == .disconnected {
                    if s.remote.removeValue(forKey: info.sid) != nil {
                        out.append(.participantLeft(id: info.sid, reason: nil))
                    }
                    continue
                }
                s.remote[info.sid] = info
                let now = Self.participant(info)
                if let known {
                    if !Self.describedAlike(known, info) {
                        out.append(.participantUpdated(now))
                    }
                    if Self.participant(known).tracks != now.tracks {
                        out.append(.tracksChanged(participantID: info.sid, tracks: now.tracks))
                    }
                } else {
                    out.append(.participantJoined(now))
                }
            }
        }
        for event in out { sink.yield(event) }
    }

    /// Whether two versions of a participant have the same name, metadata and attributes.
    static func describedAlike(_ a: Livekit_ParticipantInfo, _ b: Livekit_ParticipantInfo) -> Bool {
        (a.name, a.metadata, a.attributes) == (b.name, b.metadata, b.attributes)
    }

    /// The server offers the subscriber connection: each section's stream id names the
    /// publisher and the track (`PA_…|TR_…`).
    private func subscriberOffer(_ offer: Livekit_SessionDescription) {
        guard let sdp = try? SessionDescription(parsing: offer.sdp) else {
            logger.warning("unparsable subscriber offer dropped")
            return
        }
        var tracks: [SubscribedTrack] = []
        for m in sdp.media {
            guard let kind = MediaKind(rawValue: m.kind), let mid = m.mid, let msid = m.msid else { continue }
            let parts = msid.stream.split(separator: "|", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            tracks.append(
                SubscribedTrack(mid: mid, participantID: parts[0], trackID: msid.track ?? parts[1], kind: kind))
        }
        sink.yield(.subscriberOffer(sdp, tracks: tracks))
    }

    static func participant(_ info: Livekit_ParticipantInfo) -> ParticipantInfo {
        ParticipantInfo(
            id: info.sid, name: info.name.isEmpty ? info.identity : info.name,
            tracks: info.tracks.map { t in
                TrackInfo(
                    id: t.sid, kind: t.type == .audio ? .audio : .video, source: Self.source(t.source), muted: t.muted)
            }, identity: info.identity, metadata: info.metadata, attributes: info.attributes)
    }

    static func source(_ source: Livekit_TrackSource) -> TrackSource {
        switch source {
        case .microphone: .microphone
        case .camera: .camera
        case .screenShare, .screenShareAudio: .screen
        default: .unknown
        }
    }

    static func source(_ source: TrackSource, kind: MediaKind) -> Livekit_TrackSource {
        switch source {
        case .microphone: .microphone
        case .camera: .camera
        case .screen: kind == .audio ? .screenShareAudio : .screenShare
        case .unknown: .unknown
        }
    }

    // MARK: requests

    private func send(_ message: Livekit_SignalRequest.OneOf_Message) async throws(LiveKitError) {
        guard let channel = state.withLock({ $0.ended ? nil : $0.channel }) else {
            throw .disconnected("not connected")
        }
        try await channel.send(message)
    }

    /// Announces the offer's new tracks (AddTrackRequest, with the section's msid track id
    /// as the client id the server matches), then sends the offer and returns the answer.
    public func publish(offer: SessionDescription, tracks: [PublishedTrack]) async throws -> SessionDescription {
        let known = state.withLock { $0.publishedByMid }
        for track in tracks where known[track.mid] == nil {
            guard let section = offer.media.first(where: { $0.mid == track.mid }) else { continue }
            let cid = section.msid?.track ?? track.mid
            var request = Livekit_AddTrackRequest()
            request.cid = cid
            request.name = track.source.rawValue
            request.type = track.kind == .audio ? .audio : .video
            request.source = Self.source(track.source, kind: track.kind)
            try await send(.addTrack(request))
            let info = try await published.wait(
                for: "track-\(cid)", timeout: options.timeout, what: "the server's TrackPublished for \(cid)")
            state.withLock { $0.publishedByMid[track.mid] = info.sid }
        }
        var description = Livekit_SessionDescription()
        description.type = "offer"
        description.sdp = offer.serialized()
        description.id = state.withLock { s in
            s.lastOfferID += 1
            return s.lastOfferID
        }
        try await send(.offer(description))
        let answer = try await answers.wait(
            for: "answer-\(description.id)", timeout: options.timeout, what: "the server's answer")
        state.withLock { s in
            guard s.single else { return }
            // Which remote track each receiving section carries, by the tracks' owners.
            s.receiving = answer.midToTrackID.sorted { $0.key < $1.key }.compactMap { mid, sid in
                for p in s.remote.values {
                    guard let track = p.tracks.first(where: { $0.sid == sid }) else { continue }
                    return SubscribedTrack(
                        mid: mid, participantID: p.sid, trackID: sid, kind: track.type == .audio ? .audio : .video)
                }
                return nil
            }
        }
        do {
            return try SessionDescription(parsing: answer.sdp)
        } catch {
            throw LiveKitError.protocolViolation("unparsable answer: \(error)")
        }
    }

    /// Joins anew (LiveKit's full reconnection): the server replaces this participant's
    /// session; the room is told with ``RoomSignalingEvent/rejoined(_:)``.
    public func reconnectFully(reason: String) async {
        await reconnect(after: reason, full: true)
    }

    /// Forgets the published tracks: LiveKit ends a track when the publisher connection
    /// stops sending it (renegotiated, or closed with the participant's leave).
    public func unpublish() async throws {
        state.withLock { $0.publishedByMid = [:] }
    }

    /// UpdateSubscription for the tracks (by track sid).
    public func subscribe(to tracks: [(participantID: String, trackID: String)]) async throws {
        try await updateSubscription(tracks, subscribe: true)
    }

    /// UpdateSubscription dropping the tracks.
    public func unsubscribe(from tracks: [(participantID: String, trackID: String)]) async throws {
        try await updateSubscription(tracks, subscribe: false)
    }

    private func updateSubscription(_ tracks: [(participantID: String, trackID: String)], subscribe: Bool)
        async throws(LiveKitError)
    {
        var update = Livekit_UpdateSubscription()
        update.trackSids = tracks.map(\.trackID)
        update.subscribe = subscribe
        try await send(.subscription(update))
    }

    /// Sends the answer to the server's subscriber offer.
    public func answerSubscription(_ answer: SessionDescription) async throws {
        var description = Livekit_SessionDescription()
        description.type = "answer"
        description.sdp = answer.serialized()
        try await send(.answer(description))
    }

    /// Trickles a local candidate (nil: gathering ended) for one of the two connections.
    public func trickle(_ candidate: ICECandidate?, publisher: Bool) async throws {
        var trickle = Livekit_TrickleRequest()
        trickle.candidateInit = CandidateInit.json(attributeValue: candidate?.attributeValue, mid: "0")
        trickle.target = publisher || state.withLock({ $0.single }) ? .publisher : .subscriber
        trickle.final = candidate == nil
        try await send(.trickle(trickle))
    }

    /// MuteTrackRequest for the track published on `mid`.
    public func setMuted(_ muted: Bool, mid: String) async throws {
        guard let sid = state.withLock({ $0.publishedByMid[mid] }) else {
            throw LiveKitError.protocolViolation("no published track on mid \(mid)")
        }
        var request = Livekit_MuteTrackRequest()
        request.sid = sid
        request.muted = muted
        try await send(.mute(request))
    }

    /// UpdateParticipantMetadata; waits for the server's verdict when it gives one (LiveKit
    /// answers a refusal with a RequestResponse; a server that answers nothing within a
    /// second is taken to have applied it — the change is announced in a ParticipantUpdate).
    /// - Throws: ``LiveKitError/notAllowed(_:)`` when the token forbids it.
    public func updateLocalParticipant(name: String?, metadata: String?, attributes: [String: String]) async throws {
        var update = Livekit_UpdateParticipantMetadata()
        if let name { update.name = name }
        if let metadata { update.metadata = metadata }
        update.attributes = attributes
        update.requestID = state.withLock { s in
            s.lastRequestID += 1
            return s.lastRequestID
        }
        try await send(.updateMetadata(update))
        let response: Livekit_RequestResponse
        do {
            response = try await requests.wait(
                for: "request-\(update.requestID)", timeout: .seconds(1), what: "the metadata update's response")
        } catch {
            if case .timedOut = error { return }
            throw error
        }
        if response.reason != .ok { throw LiveKitError.notAllowed(response.message) }
    }

    /// UpdateTrackSettings: the quality (or displayed size) wanted of a simulcast track.
    public func setVideoQuality(_ quality: VideoQuality, width: Int?, height: Int?, trackID: String) async throws {
        var settings = Livekit_UpdateTrackSettings()
        settings.trackSids = [trackID]
        settings.disabled = quality == .off
        settings.quality =
            switch quality {
            case .low: .low
            case .medium: .medium
            case .high: .high
            case .off: .off
            }
        if let width { settings.width = UInt32(clamping: width) }
        if let height { settings.height = UInt32(clamping: height) }
        try await send(.trackSetting(settings))
    }

    /// Asks the server to drop this client's WebSocket as a failing node would (LiveKit's
    /// SimulateScenario): for tests of resuming.
    func simulateSignalFailure() async throws {
        var scenario = Livekit_SimulateScenario()
        scenario.scenario = .nodeFailure(true)
        try await send(.simulate(scenario))
    }

    /// Tells the server this participant leaves, and closes the connection.
    public func leave() async {
        var leave = Livekit_LeaveRequest()
        leave.reason = .clientInitiated
        leave.action = .disconnect
        try? await send(.leave(leave))
        await end(.disconnected("left"), announce: false)
    }

    /// Ends the session once: waiters fail with `error`, the event stream reports it (when
    /// `announce`) and finishes, the connection closes.
    private func end(_ error: LiveKitError, announce: Bool = true) async {
        let (channel, tasks, already) = state.withLock { s in
            defer { s.ended = true }
            return (s.channel, s.tasks, s.ended)
        }
        guard !already else { return }
        joined.failAll(error)
        published.failAll(error)
        answers.failAll(error)
        requests.failAll(error)
        resumed.failAll(error)
        if announce { sink.yield(.disconnected(reason: error.description)) }
        sink.finish()
        for task in tasks { task.cancel() }
        await channel?.close()
    }
}
