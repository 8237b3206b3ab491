"""Replay fidelity: a session recorded against the demo server, the server
stopped, the same fetches replayed from the file.

    python benchmarks/replay.py

For each fetch: whether the replayed body is byte-for-byte the recorded one,
whether the chunk sizes (``response.chunk`` events, as the server framed them)
and the trailers are the same, the number of ``response.data`` events (reads)
of each, and the time each took (the replay waits the recorded gaps, each at
most ``max_gap``: a drip keeps its rhythm). tests/test_record_replay.py asserts
the equalities; this prints them with the times.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbfetch
from nbfetch.demo import DemoServer

PATHS = (
    "/drip?numbytes=100&duration=1&chunks=10",
    "/chunked?sizes=5,300,7,1200&ext=1&trailers=1&delay=0.1",
    "/stream/20",
    "/bytes/1000000",
    "/gzip",
)


def chunk_sizes(r) -> list[int]:
    return [e["size"] for e in r.events if e.name == "response.chunk"]


def reads(r) -> int:
    return sum(e.name == "response.data" for e in r.events)


async def main() -> None:
    server = DemoServer().start()
    path = os.path.join(tempfile.mkdtemp(), "session.har")
    recorded = {}
    async with nbfetch.AsyncClient() as client:
        with nbfetch.record(path):
            for p in PATHS:
                start = time.perf_counter()
                r = await client.fetch(server.url + p)
                recorded[p] = (r, time.perf_counter() - start)
    server.stop()  # from here on, nothing answers at server.url
    async with nbfetch.AsyncClient() as client:
        with nbfetch.replay(path) as replaying:
            for p in PATHS:
                start = time.perf_counter()
                r = await client.fetch(server.url + p)
                took = time.perf_counter() - start
                r0, took0 = recorded[p]
                print(
                    f"{p}: body equal {r.body == r0.body} ({len(r.body):,} B),"
                    f" chunk sizes equal {chunk_sizes(r) == chunk_sizes(r0)}"
                    f" ({len(chunk_sizes(r))} chunks), trailers equal"
                    f" {dict(r.trailers) == dict(r0.trailers)}, reads {reads(r0)} / {reads(r)},"
                    f" {took0 * 1000:.0f} ms recorded, {took * 1000:.0f} ms replayed"
                )
    print(replaying)


if __name__ == "__main__":
    asyncio.run(main())
