#!/usr/bin/env python3
"""Reference for meetkit-bench: one aiortc sender, STREAMS Opus streams in one BUNDLE, to
two receivers — MeetKit (the benchmark, over stdin/stdout) and an aiortc receiver (this
script again, with --receiver, in a process of its own). Both decode everything.

The sender sends pre-encoded 20 ms Opus packets of a tone (aiortc packs them without
encoding), paced in real time, so its own cost is small and the same for both receivers.
By default it sends to both at once; with --sequential it sends to one receiver at a time
(MeetKit's window, then aiortc's), so neither receiver's CPU time is measured while the
other's decoding takes the machine's cores (aiortc's receiver keeps one core busy).

Lines on stdout (JSON): {"type": "offer", "sdp", "opus"} (the packets sent, in hex, for the
benchmark's bare-cost reference; answer expected on stdin), then
{"type": "start"} when both connections are up and a warm-up has passed (with --sequential,
when MeetKit's streams alone flow), then after SECONDS {"type": "stop"} (MeetKit's window
ends; --sequential only, then aiortc's window of SECONDS runs) and
{"type": "done", "aiortc_frames", "aiortc_cpu_seconds", "seconds", "streams"}.
The aiortc receiver's CPU time is its process time (all its threads) over its window.
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
from av import AudioFrame
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def opus_packets(count=50):
    """COUNT consecutive 20 ms Opus packets of a 440 Hz tone, encoded once by aiortc."""
    encoder = OpusEncoder()
    packets = []
    for i in range(count):
        t = (numpy.arange(960) + i * 960) / 48000
        samples = (numpy.sin(2 * math.pi * 440 * t) * 12000).astype(numpy.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, _ = encoder.encode(frame)
        packets.append(payloads[0])
    return packets


class Encoded:
    """A pre-encoded packet as aiortc's sender takes it: bytes with a pts and a time base."""

    def __init__(self, data, pts):
        self.data = data
        self.pts = pts
        self.time_base = fractions.Fraction(1, 48000)

    def __bytes__(self):
        return self.data


class Gate:
    """Whether the tracks of one receiver send; closed, they wait and then resume in real
    time (no burst to catch up)."""

    def __init__(self):
        self.event = asyncio.Event()
        self.event.set()


class Passthrough(MediaStreamTrack):
    kind = "audio"

    def __init__(self, packets, start, gate):
        super().__init__()
        self.packets = packets
        self.index = 0
        self.start = start
        self.gate = gate

    async def recv(self):
        if not self.gate.event.is_set():
            await self.gate.event.wait()
            self.start = time.monotonic() - self.index * 0.02
        target = self.start + self.index * 0.02
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = Encoded(self.packets[self.index % len(self.packets)], self.index * 960)
        self.index += 1
        return packet


async def connected(pc, timeout=20):
    end = time.monotonic() + timeout
    while pc.connectionState != "connected" and time.monotonic() < end:
        await asyncio.sleep(0.05)
    return pc.connectionState == "connected"


async def receiver():
    """Answers an offer from stdin, decodes every track; counts frames and CPU time
    between a "start" and a "stop" line."""
    loop = asyncio.get_running_loop()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counts = [0]
    tasks = []

    async def consume(track):
        try:
            while True:
                await track.recv()
                counts[0] += 1
        except Exception:
            pass

    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
    offer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    emit({"type": "answer", "sdp": pc.localDescription.sdp})
    await loop.run_in_executor(None, sys.stdin.readline)  # start
    frames, cpu = counts[0], time.process_time()
    await loop.run_in_executor(None, sys.stdin.readline)  # stop
    emit({"frames": counts[0] - frames, "cpu_seconds": time.process_time() - cpu})
    for t in tasks:
        t.cancel()
    await pc.close()


async def sender(streams, seconds, sequential):
    loop = asyncio.get_running_loop()
    packets = opus_packets()
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--receiver", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    async def to_child(obj):
        child.stdin.write((json.dumps(obj) + "\n").encode())
        await child.stdin.drain()

    start = time.monotonic() + 1.0
    to_aiortc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    to_meetkit = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    gates = {"aiortc": Gate(), "meetkit": Gate()}
    for pc, gate in ((to_aiortc, gates["aiortc"]), (to_meetkit, gates["meetkit"])):
        for _ in range(streams):
            pc.addTrack(Passthrough(packets, start, gate))
    await to_aiortc.setLocalDescription(await to_aiortc.createOffer())
    await to_child({"type": "offer", "sdp": to_aiortc.localDescription.sdp})
    answer = json.loads(await child.stdout.readline())
    await to_aiortc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    await to_meetkit.setLocalDescription(await to_meetkit.createOffer())
    emit({"type": "offer", "sdp": to_meetkit.localDescription.sdp, "opus": [p.hex() for p in packets]})
    answer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    await to_meetkit.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    ok = await connected(to_aiortc) and await connected(to_meetkit)
    if not ok:
        emit({"type": "failed", "aiortc": to_aiortc.connectionState, "meetkit": to_meetkit.connectionState})
        return
    await asyncio.sleep(2.0)  # warm-up: every stream flowing
    if sequential:
        gates["aiortc"].event.clear()
        await asyncio.sleep(1.0)  # what was on its way to aiortc is decoded
        emit({"type": "start"})
        await asyncio.sleep(seconds)
        emit({"type": "stop"})
        gates["meetkit"].event.clear()
        gates["aiortc"].event.set()
        await asyncio.sleep(1.0)
        await to_child("start")
        await asyncio.sleep(seconds)
        await to_child("stop")
    else:
        emit({"type": "start"})
        await to_child("start")
        await asyncio.sleep(seconds)
        await to_child("stop")
    result = json.loads(await child.stdout.readline())
    emit({"type": "done", "aiortc_frames": result["frames"], "aiortc_cpu_seconds": result["cpu_seconds"],
          "seconds": seconds, "streams": streams})
    await loop.run_in_executor(None, sys.stdin.readline)  # the benchmark has read its counters
    await to_aiortc.close()
    await to_meetkit.close()
    child.stdin.close()
    await child.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--receiver", action="store_true")
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sequential", action="store_true")
    args = parser.parse_args()
    asyncio.run(receiver() if args.receiver else sender(args.streams, args.seconds, args.sequential))


if __name__ == "__main__":
    main()
