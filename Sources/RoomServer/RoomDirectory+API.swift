import Foundation
import LiveKitProtocol

/// An error of the server API, as Twirp gives it: a code, a message, an HTTP status.
struct TwirpError: Error, Sendable {
    var code: String
    var message: String
    var status: Int

    static func notFound(_ what: String) -> TwirpError { TwirpError(code: "not_found", message: what, status: 404) }
    static func denied(_ what: String) -> TwirpError {
        TwirpError(code: "permission_denied", message: what, status: 403)
    }
    static func unauthenticated(_ what: String) -> TwirpError {
        TwirpError(code: "unauthenticated", message: what, status: 401)
    }
    static func invalid(_ what: String) -> TwirpError {
        TwirpError(code: "invalid_argument", message: what, status: 400)
    }
}

// LiveKit's RoomService (what `livekit-api` calls): rooms and participants managed by a
// backend holding an API key.
extension RoomDirectory {
    func createRoom(_ request: Livekit_CreateRoomRequest) -> Livekit_Room {
        let room = self.room(named: request.name)
        if request.maxParticipants > 0 { room.maxParticipants = request.maxParticipants }
        if request.emptyTimeout > 0 { room.emptyTimeout = request.emptyTimeout }
        if !request.metadata.isEmpty { room.metadata = request.metadata }
        if room.participants.isEmpty, room.emptySince == nil { room.emptySince = .now }
        return room.info
    }

    func listRooms(_ request: Livekit_ListRoomsRequest) -> Livekit_ListRoomsResponse {
        var response = Livekit_ListRoomsResponse()
        response.rooms = rooms.values.filter { request.names.isEmpty || request.names.contains($0.name) }
            .sorted { $0.creationTimeMs < $1.creationTimeMs }.map(\.info)
        return response
    }

    func deleteRoom(_ request: Livekit_DeleteRoomRequest) async throws(TwirpError) -> Livekit_DeleteRoomResponse {
        guard let room = rooms[request.room] else { throw .notFound("room not found") }
        for p in room.participants { await remove(p, from: room, reason: .roomDeleted) }
        rooms[request.room] = nil
        return Livekit_DeleteRoomResponse()
    }

    func listParticipants(_ request: Livekit_ListParticipantsRequest) throws(TwirpError)
        -> Livekit_ListParticipantsResponse
    {
        guard let room = rooms[request.room] else { throw .notFound("room not found") }
        var response = Livekit_ListParticipantsResponse()
        response.participants = room.participants.map(\.info)
        return response
    }

    private func participant(_ room: String, _ identity: String) throws(TwirpError) -> (Participant, Room) {
        guard let r = rooms[room] else { throw .notFound("room not found") }
        guard let p = r.participant(identity: identity) else { throw .notFound("participant not found") }
        return (p, r)
    }

    func getParticipant(_ request: Livekit_RoomParticipantIdentity) throws(TwirpError) -> Livekit_ParticipantInfo {
        try participant(request.room, request.identity).0.info
    }

    func removeParticipant(_ request: Livekit_RoomParticipantIdentity) async throws(TwirpError)
        -> Livekit_RemoveParticipantResponse
    {
        let (p, room) = try participant(request.room, request.identity)
        await remove(p, from: room, reason: .participantRemoved)
        return Livekit_RemoveParticipantResponse()
    }

    /// Mutes (or unmutes) a published track: everyone is told, and its publisher is asked
    /// to stop (or resume) sending.
    func mutePublishedTrack(_ request: Livekit_MuteRoomTrackRequest) throws(TwirpError) -> Livekit_MuteRoomTrackResponse
    {
        let (p, room) = try participant(request.room, request.identity)
        guard let i = p.tracks.firstIndex(where: { $0.sid == request.trackSid }) else {
            throw .notFound("track not found")
        }
        p.tracks[i].muted = request.muted
        p.version += 1
        var mute = Livekit_MuteTrackRequest()
        mute.sid = request.trackSid
        mute.muted = request.muted
        p.send(.mute(mute))
        broadcast(p, in: room, includingItself: true)
        var response = Livekit_MuteRoomTrackResponse()
        response.track = p.tracks[i]
        return response
    }

    func updateParticipant(_ request: Livekit_UpdateParticipantRequest) throws(TwirpError) -> Livekit_ParticipantInfo {
        let (p, room) = try participant(request.room, request.identity)
        if !request.name.isEmpty { p.name = request.name }
        if !request.metadata.isEmpty { p.metadata = request.metadata }
        for (key, value) in request.attributes { p.attributes[key] = value.isEmpty ? nil : value }
        p.version += 1
        broadcast(p, in: room, includingItself: true)
        return p.info
    }

    /// Data from the server: to everyone in the room, or to the named identities.
    func sendData(_ request: Livekit_SendDataRequest) async throws(TwirpError) -> Livekit_SendDataResponse {
        guard let room = rooms[request.room] else { throw .notFound("room not found") }
        var user = Livekit_UserPacket()
        user.payload = request.data
        if request.hasTopic { user.topic = request.topic }
        var identities = request.destinationIdentities
        for sid in request.destinationSids {
            if let p = room.participant(sid: sid) { identities.append(p.identity) }
        }
        var packet = Livekit_DataPacket()
        packet.kind = request.kind
        packet.destinationIdentities = identities
        packet.value = .user(user)
        let (label, roomName, data, recipients) = (
            request.kind == .lossy ? "_lossy" : "_reliable", room.name, packet, identities
        )
        try? await media.perform { router, _ in
            router.send(data, label: label, room: roomName, to: recipients, except: nil)
        }
        return Livekit_SendDataResponse()
    }

    func updateRoomMetadata(_ request: Livekit_UpdateRoomMetadataRequest) throws(TwirpError) -> Livekit_Room {
        guard let room = rooms[request.room] else { throw .notFound("room not found") }
        room.metadata = request.metadata
        var update = Livekit_RoomUpdate()
        update.room = room.info
        for p in room.participants { p.send(.roomUpdate(update)) }
        return room.info
    }
}
