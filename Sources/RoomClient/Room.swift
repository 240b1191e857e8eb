import Codec
import Foundation
import Logging
import NIOCore
import NIOPosix
import Signaling
import Synchronization
import Transport

/// A meeting room, independent of the server: connect to LiveKit (Visio, meet-server) or
/// Janus VideoRoom, see participants come and go with their tracks, receive their audio
/// and video decoded or encoded — in the room's events or per track
/// (``frames(participantID:trackID:buffer:)``) —, publish microphone, camera and screen
/// tracks from raw or encoded frames, send data and chat, and leave cleanly. A lost
/// connection is resumed or made again (``RoomEvent/reconnecting(reason:)``, then
/// ``RoomEvent/reconnected``).
///
/// The media travel as SFUs expect: a publisher connection this side offers and a
/// subscriber connection the server offers (and re-offers as tracks come and go) — or, on
/// LiveKit's `/rtc/v1`, one connection this side offers, which also receives.
///
/// ```swift
/// var options = RoomOptions()
/// options.audioOutput = .decoded(audioSampleRate: 16_000)     // for a speech engine
/// let room = try await Room.connect(url: "wss://livekit.example", token: token, options: options)
/// for await event in room.events {
///     if case .audio(let who, _, let pcm) = event { transcriber.feed(pcm, speaker: who) }
/// }
/// ```
public final class Room: Sendable {
    /// Everything the room reports, until ``leave()`` or a disconnection (nothing when
    /// ``RoomOptions/eventHandler`` takes the events).
    public let events: AsyncStream<RoomEvent>
    /// This participant's id on the server (a new one after a full reconnection,
    /// ``RoomEvent/reconnected``).
    public var localParticipantID: String { state.withLock { $0.localID } }
    /// The options it joined with.
    public let options: RoomOptions
    /// The server protocol adapter the room was joined through (``JanusRoomSignaling``,
    /// ``LiveKitRoomSignaling``), for what is particular to a server.
    public let signaling: any RoomSignaling
    let sink: AsyncStream<RoomEvent>.Continuation
    /// One call of ``RoomOptions/eventHandler`` at a time.
    let handlerTurn = Mutex(())
    private let group: any EventLoopGroup
    private let addresses: [IPAddress]
    let state = Mutex(State())
    let logger = Logger(label: "meetkit.room")
    /// Subscription requests, subscriber answers and publisher offers run one at a time,
    /// in order: the server's offers and this side's requests must not interleave.
    let serial: AsyncStream<@Sendable () async -> Void>.Continuation
    private let serialWork: AsyncStream<@Sendable () async -> Void>

    struct State {
        var localID = ""
        /// This participant as the server describes it.
        var localInfo = ParticipantInfo(id: "", name: "")
        /// Who is speaking now.
        var speaking: Set<String> = []
        /// The connection quality the server last reported, by participant id.
        var connectionQuality: [String: ConnectionQuality] = [:]
        /// The quality asked of remote video tracks, by "participant/track".
        var qualities: [String: VideoQuality] = [:]
        var connection = RoomConnectionState.connected
        /// Other consumers of the events (``makeEvents(buffer:)``), by number.
        var observers: Observers = [:]
        /// Per-track media consumers (``frames(participantID:trackID:buffer:)``), by track
        /// then number.
        var frameSinks: [TrackKey: [Int: FrameSink]] = [:]
        var nextConsumer = 0
        var participants: [String: ParticipantInfo] = [:]
        var subscribed: Set<String> = []  // "participant/track" asked for
        var subscriberTracks: [String: SubscribedTrack] = [:]  // by subscriber mid
        var announced: Set<String> = []  // subscriber mids announced as trackSubscribed
        var publisher: PeerConnection?
        /// The publisher connection's start, shared by whoever needs it first.
        var publisherStart: Task<PeerConnection, any Error>?
        var subscriber: PeerConnection?
        /// Local candidates gathered after a description, for the server (by connection).
        var publisherTrickle: CandidateTrickler?
        var subscriberTrickle: CandidateTrickler?
        var localTracks: [LocalTrack] = []
        /// The publisher mid each local track has now, by the mid it was published on (they
        /// differ after a full reconnection, which publishes again on a new connection).
        var localMids: [String: String] = [:]
        /// A full reconnection is under way: sending is skipped meanwhile.
        var rejoining = false
        /// What is being recovered: the room is `reconnecting` while this is not empty.
        var recovering: Set<Recovery> = []
        /// Each connection's last state, and whether a task is recovering it after a failure.
        var publisherState: PeerConnectionState?
        var recoveringPublisher = false
        var subscriberState: PeerConnectionState?
        var recoveringSubscriber = false
        /// This side's data channels on the publisher connection, by label.
        var channels: [String: DataChannel] = [:]
        /// The room's metadata, as the server last reported it.
        var roomMetadata = ""
        /// Chat messages seen (sender/id → text), the latest 1 000: each is reported once
        /// whichever of its two forms comes first, and again only when edited.
        var chatSeen: [String: String] = [:]
        /// The last version sent of each chat message this participant edited, by id.
        var chatVersions: [String: Int] = [:]
        var chatOrder: [String] = []
        /// When the latest reactions were sent (at most 10 a second).
        var reactionTimes: [ContinuousClock.Instant] = []
        /// Server candidates that came before the description they belong to, per
        /// connection (true: the publisher), and whether that connection has one.
        var earlyCandidates: [Bool: [ICECandidate]] = [:]
        /// The Visio room API the room was joined through.
        var visioAccess: VisioRoom.Access?
        /// When data (packets, text or byte streams) was last sent.
        var lastDataSent: ContinuousClock.Instant?
        /// Receiving sections the server asked for (`/rtc/v1`) and not yet added.
        var receiveSectionsWanted = (audio: 0, video: 0)
        var described: Set<Bool> = []
        var tasks: [Task<Void, Never>] = []
        var left = false
    }

    private init(
        signaling: any RoomSignaling, localID: String, options: RoomOptions, group: any EventLoopGroup,
        addresses: [IPAddress]
    ) {
        self.signaling = signaling
        state.withLock { $0.localID = localID }
        self.options = options
        self.group = group
        self.addresses = addresses
        (events, sink) = AsyncStream.makeStream(of: RoomEvent.self)
        if options.eventHandler != nil { sink.finish() }  // the handler takes the events
        (serialWork, serial) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
    }

    /// Joins `room` as `displayName` through `signaling`.
    /// - Throws: the signaling's typed error (e.g. ``JanusError/plugin(code:reason:)`` 426
    ///   for a room that does not exist).
    public static func join(
        signaling: any RoomSignaling, room: String, displayName: String, options: RoomOptions = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Room {
        let addresses = try options.localAddresses ?? HostAddresses.discover()
        let info = try await signaling.join(room: room, displayName: displayName)
        let room = Room(
            signaling: signaling, localID: info.localID, options: options, group: group, addresses: addresses)
        room.state.withLock { s in
            s.localInfo = info.local ?? ParticipantInfo(id: info.localID, name: displayName)
        }
        room.start(existing: info.participants)
        do {
            try await room.openDataChannels()
        } catch {
            await room.leave()
            throw error
        }
        return room
    }

    /// Opens the data channels the server wants on the publisher connection (LiveKit's
    /// `_reliable` and `_lossy`) and negotiates them, so that data flows from the join on.
    private func openDataChannels() async throws {
        guard !signaling.publisherDataChannels.isEmpty else { return }
        let pc = try await publisherConnection()
        try await createDataChannels(on: pc)
        signaling.attachDataSender { [weak self] label, bytes in
            guard let channel = self?.state.withLock({ $0.channels[label] }) else {
                throw RoomSignalingError.dataChannelUnavailable(label)
            }
            try await channel.opened()
            try await channel.send(bytes)
        }
        try await inOrder { try await self.negotiatePublisher(pc, tracks: []) }
    }

    /// Creates the data channels the server wants on `pc`, read from now on.
    func createDataChannels(on pc: PeerConnection) async throws {
        var channels: [String: DataChannel] = [:]
        for r in signaling.publisherDataChannels {
            let channel = try await pc.createDataChannel(
                label: r.label, options: DataChannelOptions(ordered: r.ordered, maxRetransmits: r.maxRetransmits))
            channels[r.label] = channel
            read(channel)
        }
        state.withLock { $0.channels = channels }
    }

    /// Runs `body` in turn with the subscription work and the other negotiations.
    /// - Throws: what `body` throws; ``RoomError/notConnected`` once the room was left.
    func inOrder<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let queued = serial.yield {
                do {
                    continuation.resume(returning: try await body())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            if case .terminated = queued { continuation.resume(throwing: RoomError.notConnected) }
        }
    }

    /// Hands every binary message of `channel` to the signaling, which decodes it.
    private func read(_ channel: DataChannel) {
        let task = Task { [signaling] in
            for await message in channel.messages {
                if case .binary(let bytes) = message { signaling.receiveData(bytes, label: channel.label) }
            }
        }
        state.withLock { $0.tasks.append(task) }
    }

    /// Reads the data channels the server opens on `pc`.
    private func readRemoteChannels(of pc: PeerConnection) {
        let task = Task {
            for await channel in pc.dataChannels { self.read(channel) }
        }
        state.withLock { $0.tasks.append(task) }
    }

    private func start(existing: [ParticipantInfo]) {
        let worker = Task { [serialWork] in
            for await job in serialWork { await job() }
        }
        state.withLock { $0.tasks.append(worker) }
        let task = Task {
            for p in existing { self.handle(.participantJoined(p)) }
            for await event in self.signaling.events { self.handle(event) }
            if !self.state.withLock({ $0.left }) {
                self.state.withLock { $0.connection = .disconnected }
                self.finishConsumers()
                self.sink.finish()
            }
        }
        state.withLock { $0.tasks.append(task) }
    }

    /// The room's metadata (LiveKit), as the server last reported it.
    public var metadata: String { state.withLock { $0.roomMetadata } }

    /// The remote participants now.
    public var participants: [ParticipantInfo] {
        state.withLock { Array($0.participants.values) }.sorted { $0.id < $1.id }
    }

    // MARK: signaling events

    func handle(_ event: RoomSignalingEvent) {
        switch event {
        case .participantJoined(let p):
            let tracks = p.tracks
            var bare = p
            bare.tracks = []
            state.withLock { $0.participants[p.id] = bare }
            emit(.participantJoined(bare))
            updateTracks(of: p.id, to: tracks)
        case .participantUpdated(let p):
            let (updated, handBefore) = state.withLock { s -> (ParticipantInfo, String?) in
                var info = p
                info.tracks = s.participants[p.id]?.tracks ?? []
                let before: String?
                if p.id == s.localID {
                    before = s.localInfo.attributes[VisioConventions.handRaisedAt]
                    s.localInfo = p
                } else {
                    before = s.participants[p.id]?.attributes[VisioConventions.handRaisedAt]
                    s.participants[p.id] = info
                }
                return (info, before)
            }
            emit(.participantUpdated(updated))
            let hand = p.attributes[VisioConventions.handRaisedAt]
            if (hand ?? "") != (handBefore ?? "") {
                emit(.handRaised(participantID: p.id, at: VisioConventions.date(hand)))
            }
        case .tracksChanged(let id, let tracks):
            updateTracks(of: id, to: tracks)
        case .participantLeft(let id, let reason):
            let known = state.withLock { s -> Bool in
                s.subscribed = s.subscribed.filter { !$0.hasPrefix(id + "/") }
                s.speaking.remove(id)
                return s.participants.removeValue(forKey: id) != nil
            }
            if known { emit(.participantLeft(id: id, reason: reason)) }
        case .connectionQuality(let id, let quality):
            state.withLock { $0.connectionQuality[id] = quality }
            emit(.connectionQuality(participantID: id, quality))
        case .speaking(let id, let on):
            state.withLock { s in
                if on { s.speaking.insert(id) } else { s.speaking.remove(id) }
            }
            emit(.speaking(participantID: id, on))
        case .subscriberOffer(let offer, let tracks):
            serial.yield { await self.answer(offer, tracks: tracks) }
        case .data(let data):
            emit(.data(data))
            visioData(data)
        case .text(let text):
            emit(.text(text))
            if text.topic == VisioConventions.chatTopic {
                chatReceived(
                    ChatMessage(
                        id: text.id, participantID: text.participantID, identity: text.identity, text: text.text))
            }
        case .bytes(let bytes):
            emit(.bytes(bytes))
        case .remoteCandidate(let candidate, let publisher):
            addRemoteCandidate(candidate, publisher: publisher)
        case .receiveSectionsNeeded(let audio, let video):
            state.withLock { s in
                s.receiveSectionsWanted.audio += audio
                s.receiveSectionsWanted.video += video
            }
            serial.yield { await self.addReceiveSections() }
        case .mediaConnected:
            break
        case .transcription(let transcription):
            emit(.transcription(transcription))
        case .roomMetadata(let metadata):
            let before = state.withLock { s -> String in
                defer { s.roomMetadata = metadata }
                return s.roomMetadata
            }
            emit(.roomMetadataChanged(metadata))
            let (old, new) = (VisioRecording(metadata: before), VisioRecording(metadata: metadata))
            if old != new, let new { emit(.recording(new)) }
        case .reconnecting(let reason):
            beginRecovery(.signal, reason: reason)
        case .reconnected:
            // During a full reconnection, the new connections' setup ends it.
            if !state.withLock({ $0.rejoining }) { endRecovery(.signal) }
        case .rejoined(let info):
            rejoined(info)
        case .disconnected(let reason):
            state.withLock { s in
                s.connection = .disconnected
                s.recovering = []
            }
            emit(.disconnected(reason: reason))
        }
    }

    private func updateTracks(of id: String, to tracks: [TrackInfo]) {
        let (old, wanted) = state.withLock { s -> ([TrackInfo], [TrackInfo]) in
            let old = s.participants[id]?.tracks ?? []
            s.participants[id, default: ParticipantInfo(id: id, name: "")].tracks = tracks
            var wanted: [TrackInfo] = []
            if options.autoSubscribe {
                for t in tracks where !s.subscribed.contains(id + "/" + t.id) {
                    s.subscribed.insert(id + "/" + t.id)
                    wanted.append(t)
                }
            }
            return (old, wanted)
        }
        for t in tracks {
            if let before = old.first(where: { $0.id == t.id }) {
                if before.muted != t.muted { emit(.trackMuted(participantID: id, trackID: t.id, muted: t.muted)) }
            } else {
                emit(.trackPublished(participantID: id, t))
            }
        }
        for t in old where !tracks.contains(where: { $0.id == t.id }) {
            state.withLock { _ = $0.subscribed.remove(id + "/" + t.id) }
            emit(.trackUnpublished(participantID: id, trackID: t.id))
        }
        if !wanted.isEmpty {
            let tracks = wanted.map { (participantID: id, trackID: $0.id) }
            serial.yield { await self.requestSubscription(tracks) }
        }
    }

    /// Asks the server for tracks (waiting for a track that is not ready yet is the
    /// adapter's business).
    func requestSubscription(_ tracks: [(participantID: String, trackID: String)]) async {
        do {
            try await signaling.subscribe(to: tracks)
        } catch {
            logger.warning("subscription failed", metadata: ["error": "\(error)"])
        }
    }

    /// Subscribes to a remote track (when ``RoomOptions/autoSubscribe`` is off).
    public func subscribe(participantID: String, trackID: String) async throws {
        state.withLock { _ = $0.subscribed.insert(participantID + "/" + trackID) }
        try await signaling.subscribe(to: [(participantID, trackID)])
    }

    /// Stops receiving a remote track.
    public func unsubscribe(participantID: String, trackID: String) async throws {
        state.withLock { _ = $0.subscribed.remove(participantID + "/" + trackID) }
        try await signaling.unsubscribe(from: [(participantID, trackID)])
    }

    // MARK: subscriber connection

    private func answer(_ offer: SessionDescription, tracks: [SubscribedTrack]) async {
        do {
            let pc = try await subscriberConnection()
            try await pc.setRemoteDescription(offer)
            await remoteDescribed(pc, publisher: false)
            var fresh: [SubscribedTrack] = []
            for t in tracks {
                try await pc.setReceiveOutput(t.kind == .audio ? options.audioOutput : options.videoOutput, mid: t.mid)
                let isNew = state.withLock { s -> Bool in
                    s.subscriberTracks[t.mid] = t
                    return s.announced.insert(t.mid + "|" + t.participantID + "/" + t.trackID).inserted
                }
                if isNew { fresh.append(t) }
            }
            let answer = try await pc.createAnswer()
            try await pc.setLocalDescription(answer)
            state.withLock { $0.subscriberTrickle }?.described(answer)
            try await signaling.answerSubscription(answer)
            for t in fresh {
                let info =
                    state.withLock { $0.participants[t.participantID]?.tracks.first { $0.id == t.trackID } }
                    ?? TrackInfo(id: t.trackID, kind: t.kind, source: t.kind == .audio ? .microphone : .camera)
                emit(.trackSubscribed(participantID: t.participantID, info))
            }
        } catch {
            logger.warning("could not answer the subscriber offer", metadata: ["error": "\(error)"])
        }
    }

    private func subscriberConnection() async throws -> PeerConnection {
        if let pc = state.withLock({ $0.subscriber }) { return pc }
        let (pc, trickler) = try await startConnection(publisher: false)
        state.withLock {
            $0.subscriber = pc
            $0.subscriberTrickle = trickler
        }
        return pc
    }

    /// Starts the publisher or the subscriber connection, with the trickler of its late
    /// candidates, reading the data channels the server opens on it. Its events, received
    /// media included, are dispatched on its event loop straight into the room's events:
    /// no task in between (a room of 150 speakers receives 7 500 packets a second).
    private func startConnection(publisher: Bool) async throws -> (PeerConnection, CandidateTrickler) {
        let trickler = makeTrickler(publisher: publisher)
        let pc = try await PeerConnection.start(
            configuration: options.peerConnection, localAddresses: addresses, group: group
        ) { [weak self] event in
            trickler.observe(event)
            self?.dispatch(event, publisher: publisher)
        }
        readRemoteChannels(of: pc)
        return (pc, trickler)
    }

    /// One event of a connection, as room events: received media comes on the subscriber
    /// connection (on the only one with `/rtc/v1`).
    private func dispatch(_ event: PeerConnection.Event, publisher: Bool) {
        switch event {
        case .audio(let mid, let frame):
            if let (t, sinks, observers) = trackAndSinks(mid) {
                if let sinks { Self.deliver(.audio(frame), to: sinks) }
                emit(.audio(participantID: t.participantID, trackID: t.trackID, frame), to: observers)
            }
        case .video(let mid, let picture):
            if let (t, sinks, observers) = trackAndSinks(mid) {
                if let sinks { Self.deliver(.video(picture), to: sinks) }
                emit(.video(participantID: t.participantID, trackID: t.trackID, picture), to: observers)
            }
        case .frame(let mid, let frame):
            if let (t, sinks, observers) = trackAndSinks(mid) {
                if let sinks { Self.deliver(.encoded(frame), to: sinks) }
                emit(.encoded(participantID: t.participantID, trackID: t.trackID, frame), to: observers)
            }
        case .senderReport(let mid, let clock):
            if let t = track(mid) {
                emit(.senderReport(participantID: t.participantID, trackID: t.trackID, clock))
            }
        case .connectionState(let s):
            emit(.connectionState(s, publisher: publisher))
            mediaStateChanged(s, publisher: publisher)
        default: break
        }
    }

    /// A server candidate for one connection: added now if the connection has the
    /// server's description, else once it has.
    private func addRemoteCandidate(_ candidate: ICECandidate, publisher: Bool) {
        let pc = state.withLock { s -> PeerConnection? in
            guard s.described.contains(publisher) else {
                s.earlyCandidates[publisher, default: []].append(candidate)
                return nil
            }
            return publisher ? s.publisher : s.subscriber
        }
        guard let pc else { return }
        Task { try? await pc.addICECandidate(candidate) }
    }

    /// The server's description was applied to one connection: candidates that came early
    /// are added.
    func remoteDescribed(_ pc: PeerConnection, publisher: Bool) async {
        let early = state.withLock { s in
            s.described.insert(publisher)
            return s.earlyCandidates.removeValue(forKey: publisher) ?? []
        }
        for candidate in early { try? await pc.addICECandidate(candidate) }
    }

    /// Trickles one connection's late candidates through the signaling.
    private func makeTrickler(publisher: Bool) -> CandidateTrickler {
        CandidateTrickler { [signaling, logger] candidate in
            do {
                try await signaling.trickle(candidate, publisher: publisher)
            } catch {
                logger.debug("trickle failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func track(_ mid: String) -> SubscribedTrack? { state.withLock { $0.subscriberTracks[mid] } }

    /// The remote track on subscriber (or single-connection) `mid`, with its per-track
    /// consumers.
    private func trackAndSinks(_ mid: String) -> (SubscribedTrack, [Int: FrameSink]?, Observers?)? {
        state.withLock { s in
            guard let t = s.subscriberTracks[mid] else { return nil }
            return (
                t,
                s.frameSinks.isEmpty ? nil : s.frameSinks[TrackKey(participantID: t.participantID, trackID: t.trackID)],
                s.observers.isEmpty ? nil : s.observers
            )
        }
    }

    /// Counters of the subscriber connection's m-line carrying a remote track.
    public func statistics(participantID: String, trackID: String) async throws
        -> PeerConnectionCore.TransceiverStatistics?
    {
        let single = signaling.singlePeerConnection
        let (pc, mid) = state.withLock { s in
            (
                single ? s.publisher : s.subscriber,
                s.subscriberTracks.first { $0.value.participantID == participantID && $0.value.trackID == trackID }?.key
            )
        }
        guard let pc, let mid else { return nil }
        return try await pc.statistics(mid: mid)
    }

    // MARK: publishing

    /// Publishes tracks (one offer for all of them; later calls renegotiate to add more).
    /// Feed them with ``send(audio:on:)``, ``send(video:on:)`` or ``send(_:on:)``.
    public func publish(_ sources: [(kind: MediaKind, source: TrackSource)]) async throws -> [LocalTrack] {
        try ensureJoined()
        let pc = try await publisherConnection()
        var added: [LocalTrack] = []
        for s in sources {
            let mid = try await pc.addTransceiver(s.kind, direction: .sendonly)
            added.append(LocalTrack(mid: mid, kind: s.kind, source: s.source))
        }
        state.withLock { $0.localTracks += added }
        try await inOrder { try await self.negotiatePublisher(pc) }
        return added
    }

    /// With a single connection (LiveKit `/rtc/v1`): adds the receive-only sections the
    /// server asked for and offers again; the answer says which track each carries. Asks
    /// that queued up meanwhile are served by one offer (a bot joining a room of 150).
    private func addReceiveSections() async {
        let (audio, video) = state.withLock { s in
            defer { s.receiveSectionsWanted = (0, 0) }
            return s.receiveSectionsWanted
        }
        guard audio + video > 0 else { return }
        do {
            let pc = try await publisherConnection()
            for _ in 0..<audio { _ = try await pc.addTransceiver(.audio, direction: .recvonly) }
            for _ in 0..<video { _ = try await pc.addTransceiver(.video, direction: .recvonly) }
            try await negotiatePublisher(pc)
        } catch {
            logger.warning("could not add receiving sections", metadata: ["error": "\(error)"])
        }
    }

    /// Offers the publisher connection as it is now (with the local tracks it carries, or
    /// `tracks`) and applies the server's answer; the offer's candidates need no trickle.
    /// With a single connection, the answer also assigns remote tracks to receiving
    /// sections: their output is set before media can arrive, new ones are announced.
    /// Runs in order with the subscription work (``inOrder(_:)``).
    func negotiatePublisher(_ pc: PeerConnection, tracks: [PublishedTrack]? = nil) async throws {
        let published =
            tracks
            ?? state.withLock { s in
                s.localTracks.map {
                    PublishedTrack(mid: s.localMids[$0.mid] ?? $0.mid, kind: $0.kind, source: $0.source)
                }
            }
        let offer = try await pc.createOffer()
        try await pc.setLocalDescription(offer)
        state.withLock { $0.publisherTrickle }?.described(offer)
        let answer = try await signaling.publish(offer: offer, tracks: published)
        let receiving = signaling.singlePeerConnection ? signaling.receivingTracks : []
        for t in receiving {
            try await pc.setReceiveOutput(t.kind == .audio ? options.audioOutput : options.videoOutput, mid: t.mid)
        }
        try await pc.setRemoteDescription(answer)
        await remoteDescribed(pc, publisher: true)
        if signaling.singlePeerConnection { announceReceiving(receiving) }
    }

    /// Records which remote track each receiving section carries (the answer lists them
    /// all: a section it leaves out carries nothing now) and reports the new ones as
    /// subscribed.
    func announceReceiving(_ tracks: [SubscribedTrack]) {
        let fresh = state.withLock { s -> [SubscribedTrack] in
            var fresh: [SubscribedTrack] = []
            s.subscriberTracks = [:]
            for t in tracks {
                s.subscriberTracks[t.mid] = t
                if s.announced.insert(t.mid + "|" + t.participantID + "/" + t.trackID).inserted { fresh.append(t) }
            }
            return fresh
        }
        for t in fresh {
            let info =
                state.withLock { $0.participants[t.participantID]?.tracks.first { $0.id == t.trackID } }
                ?? TrackInfo(id: t.trackID, kind: t.kind, source: t.kind == .audio ? .microphone : .camera)
            emit(.trackSubscribed(participantID: t.participantID, info))
        }
    }

    /// Throws ``RoomError/notConnected`` once the room was left.
    func ensureJoined() throws(RoomError) {
        if state.withLock({ $0.left }) { throw .notConnected }
    }

    /// The publisher connection, started when first needed (once: callers at the same time
    /// get the same one). Its events are dispatched on its event loop, as the subscriber's
    /// are (with `/rtc/v1` it receives the media too).
    func publisherConnection() async throws -> PeerConnection {
        let starting = state.withLock { s -> Task<PeerConnection, any Error> in
            if let existing = s.publisherStart { return existing }
            let task = Task { try await self.startPublisherConnection() }
            s.publisherStart = task
            return task
        }
        do {
            return try await starting.value
        } catch {
            state.withLock { s in if s.publisherStart == starting { s.publisherStart = nil } }
            throw error
        }
    }

    private func startPublisherConnection() async throws -> PeerConnection {
        let (pc, trickler) = try await startConnection(publisher: true)
        state.withLock {
            $0.publisher = pc
            $0.publisherTrickle = trickler
        }
        return pc
    }

    // MARK: this participant

    /// Changes this participant's display name, metadata (nil: unchanged) and attributes
    /// (an empty value removes one), as its token allows (LiveKit:
    /// UpdateParticipantMetadata); everyone sees ``RoomEvent/participantUpdated(_:)``.
    /// - Throws: ``LiveKitError/notAllowed(_:)`` when the token forbids it;
    ///   ``RoomSignalingError/unsupported(_:)`` on Janus.
    public func updateLocalParticipant(name: String? = nil, metadata: String? = nil, attributes: [String: String] = [:])
        async throws
    {
        try ensureJoined()
        try await signaling.updateLocalParticipant(name: name, metadata: metadata, attributes: attributes)
    }

    // MARK: data

    /// Sends bytes to the room — to the participants with `identities`, or everyone —
    /// reliably (ordered, retransmitted) or not (LiveKit: a user packet on `topic`).
    /// - Throws: ``RoomSignalingError/unsupported(_:)`` on a server without data (Janus).
    public func send(data: [UInt8], topic: String? = nil, reliable: Bool = true, to identities: [String] = [])
        async throws
    {
        try ensureJoined()
        try await signaling.sendData(data, topic: topic, reliable: reliable, to: identities)
        state.withLock { $0.lastDataSent = .now }
    }

    /// Sends `text` as a text stream on `topic` (LiveKit: what `send_text` sends; chat is
    /// on `lk.chat`); returns the stream's id.
    @discardableResult
    public func send(text: String, topic: String, attributes: [String: String] = [:]) async throws -> String {
        try ensureJoined()
        defer { state.withLock { $0.lastDataSent = .now } }
        return try await signaling.sendText(text, topic: topic, attributes: attributes)
    }

    /// Sends `bytes` as a byte stream named `name` on `topic` (LiveKit: what `send_bytes`
    /// and `send_file` send; receivers get the whole stream); returns the stream's id.
    /// - Throws: ``RoomSignalingError/unsupported(_:)`` on a server without data (Janus).
    @discardableResult
    public func send(
        bytes: [UInt8], name: String, mimeType: String = "application/octet-stream", topic: String,
        attributes: [String: String] = [:]
    ) async throws -> String {
        try ensureJoined()
        defer { state.withLock { $0.lastDataSent = .now } }
        return try await signaling.sendBytes(
            bytes, name: name, mimeType: mimeType, topic: topic, attributes: attributes)
    }

    /// The publisher connection and the mid `track` has on it now; nil while a full
    /// reconnection is publishing again (what is sent meanwhile is dropped).
    private func publisher(for track: LocalTrack) throws(RoomError) -> (PeerConnection, String)? {
        let (pc, mid, left, rejoining) = state.withLock { s in
            (s.publisher, s.localMids[track.mid] ?? track.mid, s.left, s.rejoining)
        }
        if left { throw .notConnected }
        if rejoining { return nil }
        guard let pc else { throw .notConnected }
        return (pc, mid)
    }

    /// Sends PCM (any block length) on a published audio track.
    public func send(audio: AudioFrame<Int16>, on track: LocalTrack) async throws {
        try await sending(on: track) { pc, mid in try await pc.send(audio: audio, mid: mid) }
    }

    /// Sends a picture on a published video track.
    public func send(video: VideoFrame, on track: LocalTrack) async throws {
        try await sending(on: track) { pc, mid in try await pc.send(video: video, mid: mid) }
    }

    /// Sends an encoded frame (Opus packet, VP8 frame) on a published track.
    public func send(_ frame: EncodedFrame, on track: LocalTrack) async throws {
        try await sending(on: track) { pc, mid in try await pc.send(frame, mid: mid) }
    }

    /// Runs a send on `track`'s connection; a frame that fails while the room reconnects
    /// (its connection being replaced) is dropped, not an error.
    private func sending(on track: LocalTrack, _ send: (PeerConnection, String) async throws -> Void) async throws {
        guard let (pc, mid) = try publisher(for: track) else { return }
        do {
            try await send(pc, mid)
        } catch {
            if state.withLock({ $0.rejoining || $0.publisher !== pc || !$0.recovering.isEmpty }) { return }
            throw error
        }
    }

    /// Counters of a published track's m-line.
    public func statistics(of track: LocalTrack) async throws -> PeerConnectionCore.TransceiverStatistics? {
        guard let (pc, mid) = try publisher(for: track) else { return nil }
        return try await pc.statistics(mid: mid)
    }

    /// Whether the publisher connection is connected (media can flow).
    public func publisherState() async throws -> PeerConnectionState? {
        try await state.withLock({ $0.publisher })?.connectionState()
    }

    /// Mutes or unmutes a published track: the server is told, and the caller should stop
    /// feeding it (frames sent while muted still go out).
    public func setMuted(_ muted: Bool, track: LocalTrack) async throws {
        try await signaling.setMuted(muted, mid: state.withLock { $0.localMids[track.mid] } ?? track.mid)
    }

    /// Stops publishing every track.
    public func unpublishAll() async throws {
        try await signaling.unpublish()
        if !signaling.publisherDataChannels.isEmpty {
            // The publisher connection carries the data channels too (LiveKit): it stays,
            // its tracks' sections become inactive and are renegotiated — how a LiveKit
            // client unpublishes.
            let (pc, tracks) = state.withLock { s -> (PeerConnection?, [LocalTrack]) in
                defer { s.localTracks = [] }
                return (s.publisher, s.localTracks)
            }
            guard let pc, !tracks.isEmpty else { return }
            let mids = state.withLock { s in tracks.map { s.localMids[$0.mid] ?? $0.mid } }
            for mid in mids { try await pc.setDirection(.inactive, mid: mid) }
            try await inOrder { try await self.negotiatePublisher(pc, tracks: []) }
            return
        }
        let pc = state.withLock { s -> PeerConnection? in
            defer {
                s.publisher = nil
                s.publisherStart = nil
                s.localTracks = []
                s.described.remove(true)
            }
            return s.publisher
        }
        await pc?.close()
    }

    // MARK: leaving

    /// Leaves the room: the server is told, both connections close, the event stream ends.
    public func leave() async {
        let (publisher, subscriber, tasks, already, tricklers) = state.withLock { s in
            defer { s.left = true }
            return (s.publisher, s.subscriber, s.tasks, s.left, [s.publisherTrickle, s.subscriberTrickle])
        }
        guard !already else { return }
        for t in tricklers { t?.finish() }
        serial.finish()
        // Data handed to the channels goes out before the connection closes (within 2 s):
        // a chat message sent just before leaving is not lost.
        let channels = state.withLock { Array($0.channels.values) }
        let deadline = ContinuousClock.now + .seconds(2)
        for channel in channels {
            while ContinuousClock.now < deadline, (try? await channel.bufferedAmount()) ?? 0 > 0 {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        // Sent is not yet relayed: the leave travels on the WebSocket and may overtake data
        // still on its way through the server (a receiver then drops a stream whose sender
        // is gone). Data sent in the last second gets half a second more.
        if let last = state.withLock({ $0.lastDataSent }), ContinuousClock.now - last < .seconds(1) {
            try? await Task.sleep(for: .milliseconds(500))
        }
        await signaling.leave()
        await publisher?.close()
        await subscriber?.close()
        for t in tasks { await t.value }
        state.withLock { $0.connection = .disconnected }
        finishConsumers()
        sink.finish()
    }
}
