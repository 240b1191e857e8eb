#!/usr/bin/env python3
"""An independent ICE peer (aioice) for MeetKit's interop tests and benchmarks.

Driven over stdin/stdout with one JSON object per line:
  out: {"type": "local", "ufrag", "pwd", "candidates": [...]}   once gathered
  in:  {"ufrag", "pwd", "candidates": [...]}                    the peer's, then end-of-candidates
  out: {"type": "connected", "ms": setup time}                  once a pair is nominated
  out: {"type": "done", "received": n, "sent": n}               after exchanging --count datagrams
Logs go to stderr. Only the given address is gathered and no STUN server is used, so no
traffic leaves the machine.
"""
import argparse
import asyncio
import json
import sys
import time

import aioice
import aioice.ice


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--controlling", action="store_true")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()

    # aioice leaves loopback out of its host candidates; gather exactly the given address.
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [args.address]
    conn = aioice.Connection(ice_controlling=args.controlling, components=1, use_ipv6=False)
    await conn.gather_candidates()
    emit({
        "type": "local",
        "ufrag": conn.local_username,
        "pwd": conn.local_password,
        "candidates": [c.to_sdp() for c in conn.local_candidates],
    })

    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        return
    remote = json.loads(line)
    conn.remote_username = remote["ufrag"]
    conn.remote_password = remote["pwd"]
    for c in remote["candidates"]:
        await conn.add_remote_candidate(aioice.Candidate.from_sdp(c))
    await conn.add_remote_candidate(None)

    start = time.monotonic()
    await asyncio.wait_for(conn.connect(), args.timeout)
    emit({"type": "connected", "ms": (time.monotonic() - start) * 1000})

    received = 0

    async def receiver():
        nonlocal received
        while received < args.count:
            data = await conn.recv()
            if data[:1] == b"\x80":
                received += 1

    async def sender():
        for i in range(args.count):
            await conn.send(bytes([0x80, i & 0xFF, 0xA1]))
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(asyncio.gather(receiver(), sender()), args.timeout)
    except asyncio.TimeoutError:
        print("aioice_peer: timed out waiting for datagrams", file=sys.stderr)
    emit({"type": "done", "received": received, "sent": args.count})
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
