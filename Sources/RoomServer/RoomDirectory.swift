import Foundation
import LiveKitProtocol
import Logging
import MeetKitSDP
import Transport

/// What a join request carries besides the token (URL parameters of `/rtc`, or the
/// JoinRequest inside `/rtc/v1`'s `join_request`).
struct JoinParameters: Sendable {
    var token: String?
    var autoSubscribe = true
    var reconnect = false
    /// Why a resuming client reconnects (`/rtc`'s `reconnect_reason`).
    var reconnectReason = Livekit_ReconnectReason.rrUnknown
    var participantSID: String?
    var clientProtocol: Int32 = 0
    /// `/rtc/v1`: one PeerConnection, offered with the join.
    var singlePeerConnection = false
    var joinRequest: Livekit_JoinRequest?
}

/// A join the server accepted before upgrading the WebSocket.
struct Admission: Sendable {
    var claims: AccessTokenClaims
    var grant: VideoGrant
    var room: String
    var identity: String
    var parameters: JoinParameters
}

/// A signalling session: the participant, and what the server sends it.
struct SignalSession: Sendable {
    let participant: String
    let session: Int
    let responses: AsyncStream<Livekit_SignalResponse>
}

/// The rooms and participants of a server, and the signalling that changes them: one
/// actor, so every change to a room is ordered. Media lives in the ``MediaRouter``,
/// reached through its driver.
actor RoomDirectory {
    let configuration: RoomServerConfiguration
    let keys: AccessTokenKeys
    let media: UDPDriver<MediaRouter>
    let logger: Logger
    var rooms: [String: Room] = [:]
    /// Which participant (and room) each media connection belongs to.
    var owners: [MediaConnectionID: (sid: String, room: String)] = [:]
    private var nextSession = 1

    init(configuration: RoomServerConfiguration, media: UDPDriver<MediaRouter>, logger: Logger) {
        self.configuration = configuration
        keys = AccessTokenKeys(configuration.keys)
        self.media = media
        self.logger = logger
    }

    /// Set once the server stops: joins and resumes are refused (503) from then on.
    private var shuttingDown = false

    // MARK: admission

    /// Checks a join (token, rights, room) as `/rtc/validate` does; nothing changes.
    func validate(_ parameters: JoinParameters) async -> Result<Admission, JoinRefusal> {
        if shuttingDown { return .failure(JoinRefusal(status: 503, message: "the server is shutting down")) }
        guard let token = parameters.token, !token.isEmpty else {
            return .failure(JoinRefusal(status: 401, message: "no permissions to access the room"))
        }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(token)
        } catch {
            return .failure(JoinRefusal(status: 401, message: error.description))
        }
        guard let grant = claims.video, grant.roomJoin == true else {
            return .failure(JoinRefusal(status: 401, message: "no permissions to access the room"))
        }
        guard let identity = claims.identity, !identity.isEmpty else {
            return .failure(JoinRefusal(status: 400, message: "participant identity cannot be empty"))
        }
        guard let room = grant.room, !room.isEmpty else {
            return .failure(JoinRefusal(status: 400, message: "room name cannot be empty"))
        }
        if let existing = rooms[room], existing.maxParticipants > 0, !parameters.reconnect,
            existing.participant(identity: identity) == nil,
            existing.participants.count >= Int(existing.maxParticipants)
        {
            return .failure(JoinRefusal(status: 503, message: "room has exceeded its max participants"))
        }
        return .success(Admission(claims: claims, grant: grant, room: room, identity: identity, parameters: parameters))
    }

    // MARK: join and leave

    /// Joins (or resumes) a participant and opens its media connections; the first
    /// response queued is the JoinResponse (or ReconnectResponse).
    func join(_ admission: Admission) async throws(JoinRefusal) -> SignalSession {
        if shuttingDown { throw JoinRefusal(status: 503, message: "the server is shutting down") }
        let (responses, outbox) = AsyncStream.makeStream(
            of: Livekit_SignalResponse.self, bufferingPolicy: .bufferingOldest(4096))
        let session = nextSession
        nextSession += 1
        if admission.parameters.reconnect, let sid = admission.parameters.participantSID,
            let room = rooms[admission.room], let p = room.participant(sid: sid), p.identity == admission.identity
        {
            let sid = p.sid
            let lastSequence = (try? await media.perform { router, _ in router.lastReliableSequence(of: sid) }) ?? 0
            resume(p, in: room, outbox: outbox, session: session, lastReliableSequence: lastSequence)
            if admission.parameters.reconnectReason == .rrSubscriberFailed { await restartSubscriberICE(p) }
            return SignalSession(participant: sid, session: session, responses: responses)
        }
        let room = self.room(named: admission.room)
        if let old = room.participant(identity: admission.identity) {
            await remove(old, from: room, reason: .duplicateIdentity)
        }
        if room.maxParticipants > 0, room.participants.count >= Int(room.maxParticipants) {
            throw JoinRefusal(status: 503, message: "room has exceeded its max participants")
        }
        let p = Participant(
            sid: ServerID.make("PA_"), identity: admission.identity, room: room.name, claims: admission.claims,
            grant: admission.grant, singlePeerConnection: admission.parameters.singlePeerConnection, now: Date())
        p.outbox = outbox
        p.session = session
        p.autoSubscribe = admission.parameters.autoSubscribe
        p.clientProtocol = admission.parameters.clientProtocol
        if let request = admission.parameters.joinRequest {
            if !request.metadata.isEmpty { p.metadata = request.metadata }
            for (k, v) in request.participantAttributes { p.attributes[k] = v }
            p.clientProtocol = request.clientInfo.clientProtocol
            p.capabilities = request.clientInfo.capabilities
        }
        room.participants.append(p)
        room.emptySince = nil
        do {
            try await openConnections(for: p)
        } catch {
            room.participants.removeAll { $0 === p }
            throw JoinRefusal(status: 500, message: "could not set up media: \(error)")
        }
        p.send(.join(joinResponse(for: p, in: room)))
        let speakers = room.participants.filter(\.speaking).map { s in
            var info = Livekit_SpeakerInfo()
            info.sid = s.sid
            info.level = 0.5
            info.active = true
            return info
        }
        if !speakers.isEmpty {
            // Who is speaking already: later reports only carry changes.
            var update = Livekit_SpeakersChanged()
            update.speakers = speakers
            p.send(.speakersChanged(update))
        }
        p.state = .joined
        broadcast(p, in: room)
        logger.info("joined", metadata: ["room": "\(room.name)", "participant": "\(p.identity)", "sid": "\(p.sid)"])
        if p.singlePeerConnection, let offer = admission.parameters.joinRequest?.publisherOffer,
            admission.parameters.joinRequest?.hasPublisherOffer == true
        {
            await handleOffer(offer, from: p)
        } else if !p.singlePeerConnection {
            await negotiateSubscriber(p)
        }
        await subscribeToPublished(p, in: room)
        return SignalSession(participant: p.sid, session: session, responses: responses)
    }

    func room(named name: String) -> Room {
        if let room = rooms[name] { return room }
        let room = Room(
            sid: ServerID.make("RM_"), name: name, maxParticipants: configuration.maxParticipants,
            emptyTimeout: configuration.emptyTimeout, now: Date())
        rooms[name] = room
        return room
    }

    private func openConnections(for p: Participant) async throws {
        let sid = p.sid
        let roles: [MediaRouter.Role] = p.singlePeerConnection ? [.single] : [.publisher, .subscriber]
        let (identity, room, canPublishData) = (p.identity, p.room, p.canPublishData)
        let ids = try await media.perform { router, now in
            router.setMember(sid: sid, identity: identity, room: room, canPublishData: canPublishData)
            var ids: [MediaConnectionID] = []
            for role in roles {
                let id = try router.openConnection(participant: sid, role: role, now: now)
                if role == .subscriber {
                    // The server's data channels: data from the others reaches the client on them.
                    try router.withConnection(id) { core in
                        _ = try core.createDataChannel(label: "_reliable")
                        _ = try core.createDataChannel(
                            label: "_lossy", options: .init(ordered: false, maxRetransmits: 0))
                    }
                }
                ids.append(id)
            }
            return ids
        }
        for (role, id) in zip(roles, ids) {
            owners[id] = (sid, p.room)
            if role == .subscriber { p.subscriber = id } else { p.publisher = id }
        }
    }

    private func joinResponse(for p: Participant, in room: Room) -> Livekit_JoinResponse {
        var r = Livekit_JoinResponse()
        r.room = room.info
        r.participant = p.info
        r.otherParticipants = room.participants.filter { $0 !== p && !$0.hidden }.map(\.info)
        r.serverVersion = configuration.serverVersion
        r.subscriberPrimary = !p.singlePeerConnection
        r.pingInterval = Int32(configuration.pingInterval.components.seconds)
        r.pingTimeout = Int32(configuration.pingTimeout.components.seconds)
        r.serverInfo = serverInfo
        r.enabledPublishCodecs = Room.codecs
        return r
    }

    /// What the server says of itself in join and reconnect responses.
    private var serverInfo: Livekit_ServerInfo {
        var info = Livekit_ServerInfo()
        info.edition = .standard
        info.version = configuration.serverVersion
        info.protocol = 16
        info.nodeID = "meet-server"
        return info
    }

    /// A participant whose WebSocket came back: the new session takes over its outbox.
    private func resume(
        _ p: Participant, in room: Room, outbox: AsyncStream<Livekit_SignalResponse>.Continuation, session: Int,
        lastReliableSequence: UInt32
    ) {
        p.outbox?.finish()
        p.outbox = outbox
        p.session = session
        p.signalLostAt = nil
        p.lastHeard = .now
        var r = Livekit_ReconnectResponse()
        r.serverInfo = serverInfo
        // Reliable data up to this sequence arrived: the client resends only what follows.
        r.lastMessageSeq = lastReliableSequence
        p.send(.reconnect(r))
        // The room as it is now: whoever came or went while the signal was down.
        var update = Livekit_ParticipantUpdate()
        update.participants = room.participants.filter { !$0.hidden }.map(\.info)
        p.send(.update(update))
        logger.info("resumed", metadata: ["participant": "\(p.identity)", "sid": "\(p.sid)"])
    }

    /// Takes a participant out of its room: its connections closed, the others told.
    func remove(_ p: Participant, from room: Room, reason: Livekit_DisconnectReason, tellIt: Bool = true) async {
        guard room.participants.contains(where: { $0 === p }) else { return }
        room.participants.removeAll { $0 === p }
        if tellIt {
            var leave = Livekit_LeaveRequest()
            // A server going down may come back (a restart): clients are told to try a
            // full reconnection, as LiveKit tells them; any other removal is final.
            let restart = reason == .serverShutdown
            leave.canReconnect = restart
            leave.reason = reason
            leave.action = restart ? .reconnect : .disconnect
            p.send(.leave(leave))
        }
        p.outbox?.finish()
        p.outbox = nil
        p.state = .disconnected
        let sid = p.sid
        for id in [p.publisher, p.subscriber].compactMap({ $0 }) { owners[id] = nil }
        try? await media.perform { router, now in router.removeMember(sid: sid, now: now) }
        var info = p.info
        info.disconnectReason = reason
        sendUpdate([info], in: room, except: nil)
        for track in p.tracks {
            for q in room.participants where q.subscriptions[track.sid] != nil { await unsubscribe(q, from: track.sid) }
        }
        if room.participants.isEmpty { room.emptySince = .now }
        logger.info("left", metadata: ["room": "\(room.name)", "participant": "\(p.identity)", "reason": "\(reason)"])
    }

    /// The WebSocket of `sid`'s session ended. Without a leave, the participant may
    /// resume within the resume window.
    func signalClosed(participant sid: String, session: Int) {
        guard let (p, _) = find(sid), p.session == session, p.outbox != nil else { return }
        dropSignal(p)
    }

    /// Ends `p`'s signalling connection (its WebSocket closes) but keeps the participant,
    /// its media and its tracks for the resume window.
    func dropSignal(_ p: Participant) {
        p.outbox?.finish()
        p.outbox = nil
        p.signalLostAt = .now
    }

    /// Reports who started or stopped speaking (SpeakersChanged to the room), from the
    /// audio levels the participants' packets carried since the last report.
    func reportSpeakers() async {
        let activity = (try? await media.perform { router, _ in router.takeAudioActivity() }) ?? [:]
        for room in rooms.values {
            var changed: [Livekit_SpeakerInfo] = []
            for p in room.participants {
                let level = activity[p.sid] ?? 0
                // Above -40 dBov on average counts as speaking.
                let speaking = level > 0.01
                guard speaking != p.speaking else { continue }
                p.speaking = speaking
                var info = Livekit_SpeakerInfo()
                info.sid = p.sid
                info.level = speaking ? Float(level) : 0
                info.active = speaking
                changed.append(info)
            }
            guard !changed.isEmpty else { continue }
            logger.debug(
                "speakers", metadata: ["room": "\(room.name)", "changed": "\(changed.map { ($0.sid, $0.active) })"])
            var update = Livekit_SpeakersChanged()
            update.speakers = changed
            for p in room.participants { p.send(.speakersChanged(update)) }
        }
    }

    /// Tells every room how well each participant's media arrives (ConnectionQualityUpdate,
    /// as LiveKit sends it every few seconds): from the packets its connections received
    /// and lost since the last report; a participant whose signalling is lost is `lost`.
    func reportConnectionQuality() async {
        let reception = (try? await media.perform { router, _ in router.takeReception() }) ?? [:]
        for room in rooms.values where !room.participants.isEmpty {
            var update = Livekit_ConnectionQualityUpdate()
            update.updates = room.participants.map { p in
                var info = Livekit_ConnectionQualityInfo()
                info.participantSid = p.sid
                let r = reception[p.sid] ?? (0, 0)
                info.quality = p.signalLostAt != nil ? .lost : Self.quality(received: r.received, lost: r.lost)
                info.score =
                    switch info.quality {
                    case .excellent: 5
                    case .good: 3.5
                    case .poor: 2
                    default: 0
                    }
                return info
            }
            for p in room.participants { p.send(.connectionQuality(update)) }
        }
    }

    /// The quality of a connection that received `received` packets and lost `lost` over a
    /// report's interval: under 2 % lost is excellent, under 10 % good, more poor; nothing
    /// sent (nothing published, or muted) is excellent.
    nonisolated static func quality(received: Int, lost: Int) -> Livekit_ConnectionQuality {
        let total = received + lost
        guard total > 0 else { return .excellent }
        let loss = Double(lost) / Double(total)
        return loss < 0.02 ? .excellent : loss < 0.10 ? .good : .poor
    }

    /// Periodic upkeep: silent participants, expired resume windows, empty rooms.
    func tick() async {
        if logger.logLevel <= .trace, let s = try? await media.perform({ router, _ in router.statistics }) {
            logger.trace("media", metadata: ["layers": "\(s.layerPackets)", "relayed": "\(s.relayedPackets)"])
        }
        let now = ContinuousClock.now
        for room in Array(rooms.values) {
            for p in room.participants {
                if let lost = p.signalLostAt, now - lost > configuration.resumeWindow {
                    await remove(p, from: room, reason: .signalClose, tellIt: false)
                } else if p.outbox != nil, now - p.lastHeard > configuration.pingTimeout {
                    logger.info("ping timeout", metadata: ["participant": "\(p.identity)"])
                    await remove(p, from: room, reason: .connectionTimeout)
                }
            }
            if room.participants.isEmpty, let since = room.emptySince,
                now - since > .seconds(Int64(room.emptyTimeout))
            {
                rooms[room.name] = nil
            }
        }
    }

    // MARK: helpers

    /// The sid of participant `identity` of room `room`, if it is there.
    func sid(of identity: String, in room: String) -> String? { rooms[room]?.participant(identity: identity)?.sid }

    func find(_ sid: String) -> (Participant, Room)? {
        for room in rooms.values {
            if let p = room.participant(sid: sid) { return (p, room) }
        }
        return nil
    }

    /// Sends a ParticipantUpdate with `infos` to everyone in the room but `excluded`
    /// (hidden participants are not announced).
    func sendUpdate(_ infos: [Livekit_ParticipantInfo], in room: Room, except excluded: Participant?) {
        let visible = infos.filter { !$0.permission.hidden }
        guard !visible.isEmpty else { return }
        var update = Livekit_ParticipantUpdate()
        update.participants = visible
        for other in room.participants where other !== excluded { other.send(.update(update)) }
    }

    /// Tells the others in the room about `p`'s current state.
    func broadcast(_ p: Participant, in room: Room, includingItself: Bool = false) {
        sendUpdate([p.info], in: room, except: includingItself ? nil : p)
    }
}

extension RoomDirectory {
    /// Tells every participant the server is going away, and forgets the rooms.
    func shutdown() async {
        shuttingDown = true
        for room in Array(rooms.values) {
            for p in room.participants { await remove(p, from: room, reason: .serverShutdown) }
        }
        rooms.removeAll()
    }
}
