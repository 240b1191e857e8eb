"""A participant of a LiveKit room driven by LiveKit's official Python client (PyPI `livekit`,
whose wheel carries the Rust SDK and libwebrtc), for MeetKit's interop tests.

    livekit_participant.py --url ws://10.99.0.1:7880 --token T [--mode v1|v0]

It connects, then reads one JSON command per line on stdin and writes one JSON event per
line on stdout:

    {"cmd": "publish_audio", "hz": 440}                  a sine tone as the microphone
    {"cmd": "publish_video", "width": 640, "height": 360, "simulcast": false, "source": "camera"}
    {"cmd": "sender_stats"}                              → libwebrtc's outgoing streams (rid, size,
                                                           quality limitation, target bitrate)
    {"cmd": "data", "payload": "…", "reliable": true, "topic": "t", "to": ["bob"]}
    {"cmd": "text", "text": "…", "topic": "lk.chat"}      a text stream
    {"cmd": "bytes", "size": 100000, "name": "f.bin", "topic": "files"}   a byte stream of
                                                           bytes i % 251 (i = 0, 1, …)
    {"cmd": "attributes", "attributes": {"k": "v"}}
    {"cmd": "mute", "kind": "audio", "muted": true}
    {"cmd": "unpublish", "kind": "audio"}                stops publishing the track (renegotiates)
    {"cmd": "quality", "identity": "alice", "quality": "low"}   for its simulcast video
    {"cmd": "subscribe", "identity": "alice", "subscribed": false}   all of alice's tracks
    {"cmd": "simulate", "scenario": "node_failure"}      the server drops its WebSocket
    {"cmd": "stats"}                                     → {"event": "stats", …}
    {"cmd": "leave"}

Events: connected, participant_connected/disconnected, track_subscribed/unsubscribed,
track_muted/unmuted, data, text, bytes (name, topic, size, checksum: the sum of (i + 1) * byte i, mod 2^61 - 1), metadata, name, attributes, active_speakers, room_metadata, disconnected, stats (audio
frames and the dominant frequency of the last second per sender; video frames and the
last size per sender), error.
"""

import argparse
import asyncio
import json
import math
import sys
import time

import numpy as np
from livekit import rtc

SAMPLE_RATE = 48000


def checksum(data: bytes) -> int:
    """A position-sensitive sum of `data`, which the Swift side computes the same way."""
    total = 0
    for i, b in enumerate(data):
        total = (total + (i + 1) * b) % (2**61 - 1)
    return total


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Participant:
    def __init__(self) -> None:
        self.room = rtc.Room()
        self.audio: dict[str, dict] = {}
        self.video: dict[str, dict] = {}
        self.tasks: list[asyncio.Task] = []
        self.sources: dict[str, object] = {}
        self.local_tracks: dict[str, rtc.LocalTrackPublication] = {}
        room = self.room
        room.on("participant_connected", lambda p: emit("participant_connected", identity=p.identity, name=p.name))
        room.on(
            "participant_disconnected",
            lambda p: emit("participant_disconnected", identity=p.identity),
        )
        room.on("track_subscribed", self.on_track)
        room.on(
            "track_unsubscribed",
            lambda t, pub, p: emit("track_unsubscribed", identity=p.identity, sid=pub.sid),
        )
        room.on("track_published", lambda pub, p: emit("track_published", identity=p.identity, sid=pub.sid))
        room.on("track_unpublished", lambda pub, p: emit("track_unpublished", identity=p.identity, sid=pub.sid))
        room.on("track_muted", lambda p, pub: emit("track_muted", identity=p.identity, sid=pub.sid))
        room.on("track_unmuted", lambda p, pub: emit("track_unmuted", identity=p.identity, sid=pub.sid))
        room.on(
            "data_received",
            lambda d: emit(
                "data",
                identity=d.participant.identity if d.participant else None,
                payload=d.data.decode(errors="replace"),
                topic=d.topic,
                kind=int(d.kind),
            ),
        )
        room.on(
            "participant_attributes_changed",
            lambda changed, p: emit("attributes", identity=p.identity, attributes=dict(p.attributes)),
        )
        room.on(
            "participant_metadata_changed",
            lambda p, old, new: emit("metadata", identity=p.identity, metadata=new),
        )
        room.on("participant_name_changed", lambda p, old, new: emit("name", identity=p.identity, name=new))
        room.on(
            "active_speakers_changed",
            lambda speakers: emit("active_speakers", identities=[s.identity for s in speakers]),
        )
        room.on("disconnected", lambda reason: emit("disconnected", reason=int(reason)))
        room.on("room_metadata_changed", lambda old, new: emit("room_metadata", metadata=new))
        room.on("reconnecting", lambda: emit("reconnecting"))
        room.on("reconnected", lambda: emit("reconnected"))
        room.register_text_stream_handler("lk.chat", self.on_text)
        room.register_byte_stream_handler("files", self.on_bytes)

    def on_text(self, reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            emit("text", identity=identity, topic=reader.info.topic, text=text, id=reader.info.stream_id)

        self.tasks.append(asyncio.ensure_future(read()))

    def on_bytes(self, reader: rtc.ByteStreamReader, identity: str) -> None:
        async def read() -> None:
            data = b""
            async for chunk in reader:
                data += chunk
            emit(
                "bytes", identity=identity, topic=reader.info.topic, name=reader.info.name,
                mime_type=reader.info.mime_type, size=len(data), checksum=checksum(data),
            )

        self.tasks.append(asyncio.ensure_future(read()))

    def on_track(self, track: rtc.Track, pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant) -> None:
        emit("track_subscribed", identity=p.identity, sid=pub.sid, kind=int(track.kind), source=int(pub.source))
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self.tasks.append(asyncio.ensure_future(self.receive_audio(track, p.identity)))
        else:
            self.tasks.append(asyncio.ensure_future(self.receive_video(track, pub, p.identity)))

    async def receive_audio(self, track: rtc.Track, identity: str) -> None:
        state = self.audio.setdefault(identity, {"frames": 0, "samples": np.zeros(0, dtype=np.int16)})
        async for event in rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1):
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            state["frames"] += 1
            state["samples"] = np.concatenate([state["samples"], samples])[-SAMPLE_RATE:]

    async def receive_video(self, track: rtc.Track, pub: rtc.RemoteTrackPublication, identity: str) -> None:
        key = f"{identity}/{pub.sid}"
        state = self.video.setdefault(key, {"frames": 0, "width": 0, "height": 0, "sizes": []})
        async for event in rtc.VideoStream(track):
            state["frames"] += 1
            size = (event.frame.width, event.frame.height)
            if size != (state["width"], state["height"]):
                state["sizes"].append(list(size))
            state["width"], state["height"] = size

    def stats(self) -> dict:
        audio = {}
        for identity, s in self.audio.items():
            samples = s["samples"].astype(np.float64)
            frequency = 0.0
            if len(samples) >= SAMPLE_RATE // 2 and np.abs(samples).max() > 0:
                spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
                frequency = float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))
            audio[identity] = {"frames": s["frames"], "frequency": round(frequency, 1)}
        video = {k: {kk: v for kk, v in s.items()} for k, s in self.video.items()}
        return {"audio": audio, "video": video}

    async def publish_audio(self, hz: float) -> None:
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        pub = await self.room.local_participant.publish_track(track, options)
        self.local_tracks["audio"] = pub
        self.sources["audio"] = source
        emit("published", kind="audio", sid=pub.sid)

        async def tone() -> None:
            n = SAMPLE_RATE // 100
            t = 0
            while True:
                samples = (np.sin(2 * math.pi * hz * (np.arange(n) + t) / SAMPLE_RATE) * 8000).astype(np.int16)
                t += n
                frame = rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, n)
                await source.capture_frame(frame)

        self.tasks.append(asyncio.ensure_future(tone()))

    async def publish_video(self, width: int, height: int, simulcast: bool, source_name: str) -> None:
        source = rtc.VideoSource(width, height)
        track = rtc.LocalVideoTrack.create_video_track(source_name, source)
        kind = rtc.TrackSource.SOURCE_SCREENSHARE if source_name == "screen" else rtc.TrackSource.SOURCE_CAMERA
        options = rtc.TrackPublishOptions(source=kind, simulcast=simulcast)
        pub = await self.room.local_participant.publish_track(track, options)
        self.local_tracks[source_name] = pub
        emit("published", kind="video", sid=pub.sid, source=source_name)

        async def frames() -> None:
            i = 0
            start = time.monotonic()
            base = np.zeros((height, width, 4), dtype=np.uint8)
            base[:, :, 3] = 255
            xs = np.arange(width, dtype=np.int32)[None, :]
            ys = np.arange(height, dtype=np.int32)[:, None]
            while True:
                picture = base.copy()
                picture[:, :, 0] = ((xs + i * 4) % 256).astype(np.uint8)
                picture[:, :, 1] = ((ys + i * 2) % 256).astype(np.uint8)
                picture[:, :, 2] = ((xs + ys) // 4 % 256).astype(np.uint8)
                source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, picture.tobytes()))
                i += 1
                await asyncio.sleep(max(0.0, start + i / 15 - time.monotonic()))

        self.tasks.append(asyncio.ensure_future(frames()))

    async def command(self, c: dict) -> bool:
        lp = self.room.local_participant
        name = c.get("cmd")
        if name == "publish_audio":
            await self.publish_audio(float(c.get("hz", 440)))
        elif name == "publish_video":
            await self.publish_video(
                int(c.get("width", 640)), int(c.get("height", 360)), bool(c.get("simulcast", False)),
                c.get("source", "camera"),
            )
        elif name == "data":
            await lp.publish_data(
                c["payload"].encode(), reliable=c.get("reliable", True), topic=c.get("topic", ""),
                destination_identities=c.get("to", []),
            )
        elif name == "text":
            await lp.send_text(c["text"], topic=c.get("topic", "lk.chat"))
        elif name == "bytes":
            data = bytes(i % 251 for i in range(int(c["size"])))
            await lp.send_bytes(
                data, topic=c.get("topic", "files"), name=c.get("name", "file.bin"),
                mime_type="application/octet-stream",
            )
        elif name == "attributes":
            await lp.set_attributes(c["attributes"])
        elif name == "mute":
            pub = self.local_tracks.get(c.get("kind", "audio"))
            if pub is not None and pub.track is not None:
                if c.get("muted", True):
                    pub.track.mute()
                else:
                    pub.track.unmute()
        elif name == "unpublish":
            pub = self.local_tracks.pop(c.get("kind", "audio"), None)
            if pub is not None:
                await lp.unpublish_track(pub.sid)
                emit("unpublished", kind=c.get("kind", "audio"), sid=pub.sid)
        elif name == "quality":
            qualities = {
                "low": rtc.VideoQuality.VIDEO_QUALITY_LOW,
                "medium": rtc.VideoQuality.VIDEO_QUALITY_MEDIUM,
                "high": rtc.VideoQuality.VIDEO_QUALITY_HIGH,
            }
            for p in self.room.remote_participants.values():
                if p.identity != c["identity"]:
                    continue
                for pub in p.track_publications.values():
                    if pub.kind == rtc.TrackKind.KIND_VIDEO:
                        pub.set_video_quality(qualities[c["quality"]])
        elif name == "subscribe":
            for p in self.room.remote_participants.values():
                if p.identity == c["identity"]:
                    for pub in p.track_publications.values():
                        pub.set_subscribed(bool(c.get("subscribed", True)))
        elif name == "simulate":
            kinds = {
                "node_failure": rtc.SimulateScenarioKind.SIMULATE_NODE_FAILURE,
                "signal_reconnect": rtc.SimulateScenarioKind.SIMULATE_SIGNAL_RECONNECT,
            }
            await self.room.simulate_scenario(kinds[c["scenario"]])
        elif name == "sender_stats":
            # What libwebrtc says of its outgoing streams (resolution, and what limits it).
            stats = await self.room.get_rtc_stats()
            out = []
            for s in stats.publisher_stats:
                if s.HasField("outbound_rtp"):
                    o = s.outbound_rtp
                    out.append({
                        "rid": o.outbound.rid, "width": o.outbound.frame_width, "height": o.outbound.frame_height,
                        "limitation": o.outbound.quality_limitation_reason, "active": o.outbound.active,
                        "target": o.outbound.target_bitrate,
                    })
            emit("sender_stats", streams=out)
        elif name == "stats":
            emit("stats", **self.stats())
        elif name == "leave":
            return False
        return True


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--mode", choices=["v0", "v1"], default="v1")
    args = parser.parse_args()

    participant = Participant()
    options = rtc.RoomOptions(auto_subscribe=True, single_peer_connection=args.mode == "v1")
    try:
        await participant.room.connect(args.url, args.token, options=options)
    except Exception as error:  # the reason is what the test checks
        emit("error", message=str(error))
        return
    room = participant.room
    emit(
        "connected",
        room=room.name,
        sid=room.local_participant.sid,
        identity=room.local_participant.identity,
        others=sorted(p.identity for p in room.remote_participants.values()),
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            if not await participant.command(json.loads(line)):
                break
        except Exception as error:
            emit("error", message=f"{type(error).__name__}: {error}")
    for task in participant.tasks:
        task.cancel()
    await room.disconnect()
    emit("left")


if __name__ == "__main__":
    asyncio.run(main())
