"""LiveKit's server API client (PyPI `livekit-api`) for MeetKit's tests of meet-server:
one RoomService call per run, its result as JSON on stdout.

    livekit_room_service.py URL KEY SECRET METHOD [JSON-ARGUMENTS]

METHOD: list_rooms, create_room, list_participants, mute_published_track, remove_participant,
send_data, update_room_metadata, update_participant. Errors print {"error": code, "message": …}.
"""

import asyncio
import json
import sys

from google.protobuf.json_format import MessageToDict
from livekit import api


async def main() -> None:
    url, key, secret, method = sys.argv[1:5]
    args = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    lkapi = api.LiveKitAPI(url, key, secret)
    room = lkapi.room
    try:
        if method == "list_rooms":
            result = await room.list_rooms(api.ListRoomsRequest(names=args.get("names", [])))
        elif method == "create_room":
            result = await room.create_room(api.CreateRoomRequest(**args))
        elif method == "list_participants":
            result = await room.list_participants(api.ListParticipantsRequest(room=args["room"]))
        elif method == "mute_published_track":
            result = await room.mute_published_track(api.MuteRoomTrackRequest(**args))
        elif method == "remove_participant":
            result = await room.remove_participant(api.RoomParticipantIdentity(**args))
        elif method == "send_data":
            kind = api.DataPacket.Kind.RELIABLE if args.get("reliable", True) else api.DataPacket.Kind.LOSSY
            result = await room.send_data(
                api.SendDataRequest(
                    room=args["room"], data=args["payload"].encode(), kind=kind, topic=args.get("topic"),
                    destination_identities=args.get("to", []),
                )
            )
        elif method == "update_room_metadata":
            result = await room.update_room_metadata(api.UpdateRoomMetadataRequest(**args))
        elif method == "update_participant":
            result = await room.update_participant(api.UpdateParticipantRequest(**args))
        else:
            raise SystemExit(f"unknown method {method}")
        print(json.dumps(MessageToDict(result) if result is not None else {}))
    except api.TwirpError as error:
        print(json.dumps({"error": error.code, "message": error.message, "status": error.status}))
    finally:
        await lkapi.aclose()


if __name__ == "__main__":
    asyncio.run(main())
