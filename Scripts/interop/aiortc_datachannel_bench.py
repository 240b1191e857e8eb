#!/usr/bin/env python3
"""Data channel goodput of two aiortc peers on loopback, in one process (one asyncio loop).

Usage: aiortc_datachannel_bench.py MEGABYTES MESSAGE_SIZE
The offerer sends MEGABYTES of MESSAGE_SIZE-byte binary messages on an ordered reliable
channel, keeping at most 1 MiB buffered (waiting on bufferedamountlow), to the answerer.
Prints one JSON line: {"seconds": wall time from the first send to the last byte received,
"cpu_seconds": process CPU over that time, "bytes": bytes received}.
Only 127.0.0.1 is gathered and no STUN server is configured.
"""
import asyncio
import json
import resource
import sys
import time

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    total = int(float(sys.argv[1]) * (1 << 20))
    size = int(sys.argv[2])
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = a.createDataChannel("bulk")
    received = 0
    done = asyncio.Event()

    @b.on("datachannel")
    def on_channel(incoming):
        @incoming.on("message")
        def on_message(message):
            nonlocal received
            received += len(message)
            if received >= total:
                done.set()

    opened = asyncio.Event()
    channel.on("open", opened.set)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await opened.wait()
    channel.bufferedAmountLowThreshold = 256 << 10
    drained = asyncio.Event()
    channel.on("bufferedamountlow", drained.set)
    payload = bytes(size)
    start, cpu0 = time.monotonic(), cpu()
    sent = 0
    while sent < total:
        while channel.bufferedAmount > (1 << 20):
            drained.clear()
            await drained.wait()
        channel.send(payload)
        sent += size
    await done.wait()
    seconds, cpu_seconds = time.monotonic() - start, cpu() - cpu0
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "bytes": received}), flush=True)
    await a.close()
    await b.close()


asyncio.run(main())
