import Codec
import Foundation
import Signaling
import Transport

extension Room {
    /// A part of the room's connection that is being brought back.
    enum Recovery: Hashable {
        /// The signalling connection (a resume, or a full reconnection).
        case signal
        /// The publisher connection (an ICE restart from this side).
        case publisher
        /// The subscriber connection (an ICE restart the server makes).
        case subscriber
    }

    /// Starts recovering `part`: the room reports `reconnecting` when it was connected —
    /// once, however many parts fail together.
    func beginRecovery(_ part: Recovery, reason: String) {
        let announce = state.withLock { s -> Bool in
            s.recovering.insert(part)
            guard s.connection == .connected else { return false }
            s.connection = .reconnecting
            return true
        }
        if announce { emit(.reconnecting(reason: reason)) }
    }

    /// `parts` are back: the room reports `reconnected` when nothing else is being recovered.
    func endRecovery(_ parts: Recovery...) {
        let announce = state.withLock { s -> Bool in
            guard !parts.allSatisfy({ !s.recovering.contains($0) }) else { return false }
            s.recovering.subtract(parts)
            guard s.recovering.isEmpty, s.connection == .reconnecting else { return false }
            s.connection = .connected
            return true
        }
        if announce { emit(.reconnected) }
    }

    // MARK: full reconnection

    /// The server started a new session (LiveKit's full reconnect): this participant has a
    /// new id; participants gone meanwhile leave, new ones join, those still there stay;
    /// the connections are made anew — data channels, local tracks published again (their
    /// ``LocalTrack`` values stay valid), every wanted track subscribed again — and the
    /// room reports ``RoomEvent/reconnected``.
    func rejoined(_ info: RoomJoinInfo) {
        let (gone, still, again) = state.withLock { s -> ([String], [ParticipantInfo], [(String, String)]) in
            s.localID = info.localID
            if let local = info.local { s.localInfo = local }
            s.rejoining = true
            s.announced = []
            let now = Set(info.participants.map(\.id))
            let gone = s.participants.keys.filter { !now.contains($0) }
            let still = info.participants.filter { s.participants[$0.id] != nil }
            // The tracks subscribed before that are still there are asked for again.
            var again: [(String, String)] = []
            for p in still {
                for t in p.tracks where s.subscribed.contains(p.id + "/" + t.id) { again.append((p.id, t.id)) }
            }
            return (gone, still, again)
        }
        for id in gone { handle(.participantLeft(id: id, reason: "not there after reconnecting")) }
        serial.yield { await self.reconnectMedia() }
        if !again.isEmpty {
            let tracks = again.map { (participantID: $0.0, trackID: $0.1) }
            serial.yield { await self.requestSubscription(tracks) }
        }
        for p in info.participants where !still.contains(where: { $0.id == p.id }) { handle(.participantJoined(p)) }
        for p in still { handle(.tracksChanged(participantID: p.id, tracks: p.tracks)) }
    }

    /// Closes the connections of the previous session and makes new ones: the data
    /// channels, then the local tracks on a new publisher connection.
    func reconnectMedia() async {
        let (publisher, subscriber, tricklers) = state.withLock { s in
            defer {
                s.publisher = nil
                s.publisherStart = nil
                s.subscriber = nil
                s.publisherTrickle = nil
                s.subscriberTrickle = nil
                s.described = []
                s.earlyCandidates = [:]
                s.subscriberTracks = [:]
                s.channels = [:]
                s.receiveSectionsWanted = (0, 0)
            }
            return (s.publisher, s.subscriber, [s.publisherTrickle, s.subscriberTrickle])
        }
        for t in tricklers { t?.finish() }
        await publisher?.close()
        await subscriber?.close()
        do {
            let pc = try await publisherConnection()
            try await createDataChannels(on: pc)
            let tracks = state.withLock { $0.localTracks }
            var mids: [String: String] = [:]
            for t in tracks { mids[t.mid] = try await pc.addTransceiver(t.kind, direction: .sendonly) }
            state.withLock {
                $0.localMids = mids
                $0.rejoining = false
            }
            try await negotiatePublisher(pc)
            // New connections: nothing of the old ones is left to recover.
            endRecovery(.signal, .publisher, .subscriber)
        } catch {
            state.withLock { s in
                s.rejoining = false
                s.recovering = []
                s.connection = .disconnected
            }
            logger.warning("could not reconnect the media", metadata: ["error": "\(error)"])
            emit(.disconnected(reason: "could not reconnect the media: \(error)"))
        }
    }

    // MARK: media recovery

    /// The publisher connection — with LiveKit's `/rtc/v1`, the only one — whose media
    /// stopped (ICE consent expired: the network changed or went away) is restarted with
    /// new ICE credentials in a new offer (RFC 8445 §9), the room reporting `reconnecting`
    /// until it is back; a restart that has not connected after a few seconds (the network
    /// still down) is made again. A failed subscriber connection (`/rtc`: the server
    /// offers it) is restarted by the server, asked by a resume; when that does not bring
    /// it back, by a full reconnection.
    func mediaStateChanged(_ state: PeerConnectionState, publisher: Bool) {
        let part: Recovery = publisher ? .publisher : .subscriber
        let recover = self.state.withLock { s -> Bool in
            if publisher { s.publisherState = state } else { s.subscriberState = state }
            guard state == .failed, !s.left, !s.rejoining else { return false }
            if publisher {
                guard !s.recoveringPublisher else { return false }
                s.recoveringPublisher = true
            } else {
                guard !s.recoveringSubscriber else { return false }
                s.recoveringSubscriber = true
            }
            return true
        }
        if recover {
            beginRecovery(part, reason: "the \(publisher ? "publisher" : "subscriber") connection failed")
            Task { publisher ? await self.recoverPublisher() : await self.recoverSubscriber() }
        }
        if state == .connected { endRecovery(part) }
    }

    /// Restarts the publisher connection's ICE until it is connected again (every 5 s, at
    /// most 8 times), the room left, or a full reconnection replaced it.
    private func recoverPublisher() async {
        defer { state.withLock { $0.recoveringPublisher = false } }
        for _ in 0..<8 {
            try? await inOrder { await self.restartPublisherICE() }
            try? await Task.sleep(for: .seconds(5))
            if state.withLock({ $0.left || $0.rejoining || $0.publisherState == .connected }) { return }
        }
    }

    /// Asks the server to restart the subscriber connection's ICE, every 5 s while it is
    /// not connected (the network may still be down), at most 6 times; then joins anew.
    /// Stops when that connection is replaced (a full reconnection made a new one).
    private func recoverSubscriber() async {
        defer { state.withLock { $0.recoveringSubscriber = false } }
        guard let pc = state.withLock({ $0.subscriber }) else { return }
        func replaced() -> Bool { state.withLock { $0.left || $0.rejoining || $0.subscriber !== pc } }
        for _ in 0..<6 {
            if replaced() { return }
            await signaling.restartSubscriberConnection()
            try? await Task.sleep(for: .seconds(5))
            if replaced() { return }
            if (try? await pc.connectionState()) == .connected { return }
        }
        await signaling.reconnectFully(reason: "the subscriber connection failed")
    }

    /// New ICE credentials for the publisher connection, offered to the server.
    private func restartPublisherICE() async {
        guard let pc = state.withLock({ $0.rejoining ? nil : $0.publisher }) else { return }
        do {
            try await pc.restartICE()
            try await negotiatePublisher(pc)
            logger.info("ICE restarted on the publisher connection")
        } catch {
            logger.warning("ICE restart failed", metadata: ["error": "\(error)"])
        }
    }
}
