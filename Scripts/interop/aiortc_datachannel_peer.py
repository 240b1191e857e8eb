#!/usr/bin/env python3
"""An independent data channel peer (aiortc) for MeetKit's interop tests.

One JSON object per line on stdin/stdout.
  --offer: creates the channels of --channel LABEL (before offering), out {"type": "offer"},
           in {"type": "answer"}; otherwise in {"type": "offer"}, out {"type": "answer"}.
  --media: adds an audio and a video track (data channel and media in one BUNDLE).
Then commands, one per line:
  {"open": LABEL, "ordered": bool, "protocol": str}   opens a channel
  {"send": LABEL, "text": str} | {"send": LABEL, "hex": str}
  {"close": LABEL}
  {"stop": true}                                     closes and exits
Reports: {"event": "open", "label", "id", "protocol", "ordered"} for every channel open
(its own and the peer's), {"event": "message", "label", "text"} or {"..., "hex"},
{"event": "close", "label"}, and {"event": "max-message-size", "value"} for the peer's.
Only 127.0.0.1 is gathered and no STUN server is configured.
"""
import argparse
import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--offer", action="store_true")
    parser.add_argument("--media", action="store_true")
    parser.add_argument("--channel", action="append", default=[])
    args = parser.parse_args()

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channels = {}

    def watch(channel):
        channels[channel.label] = channel

        def opened():
            emit({"event": "open", "label": channel.label, "id": channel.id,
                  "protocol": channel.protocol, "ordered": channel.ordered})

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

        @channel.on("message")
        def on_message(message):
            if isinstance(message, str):
                emit({"event": "message", "label": channel.label, "text": message})
            else:
                emit({"event": "message", "label": channel.label, "hex": message.hex()})

        @channel.on("close")
        def on_close():
            emit({"event": "close", "label": channel.label})

    @pc.on("datachannel")
    def on_datachannel(channel):
        watch(channel)

    if args.media:
        pc.addTrack(AudioStreamTrack())
        pc.addTrack(VideoStreamTrack())
    for label in args.channel:
        watch(pc.createDataChannel(label))
    loop = asyncio.get_running_loop()

    async def read():
        return json.loads(await loop.run_in_executor(None, sys.stdin.readline))

    if args.offer:
        await pc.setLocalDescription(await pc.createOffer())
        emit({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await read()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    else:
        offer = await read()
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"type": "answer", "sdp": pc.localDescription.sdp})

    while True:
        command = await read()
        if "open" in command:
            watch(pc.createDataChannel(command["open"], ordered=command.get("ordered", True),
                                       protocol=command.get("protocol", "")))
        elif "send" in command:
            channel = channels[command["send"]]
            if channel.readyState == "connecting":
                opened = asyncio.Event()
                channel.on("open", opened.set)
                await opened.wait()
            channel.send(command["text"] if "text" in command else bytes.fromhex(command["hex"]))
        elif "close" in command:
            channels[command["close"]].close()
        else:
            break
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
