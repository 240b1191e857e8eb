#!/usr/bin/env python3
"""Reference for meetkit-bench: two aiortc peers on 127.0.0.1, audio + video transceivers.

Prints one JSON line: {"setup_median_ms": ..., "memory_kib_per_pc": ...}. Setup is timed
from the answer's setRemoteDescription to both connectionStates "connected"; memory is the
resident-set growth per idle connected PeerConnection over --pairs pairs.
"""
import asyncio
import json
import resource
import statistics
import sys
import time

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def pair():
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for pc in (a, b):
        pc.addTransceiver("audio")
        pc.addTransceiver("video")
    connected = asyncio.Event()

    def check():
        if a.connectionState == "connected" and b.connectionState == "connected":
            connected.set()

    a.on("connectionstatechange", check)
    b.on("connectionstatechange", check)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    start = time.monotonic()
    await a.setRemoteDescription(b.localDescription)
    await asyncio.wait_for(connected.wait(), 20)
    return (time.monotonic() - start) * 1000, a, b


async def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    samples = []
    for _ in range(rounds):
        ms, a, b = await pair()
        samples.append(ms)
        await a.close()
        await b.close()
    before = rss_kib()
    pcs = []
    for _ in range(rounds):
        _, a, b = await pair()
        pcs += [a, b]
    await asyncio.sleep(1)
    per_pc = (rss_kib() - before) / len(pcs)
    for pc in pcs:
        await pc.close()
    print(json.dumps({"setup_median_ms": statistics.median(samples), "memory_kib_per_pc": per_pc}))


asyncio.run(main())
