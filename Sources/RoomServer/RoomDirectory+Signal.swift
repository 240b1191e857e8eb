import Foundation
import LiveKitProtocol
import MeetKitSDP
import Transport

// The signalling requests of a joined participant, and the media events that lead to
// signalling (trickled candidates, negotiated tracks).
extension RoomDirectory {
    /// One request from `sid`'s session `session`; requests of a replaced session are ignored.
    func receive(_ request: Livekit_SignalRequest, from sid: String, session: Int) async {
        guard let (p, room) = find(sid), p.session == session else { return }
        p.lastHeard = .now
        switch request.message {
        case .offer(let offer)?: await handleOffer(offer, from: p)
        case .answer(let answer)?: await handleAnswer(answer, from: p)
        case .trickle(let trickle)?: await handleTrickle(trickle, from: p)
        case .addTrack(let add)?: addTrack(add, from: p)
        case .mute(let mute)?: setMuted(mute, of: p, in: room)
        case .leave?: await remove(p, from: room, reason: .clientInitiated, tellIt: false)
        case .ping(let timestamp)?: p.send(.pong(timestamp))
        case .pingReq(let ping)?:
            var pong = Livekit_Pong()
            pong.lastPingTimestamp = ping.timestamp
            pong.timestamp = Int64(Date().timeIntervalSince1970 * 1000)
            p.send(.pongResp(pong))
        case .updateMetadata(let update)?: updateMetadata(update, of: p, in: room)
        case .simulate(let scenario)?: await simulate(scenario, for: p, in: room)
        case .subscription(let update)?: await updateSubscription(update, of: p, in: room)
        case .trackSetting(let settings)?: await updateTrackSettings(settings, of: p, in: room)
        default:
            break  // subscription, track settings, …: the media plane decides for itself for now
        }
    }

    /// LiveKit's test scenarios a client can ask for: a signalling connection killed at
    /// the server (node failure), a server-sent leave, one asking for a full reconnect.
    func simulate(_ scenario: Livekit_SimulateScenario, for p: Participant, in room: Room) async {
        switch scenario.scenario {
        case .nodeFailure?, .disconnectSignalOnResume?:
            dropSignal(p)
        case .serverLeave?:
            await remove(p, from: room, reason: .serverShutdown)
        case .leaveRequestFullReconnect?:
            var leave = Livekit_LeaveRequest()
            leave.canReconnect = true
            leave.action = .reconnect
            leave.reason = .unknownReason
            p.send(.leave(leave))
        default:
            break
        }
    }

    // MARK: negotiation

    /// The participant's offer for its publisher (or only) connection: applied, answered.
    func handleOffer(_ offer: Livekit_SessionDescription, from p: Participant) async {
        guard let id = p.publisher else { return }
        logger.trace("offer", metadata: ["participant": "\(p.identity)", "sdp": "\(offer.sdp)"])
        let sdp: SessionDescription
        do {
            sdp = try SessionDescription(parsing: offer.sdp)
        } catch {
            refuseDescription(p, "unparsable offer: \(error)")
            return
        }
        let early = p.earlyCandidates.removeValue(forKey: .publisher) ?? []
        // `/rtc/v1`: sections the client offers to receive on carry the tracks it waits for.
        let single = p.singlePeerConnection
        let assigned = single ? p.subscriptions : [:]
        let waiting = p.waitingSubscriptions.map { (sid: $0.key, track: $0.value.track, publisher: $0.value.publisher) }
        let publishers = Dictionary(
            uniqueKeysWithValues: waiting.compactMap { w in
                find(w.publisher).flatMap { $0.0.publisher }.map { (w.sid, $0) }
            })
        do {
            let (answer, newlyAssigned) = try await media.perform { router, now in
                try router.withConnection(id) { core in
                    try core.setRemoteDescription(sdp, now: now)
                    for c in early { try? core.addICECandidate(Self.candidate(fromInit: c), now: now) }
                    var newlyAssigned: [(sid: String, mid: String)] = []
                    if single {
                        let taken = Set(assigned.values)
                        var free = core.transceiverList.filter { $0.direction == .sendonly && !taken.contains($0.mid) }
                        for w in waiting {
                            let kind: MediaKind = w.track.type == .audio ? .audio : .video
                            guard let i = free.firstIndex(where: { $0.kind == kind }) else { continue }
                            let mid = free.remove(at: i).mid
                            try core.setTrack(streamID: "\(w.publisher)|\(w.sid)", trackID: w.sid, mid: mid)
                            newlyAssigned.append((w.sid, mid))
                        }
                        for unused in free { try core.setDirection(.inactive, mid: unused.mid) }
                    }
                    let answer = try core.createAnswer()
                    try core.setLocalDescription(answer)
                    return (answer, newlyAssigned)
                }
            }
            var response = Livekit_SessionDescription()
            response.type = "answer"
            response.sdp = answer.serialized()
            response.id = offer.id
            for (sid, mid) in newlyAssigned {
                p.subscriptions[sid] = mid
                p.waitingSubscriptions[sid] = nil
            }
            for (sid, mid) in p.singlePeerConnection ? p.subscriptions : [:] { response.midToTrackID[mid] = sid }
            logger.trace("answer", metadata: ["participant": "\(p.identity)", "sdp": "\(response.sdp)"])
            p.send(.answer(response))
            await unpublishStopped(by: sdp, of: p)
            if !newlyAssigned.isEmpty {
                let tracks = newlyAssigned.compactMap { a -> (MediaRouter.TrackEnd, MediaRouter.TrackEnd)? in
                    guard let w = waiting.first(where: { $0.sid == a.sid }), let pub = publishers[a.sid] else {
                        return nil
                    }
                    return (.init(connection: id, mid: a.mid), .init(connection: pub, mid: w.track.mid))
                }
                try? await media.perform { router, now in
                    for (subscribed, published) in tracks { router.subscribe(subscribed, to: published, now: now) }
                }
            }
        } catch {
            refuseDescription(p, "offer refused: \(error)")
        }
    }

    /// Unpublishes the tracks of `p` whose sections `offer` no longer sends on (a client
    /// removes a track by renegotiating): the owner gets TrackUnpublished, the room a
    /// ParticipantUpdate, and their subscribers stop receiving them.
    func unpublishStopped(by offer: SessionDescription, of p: Participant) async {
        guard let room = find(p.sid)?.1 else { return }
        let sending = Set(
            offer.media.filter { $0.port != 0 && ($0.direction ?? .sendrecv).sends }
                .compactMap(\.mid))
        let stopped = p.tracks.filter { !$0.mid.isEmpty && !sending.contains($0.mid) }
        guard !stopped.isEmpty else { return }
        p.tracks.removeAll { t in stopped.contains { $0.sid == t.sid } }
        p.version += 1
        for track in stopped {
            var response = Livekit_TrackUnpublishedResponse()
            response.trackSid = track.sid
            p.send(.trackUnpublished(response))
            for q in room.participants where q !== p { await unsubscribe(q, from: track.sid) }
        }
        broadcast(p, in: room)
    }

    /// The participant's answer to the server's subscriber offer.
    func handleAnswer(_ answer: Livekit_SessionDescription, from p: Participant) async {
        guard let id = p.subscriber, p.awaitingAnswer else { return }
        let early = p.earlyCandidates.removeValue(forKey: .subscriber) ?? []
        do {
            let sdp = try SessionDescription(parsing: answer.sdp)
            try await media.perform { router, now in
                try router.withConnection(id) { core in
                    try core.setRemoteDescription(sdp, now: now)
                    for c in early { try? core.addICECandidate(Self.candidate(fromInit: c), now: now) }
                }
            }
        } catch {
            refuseDescription(p, "answer refused: \(error)")
            return
        }
        p.awaitingAnswer = false
        // What was just negotiated starts with a keyframe.
        let sources = Array(p.subscriptions.values)
        try? await media.perform { router, now in
            for mid in sources { router.requestKeyframe(for: .init(connection: id, mid: mid), now: now) }
        }
        if p.renegotiate {
            p.renegotiate = false
            await negotiateSubscriber(p)
        }
    }

    /// Offers the subscriber connection's current transceivers and channels (one offer
    /// at a time: a change while one is out is offered once it is answered).
    func negotiateSubscriber(_ p: Participant) async {
        guard let id = p.subscriber else { return }
        guard !p.awaitingAnswer else {
            p.renegotiate = true
            return
        }
        p.awaitingAnswer = true
        do {
            let offer = try await media.perform { router, _ in
                try router.withConnection(id) { core in
                    let offer = core.createOffer()
                    try core.setLocalDescription(offer)
                    return offer
                }
            }
            var sd = Livekit_SessionDescription()
            sd.type = "offer"
            sd.sdp = offer.serialized()
            sd.id = p.nextOfferID
            p.nextOfferID += 1
            p.send(.offer(sd))
        } catch {
            p.awaitingAnswer = false
            logger.warning("subscriber offer failed", metadata: ["participant": "\(p.identity)", "error": "\(error)"])
        }
    }

    /// New ICE credentials for `p`'s subscriber connection, offered to it (the client said
    /// that connection failed: the network changed or went away).
    func restartSubscriberICE(_ p: Participant) async {
        guard let id = p.subscriber else { return }
        do {
            try await media.perform { router, now in try router.withConnection(id) { $0.restartICE(now: now) } }
        } catch {
            logger.warning(
                "subscriber ICE restart failed", metadata: ["participant": "\(p.identity)", "error": "\(error)"])
            return
        }
        // An offer still unanswered (lost with the connection's signal) does not hold this one.
        p.awaitingAnswer = false
        logger.info("subscriber ICE restart", metadata: ["participant": "\(p.identity)"])
        await negotiateSubscriber(p)
    }

    /// A description the server cannot use: the participant is told with a leave.
    private func refuseDescription(_ p: Participant, _ why: String) {
        logger.warning("negotiation failed", metadata: ["participant": "\(p.identity)", "error": "\(why)"])
        var leave = Livekit_LeaveRequest()
        leave.reason = .stateMismatch
        leave.action = .disconnect
        p.send(.leave(leave))
    }

    // MARK: trickle

    func handleTrickle(_ trickle: Livekit_TrickleRequest, from p: Participant) async {
        let id = trickle.target == .subscriber ? p.subscriber : p.publisher
        guard let id else { return }
        let initJSON = trickle.candidateInit
        let applied = try? await media.perform { router, now in
            try router.withConnection(id) { core -> Bool in
                guard core.remoteDescription != nil else { return false }
                try? core.addICECandidate(Self.candidate(fromInit: initJSON), now: now)
                return true
            }
        }
        if applied == false {
            // Before the description it belongs to: kept until that arrives (bounded).
            var early = p.earlyCandidates[trickle.target] ?? []
            if early.count < 64 { early.append(initJSON) }
            p.earlyCandidates[trickle.target] = early
        }
    }

    /// The candidate of a trickled RTCIceCandidateInit JSON; nil for end-of-candidates
    /// (an empty candidate) and for what does not parse.
    nonisolated static func candidate(fromInit json: String) -> ICECandidate? {
        CandidateInit.attributeValue(fromJSON: json).flatMap { try? ICECandidate(parsing: $0) }
    }

    /// The RTCIceCandidateInit JSON LiveKit clients expect for a server candidate.
    nonisolated static func candidateInit(_ candidate: ICECandidate?, mid: String) -> String {
        CandidateInit.json(attributeValue: candidate?.attributeValue, mid: mid)
    }

    // MARK: tracks and metadata

    /// AddTrackRequest: the track gets its sid now; it is announced to the others once its
    /// media section is negotiated.
    func addTrack(_ add: Livekit_AddTrackRequest, from p: Participant) {
        guard p.mayPublish(add.source == .unknown ? (add.type == .audio ? .microphone : .camera) : add.source) else {
            var response = Livekit_RequestResponse()
            response.reason = .notAllowed
            response.message = "does not have permission to publish"
            response.request = .addTrack(add)
            p.send(.requestResponse(response))
            return
        }
        var track = Livekit_TrackInfo()
        track.sid = ServerID.make("TR_")
        track.type = add.type
        track.name = add.name
        track.muted = add.muted
        track.width = add.width
        track.height = add.height
        track.source = add.source
        track.mimeType = add.type == .audio ? "audio/opus" : "video/VP8"
        track.layers = add.layers
        track.simulcast = add.layers.count > 1
        track.stream = add.stream
        track.audioFeatures = add.audioFeatures
        track.disableRed = add.disableRed
        p.pendingTracks[add.cid] = track
        var published = Livekit_TrackPublishedResponse()
        published.cid = add.cid
        published.track = track
        p.send(.trackPublished(published))
    }

    func setMuted(_ mute: Livekit_MuteTrackRequest, of p: Participant, in room: Room) {
        guard let i = p.tracks.firstIndex(where: { $0.sid == mute.sid }) else { return }
        guard p.tracks[i].muted != mute.muted else { return }
        p.tracks[i].muted = mute.muted
        p.version += 1
        broadcast(p, in: room)
    }

    func updateMetadata(_ update: Livekit_UpdateParticipantMetadata, of p: Participant, in room: Room) {
        guard p.canUpdateMetadata else {
            var response = Livekit_RequestResponse()
            response.requestID = update.requestID
            response.reason = .notAllowed
            response.message = "does not have permission to update own metadata"
            response.request = .updateMetadata(update)
            p.send(.requestResponse(response))
            return
        }
        if !update.name.isEmpty { p.name = update.name }
        if !update.metadata.isEmpty { p.metadata = update.metadata }
        for (key, value) in update.attributes {
            // An empty value removes the attribute.
            p.attributes[key] = value.isEmpty ? nil : value
        }
        p.version += 1
        if update.requestID != 0 {
            var response = Livekit_RequestResponse()
            response.requestID = update.requestID
            response.reason = .ok
            p.send(.requestResponse(response))
        }
        broadcast(p, in: room, includingItself: true)
    }

    // MARK: media events

    func mediaEvent(_ event: MediaRouter.Event) async {
        switch event {
        case .localCandidate(let id, let candidate):
            guard let owner = owners[id], let (p, _) = find(owner.sid) else { return }
            var trickle = Livekit_TrickleRequest()
            trickle.target = id == p.subscriber ? .subscriber : .publisher
            trickle.candidateInit = Self.candidateInit(candidate, mid: "0")
            p.send(.trickle(trickle))
        case .connectionState(let id, let state):
            guard let owner = owners[id], let (p, room) = find(owner.sid) else { return }
            if state == .connected, p.state != .active {
                p.state = .active
                broadcast(p, in: room)
            }
        case .remoteTrack(let id, let mid, _, _, let trackID):
            guard let owner = owners[id], let (p, room) = find(owner.sid), let trackID,
                var track = p.pendingTracks.removeValue(forKey: trackID)
            else { return }
            track.mid = mid
            p.tracks.append(track)
            p.version += 1
            broadcast(p, in: room)
            for q in room.participants where q !== p && q.autoSubscribe {
                await subscribe(q, to: track, of: p)
            }
        }
    }

    // MARK: subscriptions

    /// Relays `track` of `p` to `q`: a send-only transceiver on `q`'s subscriber connection,
    /// announced as stream `PA_…|TR_…` (how LiveKit's clients find the track), then offered.
    func subscribe(_ q: Participant, to track: Livekit_TrackInfo, of p: Participant) async {
        guard q !== p, q.canSubscribe, q.subscriptions[track.sid] == nil, q.waitingSubscriptions[track.sid] == nil,
            !q.subscribing.contains(track.sid), !track.mid.isEmpty, p.publisher != nil
        else { return }
        if q.singlePeerConnection {
            // One connection, offered by the client: ask it for a section to receive on.
            q.waitingSubscriptions[track.sid] = (track, p.sid)
            var requirement = Livekit_MediaSectionsRequirement()
            if track.type == .audio { requirement.numAudios = 1 } else { requirement.numVideos = 1 }
            q.send(.mediaSectionsRequirement(requirement))
            return
        }
        guard let sub = q.subscriber, let pub = p.publisher else { return }
        let kind: MediaKind = track.type == .audio ? .audio : .video
        let (streamID, trackID, publishedMid) = ("\(p.sid)|\(track.sid)", track.sid, track.mid)
        // Two requests for the same track (auto-subscribe racing a newcomer's catch-up, or
        // UpdateSubscription) must not add two sections with the same track: libwebrtc
        // refuses such an offer.
        q.subscribing.insert(track.sid)
        defer { q.subscribing.remove(track.sid) }
        do {
            let mid = try await media.perform { router, now in
                let mid = try router.withConnection(sub) { core in
                    core.addTransceiver(kind, direction: .sendonly, streamID: streamID, trackID: trackID)
                }
                router.subscribe(
                    .init(connection: sub, mid: mid), to: .init(connection: pub, mid: publishedMid), now: now)
                return mid
            }
            q.subscriptions[track.sid] = mid
        } catch {
            logger.warning("subscription failed", metadata: ["participant": "\(q.identity)", "error": "\(error)"])
            return
        }
        await negotiateSubscriber(q)
    }

    /// Stops relaying `trackSid` to `q` (its transceiver becomes inactive in the next offer).
    func unsubscribe(_ q: Participant, from trackSid: String) async {
        q.waitingSubscriptions[trackSid] = nil
        guard let mid = q.subscriptions.removeValue(forKey: trackSid), let sub = q.downlink else { return }
        if q.singlePeerConnection {
            // The section is free for another track at the client's next offer.
            try? await media.perform { router, _ in router.unsubscribe(.init(connection: sub, mid: mid)) }
            return
        }
        try? await media.perform { router, _ in
            router.unsubscribe(.init(connection: sub, mid: mid))
            try router.withConnection(sub) { core in try core.setDirection(.inactive, mid: mid) }
        }
        await negotiateSubscriber(q)
    }

    /// UpdateSubscription: subscribe to (or drop) the named tracks, by sid.
    func updateSubscription(_ update: Livekit_UpdateSubscription, of q: Participant, in room: Room) async {
        var sids = update.trackSids
        for pt in update.participantTracks { sids += pt.trackSids }
        for sid in sids {
            if update.subscribe {
                guard let p = room.participants.first(where: { $0.tracks.contains { $0.sid == sid } }),
                    let track = p.tracks.first(where: { $0.sid == sid })
                else { continue }  // an unknown track is ignored
                await subscribe(q, to: track, of: p)
            } else {
                await unsubscribe(q, from: sid)
            }
        }
    }

    /// UpdateTrackSettings: the simulcast quality a subscriber wants of its tracks — given
    /// as a quality, or as the size it displays them at (then the smallest layer that
    /// covers it) — or none while disabled.
    func updateTrackSettings(_ settings: Livekit_UpdateTrackSettings, of q: Participant, in room: Room) async {
        guard let sub = q.downlink else { return }
        let bySize = settings.width > 0 || settings.height > 0
        let wanted = settings.trackSids.compactMap { sid -> (mid: String, quality: Int)? in
            guard let mid = q.subscriptions[sid] else { return nil }
            let layers = room.participants.lazy.compactMap { $0.tracks.first { $0.sid == sid } }.first?.layers ?? []
            let quality =
                bySize ? Self.quality(width: settings.width, height: settings.height, layers: layers) : settings.quality
            return (mid, Self.rank(quality))
        }
        let paused = settings.disabled || (settings.quality == .off && !bySize)
        try? await media.perform { router, now in
            for (mid, quality) in wanted {
                router.select(.init(connection: sub, mid: mid), quality: quality, paused: paused, now: now)
            }
        }
    }

    /// The quality of the smallest of `layers` at least `width`×`height` (the largest when
    /// none is), as LiveKit picks a simulcast layer for the size a subscriber shows.
    nonisolated static func quality(width: UInt32, height: UInt32, layers: [Livekit_VideoLayer]) -> Livekit_VideoQuality
    {
        // In 64 bits: a client announces its layers' sizes, and two 32-bit ones overflow.
        let sorted = layers.sorted { UInt64($0.width) * UInt64($0.height) < UInt64($1.width) * UInt64($1.height) }
        guard let largest = sorted.last else { return .high }
        return (sorted.first { $0.width >= width && $0.height >= height } ?? largest).quality
    }

    /// A quality as the router ranks layers: 0 low, 1 medium, 2 high.
    nonisolated static func rank(_ quality: Livekit_VideoQuality) -> Int {
        switch quality {
        case .low: 0
        case .medium: 1
        default: 2
        }
    }

    /// Subscribes a newcomer to every track already published in the room.
    func subscribeToPublished(_ q: Participant, in room: Room) async {
        guard q.autoSubscribe else { return }
        for p in room.participants where p !== q {
            for track in p.tracks { await subscribe(q, to: track, of: p) }
        }
    }
}
