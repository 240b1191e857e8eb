import Foundation
import HTTPTypes
import Hummingbird
import LiveKitProtocol
import NIOCore
import SwiftProtobuf

/// LiveKit's server API over Twirp: `POST /twirp/livekit.RoomService/<Method>` with a
/// protobuf (or JSON) body and `Authorization: Bearer <token>`, the token signed with an
/// API key and granting what the method needs (roomCreate, roomList, or roomAdmin on the
/// room); errors as Twirp's `{"code", "msg"}` with their HTTP status.
enum TwirpRoomService {
    /// The largest request body read.
    static let maxBody = 1 << 20

    static func addRoutes(to router: Router<BasicRequestContext>, directory: RoomDirectory) {
        router.post("/twirp/livekit.RoomService/:method") { request, context -> Response in
            let method = context.parameters.get("method") ?? ""
            let json = request.headers[.contentType]?.hasPrefix("application/json") ?? false
            do {
                let body = try await request.body.collect(upTo: maxBody)
                let claims = try await authorize(request, directory: directory)
                return try await dispatch(method, body: body, json: json, claims: claims, directory: directory)
            } catch let error as TwirpError {
                return failure(error)
            } catch {
                return failure(TwirpError(code: "malformed", message: "\(error)", status: 400))
            }
        }
    }

    private static func authorize(_ request: Request, directory: RoomDirectory) async throws(TwirpError)
        -> AccessTokenClaims
    {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw .unauthenticated("invalid authorization header. Must start with Bearer")
        }
        do {
            return try await directory.keys.verify(String(header.dropFirst("Bearer ".count)))
        } catch {
            throw .unauthenticated(error.description)
        }
    }

    private static func dispatch(
        _ method: String, body: ByteBuffer, json: Bool, claims: AccessTokenClaims, directory: RoomDirectory
    ) async throws -> Response {
        let grant = claims.video ?? VideoGrant()
        func admin(_ room: String) throws(TwirpError) {
            guard grant.roomAdmin == true, grant.room == room else { throw .denied("permissions denied") }
        }
        switch method {
        case "CreateRoom":
            return try await call(body, json) { (r: Livekit_CreateRoomRequest) throws(TwirpError) in
                guard grant.roomCreate == true else { throw .denied("permissions denied") }
                guard !r.name.isEmpty else { throw .invalid("room name cannot be empty") }
                return await directory.createRoom(r)
            }
        case "ListRooms":
            return try await call(body, json) { (r: Livekit_ListRoomsRequest) throws(TwirpError) in
                guard grant.roomList == true else { throw .denied("permissions denied") }
                return await directory.listRooms(r)
            }
        case "DeleteRoom":
            return try await call(body, json) { (r: Livekit_DeleteRoomRequest) throws(TwirpError) in
                guard grant.roomCreate == true else { throw .denied("permissions denied") }
                return try await directory.deleteRoom(r)
            }
        case "ListParticipants":
            return try await call(body, json) { (r: Livekit_ListParticipantsRequest) throws(TwirpError) in
                try admin(r.room)
                return try await directory.listParticipants(r)
            }
        case "GetParticipant":
            return try await call(body, json) { (r: Livekit_RoomParticipantIdentity) throws(TwirpError) in
                try admin(r.room)
                return try await directory.getParticipant(r)
            }
        case "RemoveParticipant":
            return try await call(body, json) { (r: Livekit_RoomParticipantIdentity) throws(TwirpError) in
                try admin(r.room)
                return try await directory.removeParticipant(r)
            }
        case "MutePublishedTrack":
            return try await call(body, json) { (r: Livekit_MuteRoomTrackRequest) throws(TwirpError) in
                try admin(r.room)
                return try await directory.mutePublishedTrack(r)
            }
        case "UpdateParticipant":
            return try await call(body, json) { (r: Livekit_UpdateParticipantRequest) throws(TwirpError) in
                try admin(r.room)
                return try await directory.updateParticipant(r)
            }
        case "SendData":
            return try await call(body, json) { (r: Livekit_SendDataRequest) throws(TwirpError) in
                try admin(r.room)
                return try await directory.sendData(r)
            }
        case "UpdateRoomMetadata":
            return try await call(body, json) { (r: Livekit_UpdateRoomMetadataRequest) throws(TwirpError) in
                try admin(r.room)
                return try await directory.updateRoomMetadata(r)
            }
        default:
            throw TwirpError(code: "bad_route", message: "no handler for \(method)", status: 404)
        }
    }

    /// Decodes the request, runs `body`, encodes the answer in the request's encoding.
    private static func call<Req: SwiftProtobuf.Message, Res: SwiftProtobuf.Message>(
        _ buffer: ByteBuffer, _ json: Bool, _ body: (Req) async throws(TwirpError) -> Res
    ) async throws -> Response {
        let bytes = Array(buffer.readableBytesView)
        let request: Req
        do {
            if json {
                var options = JSONDecodingOptions()
                options.ignoreUnknownFields = true
                request = try Req(jsonUTF8Bytes: bytes, options: options)
            } else {
                request = try Req(serializedBytes: bytes)
            }
        } catch {
            throw TwirpError(code: "malformed", message: "the request does not decode: \(error)", status: 400)
        }
        let response = try await body(request)
        let out: [UInt8] = json ? try response.jsonUTF8Bytes() : try response.serializedBytes()
        return Response(
            status: .ok, headers: [.contentType: json ? "application/json" : "application/protobuf"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: out)))
    }

    private static func failure(_ error: TwirpError) -> Response {
        let object = ["code": error.code, "msg": error.message]
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return Response(
            status: HTTPResponse.Status(code: error.status), headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
