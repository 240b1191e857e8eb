#!/usr/bin/env python3
"""Reference for meetkit-bench: two aioice agents connect on 127.0.0.1, N times.

Prints one JSON line: {"median_ms": ..., "samples": [...]}, the time from giving each
agent the other's candidates (end-of-candidates included) to both connect() returning.
"""
import asyncio
import json
import statistics
import sys
import time

import aioice
import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


async def once():
    a = aioice.Connection(ice_controlling=True, use_ipv6=False)
    b = aioice.Connection(ice_controlling=False, use_ipv6=False)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    start = time.monotonic()
    for x, y in ((a, b), (b, a)):
        x.remote_username = y.local_username
        x.remote_password = y.local_password
        for c in y.local_candidates:
            await x.add_remote_candidate(c)
        await x.add_remote_candidate(None)
    await asyncio.gather(a.connect(), b.connect())
    elapsed = (time.monotonic() - start) * 1000
    await asyncio.gather(a.close(), b.close())
    return elapsed


async def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    samples = [await once() for _ in range(rounds)]
    print(json.dumps({"median_ms": statistics.median(samples), "samples": samples}))


asyncio.run(main())
