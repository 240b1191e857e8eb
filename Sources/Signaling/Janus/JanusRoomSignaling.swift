import Logging
import MeetKitSDP
import NIOCore
import NIOPosix
import Synchronization

/// ``RoomSignaling`` for Janus's VideoRoom plugin (Janus ≥ 1.0, multistream): a publisher
/// handle joins the room and publishes this client's offer; one subscriber handle carries
/// every remote track this client asks for, re-offered by Janus as feeds come and go.
/// Room ids are VideoRoom's numbers, given as strings.
///
/// ```swift
/// let signaling = try await JanusRoomSignaling.connect(url: "ws://10.77.0.1:8188")
/// let info = try await signaling.join(room: "1234", displayName: "recorder")
/// ```
public final class JanusRoomSignaling: RoomSignaling {
    public let events: AsyncStream<RoomSignalingEvent>
    /// The Janus session underneath.
    public let session: JanusSession
    private let publisher: JanusHandle
    private let sink: AsyncStream<RoomSignalingEvent>.Continuation
    private let state = Mutex(State())
    private let logger: Logger

    private struct State {
        var room: Int64?
        var localID: Int64?
        var privateID: Int64?
        var participants: [Int64: ParticipantInfo] = [:]
        var subscriber: JanusHandle?
        /// The session watcher and the handles' event readers, awaited by leave().
        var tasks: [Task<Void, Never>] = []
        var publishing = false
        var publishedSources: [String: TrackSource] = [:]
        var left = false
    }

    private init(session: JanusSession, publisher: JanusHandle, logger: Logger) {
        self.session = session
        self.publisher = publisher
        self.logger = logger
        (events, sink) = AsyncStream.makeStream(of: RoomSignalingEvent.self)
    }

    /// Connects to Janus's WebSocket API and attaches the publisher handle.
    public static func connect(
        url: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        requestTimeout: Duration = .seconds(10), logger: Logger = Logger(label: "meetkit.janus.videoroom")
    ) async throws(JanusError) -> JanusRoomSignaling {
        let session = try await JanusSession.connect(
            url: url, group: group, requestTimeout: requestTimeout, logger: logger)
        let publisher: JanusHandle
        do {
            publisher = try await session.attach(plugin: "janus.plugin.videoroom")
        } catch {
            await session.destroy()
            throw error
        }
        let signaling = JanusRoomSignaling(session: session, publisher: publisher, logger: logger)
        signaling.watchSession()
        return signaling
    }

    private func watchSession() {
        let task = Task { [session, sink] in
            var reason = "the connection to Janus ended"
            for await r in session.disconnected { reason = r }
            if !self.state.withLock({ $0.left }) { sink.yield(.disconnected(reason: reason)) }
            sink.finish()
        }
        state.withLock { $0.tasks.append(task) }
    }

    // MARK: RoomSignaling

    public func join(room: String, displayName: String) async throws -> RoomJoinInfo {
        guard let roomID = Int64(room) else {
            throw JanusError.plugin(code: JanusError.noSuchRoom, reason: "VideoRoom rooms are numbers, not \(room)")
        }
        let reply = try await publisher.request([
            "request": "join", "ptype": "publisher", "room": .int(roomID), "display": .string(displayName),
        ])
        guard reply.data["videoroom"]?.string == "joined", let id = reply.data["id"]?.int64 else {
            throw JanusError.unexpectedResponse(reply.data.serialized)
        }
        var others: [ParticipantInfo] = []
        state.withLock { s in
            s.room = roomID
            s.localID = id
            s.privateID = reply.data["private_id"]?.int64
            for p in Self.publishers(in: reply.data["publishers"]) + Self.attendees(in: reply.data["attendees"])
            where Int64(p.id) != id {
                if let key = Int64(p.id) { s.participants[key] = p }
            }
            others = Array(s.participants.values).sorted { $0.id < $1.id }
        }
        // Who is talking already: Janus says so in the list, not as an event.
        for p in reply.data["publishers"]?.array ?? [] where p["talking"]?.bool == true {
            if let pid = p["id"]?.int64, pid != id { sink.yield(.speaking(participantID: String(pid), true)) }
        }
        let task = Task { [publisher] in
            for await event in publisher.events { self.handlePublisherEvent(event) }
        }
        state.withLock { $0.tasks.append(task) }
        return RoomJoinInfo(
            localID: String(id), participants: others,
            local: ParticipantInfo(id: String(id), name: displayName, identity: String(id)))
    }

    public func publish(offer: SessionDescription, tracks: [PublishedTrack]) async throws -> SessionDescription {
        let descriptions: [JSONValue] = tracks.map {
            ["mid": .string($0.mid), "description": .string($0.source.rawValue)]
        }
        // The first offer publishes; later ones (a track added) renegotiate with configure.
        let request: JSONValue = state.withLock { s in
            for t in tracks { s.publishedSources[t.mid] = t.source }
            return s.publishing ? "configure" : "publish"
        }
        let reply = try await publisher.request(
            ["request": request, "descriptions": .array(descriptions)],
            jsep: ["type": "offer", "sdp": .string(offer.serialized())])
        let answer = try Self.sdp(reply, expecting: "answer")
        state.withLock { $0.publishing = true }
        return answer
    }

    public func unpublish() async throws {
        _ = try await publisher.request(["request": "unpublish"])
        state.withLock { $0.publishing = false }
    }

    /// Subscribes; a feed Janus does not have ready yet (428 "No such feed": its publisher's
    /// media is not up) is asked for again, every 200 ms for up to 2 s.
    public func subscribe(to tracks: [(participantID: String, trackID: String)]) async throws {
        for attempt in 0..<10 {
            do {
                try await subscribeOnce(to: tracks)
                return
            } catch JanusError.plugin(let code, _) where code == JanusError.noSuchFeed && attempt < 9 {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func subscribeOnce(to tracks: [(participantID: String, trackID: String)]) async throws {
        let streams: [JSONValue] = tracks.compactMap { t in
            Int64(t.participantID).map { ["feed": .int($0), "mid": .string(t.trackID)] }
        }
        guard !streams.isEmpty else { return }
        let (room, privateID, existing) = state.withLock { ($0.room, $0.privateID, $0.subscriber) }
        guard let room else { throw JanusError.unexpectedResponse("subscribe before join") }
        let reply: JanusResponse
        if let handle = existing {
            reply = try await handle.request(["request": "update", "subscribe": .array(streams)])
        } else {
            let handle = try await session.attach(plugin: "janus.plugin.videoroom")
            var body: [String: JSONValue] = [
                "request": "join", "ptype": "subscriber", "room": .int(room), "streams": .array(streams),
                "use_msid": true,
            ]
            if let privateID { body["private_id"] = .int(privateID) }
            let task = Task { [handle] in
                for await event in handle.events { self.handleSubscriberEvent(event) }
            }
            state.withLock {
                $0.subscriber = handle
                $0.tasks.append(task)
            }
            reply = try await handle.request(.object(body))
        }
        offerSubscription(reply.data, jsep: reply.jsep)
    }

    public func unsubscribe(from tracks: [(participantID: String, trackID: String)]) async throws {
        guard let handle = state.withLock({ $0.subscriber }) else { return }
        let streams: [JSONValue] = tracks.compactMap { t in
            Int64(t.participantID).map { ["feed": .int($0), "mid": .string(t.trackID)] }
        }
        let reply = try await handle.request(["request": "update", "unsubscribe": .array(streams)])
        offerSubscription(reply.data, jsep: reply.jsep)
    }

    public func answerSubscription(_ answer: SessionDescription) async throws {
        guard let handle = state.withLock({ $0.subscriber }) else {
            throw JanusError.unexpectedResponse("no subscription to answer")
        }
        _ = try await handle.request(
            ["request": "start"], jsep: ["type": "answer", "sdp": .string(answer.serialized())])
    }

    /// Trickles on the publisher or subscriber handle (`trickle`, `completed` at the end).
    public func trickle(_ candidate: ICECandidate?, publisher: Bool) async throws {
        let handle: JanusHandle? = publisher ? self.publisher : state.withLock { $0.subscriber }
        guard let handle else { throw JanusError.unexpectedResponse("trickle before a subscription") }
        try await handle.trickle(candidate: candidate?.attributeValue)
    }

    /// Mutes by asking Janus to stop relaying the stream (`send: false`) and by marking its
    /// description (`microphone;muted`): Janus tells the other participants about changed
    /// descriptions, not about `send`, so the description is how they learn of the mute.
    public func setMuted(_ muted: Bool, mid: String) async throws {
        let source = state.withLock { $0.publishedSources[mid] } ?? .unknown
        _ = try await publisher.request([
            "request": "configure", "streams": [["mid": .string(mid), "send": .bool(!muted)]],
            "descriptions": [["mid": .string(mid), "description": .string(source.rawValue + (muted ? ";muted" : ""))]],
        ])
    }

    public func leave() async {
        let (subscriber, tasks) = state.withLock { s -> (JanusHandle?, [Task<Void, Never>]) in
            s.left = true
            return (s.subscriber, s.tasks)
        }
        _ = try? await publisher.request(["request": "leave"])
        if let subscriber { try? await subscriber.detach() }
        try? await publisher.detach()
        await session.destroy()
        for t in tasks { await t.value }
    }

    // MARK: events

    private func handlePublisherEvent(_ event: JanusHandleEvent) {
        switch event {
        case .plugin(let data, _):
            handleRoomEvent(data)
        case .webrtcUp:
            sink.yield(.mediaConnected(publisher: true))
        case .hangup(let reason):
            logger.debug("publisher connection hung up", metadata: ["reason": "\(reason ?? "-")"])
        default: break
        }
    }

    private func handleSubscriberEvent(_ event: JanusHandleEvent) {
        switch event {
        case .plugin(let data, let jsep):
            if data["videoroom"]?.string == "updated" || data["videoroom"]?.string == "attached" {
                offerSubscription(data, jsep: jsep)
            } else {
                handleRoomEvent(data)
            }
        case .webrtcUp:
            sink.yield(.mediaConnected(publisher: false))
        default: break
        }
    }

    private func offerSubscription(_ data: JSONValue, jsep: JSONValue?) {
        guard let jsep, jsep["type"]?.string == "offer", let text = jsep["sdp"]?.string,
            let sdp = try? SessionDescription(parsing: text)
        else { return }
        let tracks: [SubscribedTrack] = (data["streams"]?.array ?? []).compactMap { s in
            guard s["active"]?.bool != false, let mid = s["mid"]?.string, let feed = s["feed_id"]?.int64,
                let feedMid = s["feed_mid"]?.string, let kind = s["type"]?.string.flatMap(MediaKind.init(rawValue:))
            else { return nil }
            return SubscribedTrack(mid: mid, participantID: String(feed), trackID: feedMid, kind: kind)
        }
        sink.yield(.subscriberOffer(sdp, tracks: tracks))
    }

    /// VideoRoom notifications (RFC-less, Janus's own): new or changed publishers,
    /// unpublished feeds, leaving participants, joining attendees, talking.
    private func handleRoomEvent(_ data: JSONValue) {
        let local = state.withLock { $0.localID }
        for p in Self.publishers(in: data["publishers"]) where Int64(p.id) != local {
            let isNew = state.withLock { s -> Bool in
                let key = Int64(p.id)!
                let known = s.participants[key] != nil
                s.participants[key] = p
                return !known
            }
            sink.yield(isNew ? .participantJoined(p) : .tracksChanged(participantID: p.id, tracks: p.tracks))
        }
        if let joining = data["joining"], let id = joining["id"]?.int64, id != local {
            let p = ParticipantInfo(id: String(id), name: joining["display"]?.string ?? "", identity: String(id))
            let isNew = state.withLock { s -> Bool in
                guard s.participants[id] == nil else { return false }
                s.participants[id] = p
                return true
            }
            if isNew { sink.yield(.participantJoined(p)) }
        }
        if let id = data["unpublished"]?.int64, id != local {
            state.withLock { $0.participants[id]?.tracks = [] }
            sink.yield(.tracksChanged(participantID: String(id), tracks: []))
        }
        if let id = data["leaving"]?.int64, id != local {
            let known = state.withLock { $0.participants.removeValue(forKey: id) != nil }
            if known { sink.yield(.participantLeft(id: String(id), reason: data["reason"]?.string)) }
        }
        if let kind = data["videoroom"]?.string, kind == "talking" || kind == "stopped-talking",
            let id = data["id"]?.int64
        {
            sink.yield(.speaking(participantID: String(id), kind == "talking"))
        }
    }

    private static func publishers(in value: JSONValue?) -> [ParticipantInfo] {
        (value?.array ?? []).compactMap { p in
            guard let id = p["id"]?.int64 else { return nil }
            let tracks: [TrackInfo] = (p["streams"]?.array ?? []).compactMap { s in
                guard s["disabled"]?.bool != true, let mid = s["mid"]?.string,
                    let kind = s["type"]?.string.flatMap(MediaKind.init(rawValue:))
                else { return nil }
                // MeetKit's descriptions: "camera", "screen;muted", …
                let parts = (s["description"]?.string ?? "").split(separator: ";")
                let source =
                    parts.first.flatMap { TrackSource(rawValue: String($0)) }
                    ?? (kind == .audio ? .microphone : .camera)
                let muted = parts.dropFirst().contains("muted") || s["send"]?.bool == false
                return TrackInfo(id: mid, kind: kind, source: source, muted: muted)
            }
            return ParticipantInfo(
                id: String(id), name: p["display"]?.string ?? "", tracks: tracks, identity: String(id))
        }
    }

    private static func attendees(in value: JSONValue?) -> [ParticipantInfo] {
        (value?.array ?? []).compactMap { a in
            a["id"]?.int64.map {
                ParticipantInfo(id: String($0), name: a["display"]?.string ?? "", identity: String($0))
            }
        }
    }

    private static func sdp(_ reply: JanusResponse, expecting type: String) throws -> SessionDescription {
        guard let jsep = reply.jsep, jsep["type"]?.string == type, let text = jsep["sdp"]?.string else {
            throw JanusError.unexpectedResponse("no \(type) in \(reply.data.serialized)")
        }
        do {
            return try SessionDescription(parsing: text)
        } catch {
            throw JanusError.unexpectedResponse("Janus's \(type) does not parse: \(error)")
        }
    }
}
