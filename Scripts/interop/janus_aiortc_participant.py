#!/usr/bin/env python3
"""An independent participant for MeetKit's room tests: aiortc in a Janus VideoRoom.

Joins ROOM on the Janus at URL as a publisher sending a tone (Opus) and a moving pattern
(VP8), waits until it sees --expect other publishers, subscribes to each of them (one
subscriber handle per publisher), and counts the frames it decodes per publisher.
JSON lines on stdout:
  {"type": "joined", "id": <its publisher id>}
  {"type": "subscribed", "feeds": [...], "state": ...}   once its connections are up
  {"type": "done", "received": {"<feed id>": {"audio": n, "video": n}}}   after a stop line
Only --address is gathered and no STUN server is configured: nothing leaves the machine.
"""
import argparse
import asyncio
import json
import random
import sys

import aioice.ice
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from aiortc_peer import Pattern, Tone, count  # noqa: E402  (the same generators and counter as the 1:1 tests)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Janus:
    """Just enough of the Janus API: transactions, session, handles, events."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = {}
        self.events = asyncio.Queue()
        self.session = None

    async def reader(self):
        async for text in self.ws:
            msg = json.loads(text)
            tx = msg.get("transaction")
            if tx in self.pending and msg.get("janus") != "ack":
                self.pending.pop(tx).set_result(msg)
            elif msg.get("janus") == "event":
                await self.events.put(msg)

    async def send(self, msg):
        tx = "py%08x" % random.getrandbits(32)
        msg["transaction"] = tx
        if self.session:
            msg["session_id"] = self.session
        fut = asyncio.get_running_loop().create_future()
        self.pending[tx] = fut
        await self.ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(fut, 10)
        if reply.get("janus") == "error":
            raise RuntimeError(reply["error"])
        data = reply.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise RuntimeError(data)
        return reply

    async def keepalive(self):
        while True:
            await asyncio.sleep(20)
            self.ws and await self.ws.send(json.dumps({"janus": "keepalive", "session_id": self.session,
                                                       "transaction": "ka"}))




async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--room", type=int, default=1234)
    parser.add_argument("--address", required=True)
    parser.add_argument("--expect", type=int, default=1, help="publishers to wait for before subscribing")
    parser.add_argument("--frequency", type=float, default=550.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="longest wait for the stop line")
    args = parser.parse_args()
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [args.address]

    async with websockets.connect(args.url, subprotocols=["janus-protocol"]) as ws:
        janus = Janus(ws)
        reader = asyncio.ensure_future(janus.reader())
        janus.session = (await janus.send({"janus": "create"}))["data"]["id"]
        keepalive = asyncio.ensure_future(janus.keepalive())
        pub_handle = (await janus.send({"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
        joined = await janus.send({"janus": "message", "handle_id": pub_handle,
                                   "body": {"request": "join", "ptype": "publisher", "room": args.room,
                                            "display": "aiortc"}})
        data = joined["plugindata"]["data"]
        my_id = data["id"]
        publishers = {p["id"]: p for p in data.get("publishers", [])}
        emit({"type": "joined", "id": my_id})

        pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pub.addTransceiver(Tone(args.frequency), direction="sendonly")
        pub.addTransceiver(Pattern(), direction="sendonly")
        await pub.setLocalDescription(await pub.createOffer())
        reply = await janus.send({"janus": "message", "handle_id": pub_handle, "body": {"request": "publish"},
                                  "jsep": {"type": "offer", "sdp": pub.localDescription.sdp}})
        await pub.setRemoteDescription(RTCSessionDescription(reply["jsep"]["sdp"], "answer"))

        # Wait for the other publishers (events on the publisher handle).
        while len(publishers) < args.expect:
            event = await asyncio.wait_for(janus.events.get(), 30)
            for p in event.get("plugindata", {}).get("data", {}).get("publishers", []):
                publishers[p["id"]] = p
        feeds = sorted(publishers)
        counts = {}
        readers = []
        subs = []
        # One subscriber handle (and PeerConnection) per feed: aiortc answers a multistream
        # offer carrying several video sections with port 9 on all but the first, and Janus
        # then sends it only the first video — a quirk between these two, so keep it simple.
        for feed in feeds:
            handle = (await janus.send({"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
            attached = await janus.send({"janus": "message", "handle_id": handle,
                                         "body": {"request": "join", "ptype": "subscriber", "room": args.room,
                                                  "streams": [{"feed": feed}]}})
            sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            tally = counts.setdefault(str(feed), {"audio": 0, "video": 0})

            def on_track(track, tally=tally):
                readers.append(asyncio.ensure_future(count(track, tally)))

            sub.on("track", on_track)
            await sub.setRemoteDescription(RTCSessionDescription(attached["jsep"]["sdp"], "offer"))
            await sub.setLocalDescription(await sub.createAnswer())
            await janus.send({"janus": "message", "handle_id": handle, "body": {"request": "start"},
                              "jsep": {"type": "answer", "sdp": sub.localDescription.sdp}})
            subs.append(sub)
        # Report only once media can flow, so that the first keyframes are not sent into the void.
        for _ in range(200):
            if pub.connectionState == "connected" and all(s.connectionState == "connected" for s in subs):
                break
            await asyncio.sleep(0.05)
        emit({"type": "subscribed", "feeds": feeds,
              "state": "connected" if all(s.connectionState == "connected" for s in subs) else "not connected"})

        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.seconds)
        except asyncio.TimeoutError:
            pass
        emit({"type": "done", "received": counts})
        for r in readers:
            r.cancel()
        keepalive.cancel()
        try:
            await janus.send({"janus": "message", "handle_id": pub_handle, "body": {"request": "leave"}})
            await janus.send({"janus": "destroy"})
        except Exception:
            pass
        await pub.close()
        for sub in subs:
            await sub.close()
        reader.cancel()


asyncio.run(main())
