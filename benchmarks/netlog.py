"""The network log's cost: memory of the ring and time per fetch.

    python benchmarks/netlog.py memory [--fetches 10000] [--size 500]
    python benchmarks/netlog.py overhead [--fetches 1000] [--rounds 7]

``memory``: tracemalloc's traced bytes held by the log after ``--fetches``
small JSON GETs (the demo's ``/get``, its Authorization and Cookie echoed) and
as many 64 KiB ones through a ring of ``--size``: a fresh log, its entries only
(each fetch's Response dropped at once).

``overhead``: sequential small GETs (``/bytes/100``) on one keep-alive
connection, rounds interleaved with the log off and on; the median fetch time
of each and their ratio. The demo server runs in its own process (pinned to
CPU 1 when there are two; the client to CPU 0). Wall time and the client
process's CPU time are both given: on a loaded machine the CPU time is the
steadier measure of what the log adds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = (
    "import sys, time\n"
    "from nbfetch.demo import DemoServer\n"
    "s = DemoServer().start()\n"
    "print(s.url, flush=True)\n"
    "sys.stdin.read()\n"
    "s.stop()\n"
)


class Server:
    """The demo server in a child process; stopped when its stdin closes."""

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() >= 2:
            os.sched_setaffinity(self.proc.pid, {1})
            os.sched_setaffinity(0, {0})
        self.url = self.proc.stdout.readline().strip()
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(10)


async def memory(base: str, fetches: int, size: int) -> None:
    import nbfetch
    from nbfetch.client.netlog import NetworkLog

    results = {}
    for label, path in (("small JSON GET (/get)", "/get?page=1"), ("64 KiB GET", "/bytes/65536")):
        log = NetworkLog(size)
        async with nbfetch.AsyncClient() as client:
            await client.fetch(base + path)  # connection and caches warm, outside the trace
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            log.enable()
            for _ in range(fetches):
                await client.fetch(
                    base + path, headers={"Authorization": "Bearer tok-1234", "Cookie": "a=b1234"}
                )
            log.disable()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
        assert len(log) == min(size, fetches)
        results[label] = held
        print(
            f"{label}: {fetches:,} fetches through a ring of {size}: {len(log)} kept, "
            f"{held / 1e6:.2f} MB traced after ({held / len(log):,.0f} B per entry)"
        )
        del log
    return results


async def overhead(base: str, fetches: int, rounds: int) -> None:
    import nbfetch
    from nbfetch.client.netlog import NetworkLog

    log = NetworkLog(500)
    times = {"off": [], "on": []}
    cpu = {"off": [], "on": []}
    async with nbfetch.AsyncClient() as client:
        for _ in range(200):
            await client.fetch(base + "/bytes/100")
        for _ in range(rounds):
            for mode in ("off", "on"):
                if mode == "on":
                    log.enable()
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(fetches):
                    await client.fetch(base + "/bytes/100")
                times[mode].append((time.perf_counter() - start) / fetches)
                cpu[mode].append((time.process_time() - start_cpu) / fetches)
                log.disable()
    for label, samples in (("wall", times), ("client CPU", cpu)):
        off, on = statistics.median(samples["off"]), statistics.median(samples["on"])
        print(
            f"{fetches:,} sequential GETs x {rounds} interleaved rounds, {label}: "
            f"off {off * 1e6:.0f} us/fetch, on {on * 1e6:.0f} us/fetch, "
            f"on/off {on / off:.3f} (+{(on - off) * 1e6:.0f} us per fetch)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["memory", "overhead"])
    parser.add_argument("--fetches", type=int)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with Server() as server:
        if args.what == "memory":
            asyncio.run(memory(server.url, args.fetches or 10_000, args.size))
        else:
            asyncio.run(overhead(server.url, args.fetches or 1000, args.rounds))


if __name__ == "__main__":
    main()
