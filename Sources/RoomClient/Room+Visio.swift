import Codec
import Foundation
import Signaling
import Transport

extension Room {
    // MARK: Visio's conventions

    /// Reactions and legacy chat packets among received data.
    func visioData(_ data: RoomData) {
        if data.topic == VisioConventions.legacyChatTopic {
            guard let chat = VisioConventions.decodeLegacyChat(data.payload), chat.ignoreLegacy != true else { return }
            chatReceived(
                ChatMessage(
                    id: chat.id, participantID: data.participantID, identity: data.identity, text: chat.message,
                    timestamp: chat.timestamp.map { Date(timeIntervalSince1970: $0 / 1000) }))
        } else if data.topic == nil, let reaction = VisioConventions.decodeReaction(data.payload) {
            emit(.reaction(participantID: data.participantID, identity: data.identity, reaction))
        }
    }

    /// Reports a chat message once, whichever of its forms came first; again as an edit
    /// when the same sender sends the same id with another text.
    func chatReceived(_ message: ChatMessage) {
        let key = message.identity + "/" + message.id
        let report = state.withLock { s -> ChatMessage? in
            var message = message
            if let seen = s.chatSeen[key] {
                guard seen != message.text else { return nil }
                message.isEdit = true
            } else {
                s.chatOrder.append(key)
                if s.chatOrder.count > 1_000 { s.chatSeen[s.chatOrder.removeFirst()] = nil }
            }
            s.chatSeen[key] = message.text
            return message
        }
        if let report { emit(.chat(report)) }
    }

    /// Sends a chat message as Visio's web client does: a text stream on `lk.chat` and the
    /// legacy `lk-chat-topic` packet with the same id (which newer clients ignore). Returns
    /// the message as sent.
    /// - Throws: ``RoomSignalingError/unsupported(_:)`` on a server without data (Janus).
    @discardableResult
    public func sendChat(_ text: String) async throws -> ChatMessage {
        let id = try await send(text: text, topic: VisioConventions.chatTopic)
        let now = Date()
        let ignoreLegacy = VisioConventions.ignoresLegacy(
            serverVersion: (signaling as? LiveKitRoomSignaling)?.serverVersion)
        try await send(
            data: VisioConventions.legacyChat(id: id, text: text, at: now, ignoreLegacy: ignoreLegacy),
            topic: VisioConventions.legacyChatTopic)
        let me = state.withLock { $0.localInfo }
        return ChatMessage(id: id, participantID: me.id, identity: me.identity, text: text, timestamp: now)
    }

    /// Edits a chat message this participant sent: the new text goes out as the same
    /// message (its id) — a new version of its `lk.chat` text stream, and the legacy packet
    /// with its edit time — which Visio's client and MeetKit show in place of the old text.
    /// Returns the message as edited.
    /// - Throws: ``RoomError/notOwnMessage`` for a message another participant sent;
    ///   ``RoomSignalingError/unsupported(_:)`` on a server without data (Janus).
    @discardableResult
    public func editChat(_ message: ChatMessage, text: String) async throws -> ChatMessage {
        try ensureJoined()
        let me = state.withLock { $0.localInfo }
        guard message.identity == me.identity else { throw RoomError.notOwnMessage }
        let version = state.withLock { s in
            s.chatVersions[message.id, default: 0] += 1
            return s.chatVersions[message.id]!
        }
        try await signaling.sendTextUpdate(
            text, id: message.id, version: version, topic: VisioConventions.chatTopic, attributes: [:])
        let now = Date()
        let ignoreLegacy = VisioConventions.ignoresLegacy(
            serverVersion: (signaling as? LiveKitRoomSignaling)?.serverVersion)
        try await send(
            data: VisioConventions.legacyChat(
                id: message.id, text: text, at: message.timestamp ?? now, editedAt: now, ignoreLegacy: ignoreLegacy),
            topic: VisioConventions.legacyChatTopic)
        var edited = message
        edited.text = text
        edited.isEdit = true
        return edited
    }

    /// Sends a reaction to everyone, as Visio's client does (at most 10 a second).
    /// - Throws: ``RoomError/rateLimited`` beyond that.
    public func sendReaction(_ reaction: Reaction) async throws {
        let allowed = state.withLock { s -> Bool in
            let now = ContinuousClock.now
            s.reactionTimes.removeAll { now - $0 >= .seconds(1) }
            guard s.reactionTimes.count < VisioConventions.reactionsPerSecond else { return false }
            s.reactionTimes.append(now)
            return true
        }
        guard allowed else { throw RoomError.rateLimited }
        try await send(data: VisioConventions.reaction(reaction), topic: nil, reliable: true)
    }

    /// Raises (or lowers) this participant's hand: the `handRaisedAt` attribute, set to
    /// now (or emptied) — through UpdateParticipantMetadata when the token allows updating
    /// one's own attributes, else through Visio's room API (`toggle-hand`) for a room
    /// joined with ``VisioRoom/join(link:displayName:options:lobby:group:)``, as Visio's
    /// client does.
    /// - Throws: ``LiveKitError/notAllowed(_:)`` when neither way is open;
    ///   ``VisioError`` from the room API.
    public func setHandRaised(_ raised: Bool) async throws {
        try ensureJoined()
        let livekit = signaling as? LiveKitRoomSignaling
        if let access = visioAccess, let livekit, livekit.canUpdateOwnMetadata != true {
            try await VisioRoom.toggleHand(raised, access: access, token: livekit.accessToken)
            return
        }
        try await updateLocalParticipant(
            attributes: [VisioConventions.handRaisedAt: raised ? VisioConventions.timestamp(Date()) : ""])
    }

    /// This participant's attributes, as the server last reported them (LiveKit).
    public var localAttributes: [String: String] { state.withLock { $0.localInfo.attributes } }

    /// When this participant raised its hand (Visio's `handRaisedAt`), if it has.
    public var handRaisedAt: Date? { VisioConventions.date(localAttributes[VisioConventions.handRaisedAt]) }

    /// The Visio room API this room was joined through, if it was.
    var visioAccess: VisioRoom.Access? {
        get { state.withLock { $0.visioAccess } }
        set { state.withLock { $0.visioAccess = newValue } }
    }

    /// Asks for a quality of a subscribed video track its publisher sends in several
    /// layers (simulcast) — or for the size it is shown at (the server picks the smallest
    /// layer covering it); `.off` pauses it. Switches happen at the next keyframe.
    /// - Throws: ``RoomSignalingError/unsupported(_:)`` on Janus.
    public func setVideoQuality(
        _ quality: VideoQuality, width: Int? = nil, height: Int? = nil, participantID: String, trackID: String
    ) async throws {
        try ensureJoined()
        try await signaling.setVideoQuality(quality, width: width, height: height, trackID: trackID)
        state.withLock { $0.qualities[participantID + "/" + trackID] = quality }
    }
}
