#!/usr/bin/env python3
"""An independent WebRTC peer (aiortc) for MeetKit's interop tests.

One JSON object per line on stdin/stdout:
  --offer:  out {"type": "offer", "sdp"} ; in {"type": "answer", "sdp"}
            (--data-channel: the offer carries a data channel section too)
Every message arriving on a data channel (its own or the peer's) is sent back on it.
  default:  in {"type": "offer", "sdp"}  ; out {"type": "answer", "sdp"}
then it sends a 440 Hz tone (Opus) and a moving pattern (VP8), counts the frames it
decodes from the peer until a {"type": "stop"} line arrives (or --seconds pass), and prints
  {"type": "done", "audio_frames": n, "video_frames": n, "state": "..."}.
Only 127.0.0.1 is gathered and no STUN server is configured: nothing leaves the machine.
"""
import argparse
import asyncio
import fractions
import json
import math
import sys
import time

import aioice.ice
import numpy
from av import AudioFrame, VideoFrame
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, frequency):
        super().__init__()
        self.frequency = frequency
        self.pts = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        target = self.start + self.pts / 48000
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (numpy.arange(960) + self.pts) / 48000
        samples = (numpy.sin(2 * math.pi * self.frequency * t) * 12000).astype(numpy.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.pts
        frame.time_base = fractions.Fraction(1, 48000)
        self.pts += 960
        return frame


class Pattern(MediaStreamTrack):
    kind = "video"

    def __init__(self):
        super().__init__()
        self.index = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        target = self.start + self.index / 30
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        image = numpy.zeros((240, 320, 3), numpy.uint8)
        image[:, :, 0] = (numpy.arange(320)[None, :] + self.index * 4) % 256
        image[:, :, 1] = (numpy.arange(240)[:, None] * 2) % 256
        x = (self.index * 7) % 280
        image[100:140, x:x + 40, :] = 255
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self.index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.index += 1
        return frame


async def count(track, counts):
    try:
        while True:
            await track.recv()
            counts[track.kind] += 1
    except Exception:
        pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--offer", action="store_true")
    parser.add_argument("--data-channel", action="store_true", help="open a data channel (an m=application section)")
    parser.add_argument("--seconds", type=float, default=30.0, help="longest wait for the stop line")
    args = parser.parse_args()

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counts = {"audio": 0, "video": 0}
    readers = []

    @pc.on("track")
    def on_track(track):
        readers.append(asyncio.ensure_future(count(track, counts)))

    pc.addTrack(Tone(440))
    pc.addTrack(Pattern())
    def echo(channel):
        @channel.on("message")
        def on_message(message):
            channel.send(message)

    @pc.on("datachannel")
    def on_datachannel(channel):
        echo(channel)

    if args.data_channel:
        echo(pc.createDataChannel("chat"))
    loop = asyncio.get_running_loop()
    if args.offer:
        await pc.setLocalDescription(await pc.createOffer())
        emit({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    else:
        offer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"type": "answer", "sdp": pc.localDescription.sdp})
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.seconds)
    except asyncio.TimeoutError:
        pass
    emit({"type": "done", "audio_frames": counts["audio"], "video_frames": counts["video"],
          "state": pc.connectionState})
    for r in readers:
        r.cancel()
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
