"""The cost of ``nbfetch.record()`` on the shared benchmark's (a) and (d).

    python benchmarks/record.py [--rounds 7]

(a) 2,000 sequential small GETs (nginx ``/small``, one connection) and (d) one
100 MiB stream (``/100m``, ``aiter_bytes()``), each sample in a fresh process,
with recording off, on (the default ``max_bytes`` of 100 MiB) and on with
``max_bytes=1 MiB`` (the bound cuts the body early: only the taps' cost is
left); the modes interleaved, their order rotating each round. Each printed
number is the median over the rounds: the rate (wall clock) and the client
process's CPU time per request or MB (steadier on a shared machine), with
the ratio to recording off; the time of ``stop()`` (building and writing the
file), the file's size and the peak RSS beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

CODE = r"""
import asyncio, json, os, sys, tempfile, time, warnings
import nbfetch

url, mode, workload = sys.argv[1], sys.argv[2], sys.argv[3]
warnings.simplefilter("ignore")

async def run(client):
    if workload == "a":
        n = 2000
        start = time.perf_counter()
        for _ in range(n):
            await client.fetch(url)
        return n / (time.perf_counter() - start)
    start = time.perf_counter()
    size = 0
    async with client.stream("GET", url) as r:
        async for data in r.aiter_bytes():
            size += len(data)
    return size / 1e6 / (time.perf_counter() - start)

async def main():
    async with nbfetch.AsyncClient() as client:
        for _ in range(50 if workload == "a" else 1):
            await client.fetch(url) if workload == "a" else await run(client)
        path = os.path.join(tempfile.mkdtemp(), "s.har")
        rec = None
        if mode != "off":
            rec = nbfetch.record(path, max_bytes=1024**2 if mode == "on-1MiB" else 100 * 1024**2)
        cpu = time.process_time()
        rate = await run(client)
        cpu = time.process_time() - cpu
        stop = size = 0.0
        if rec is not None:
            start = time.perf_counter()
            rec.stop()
            stop = time.perf_counter() - start
            size = os.path.getsize(path)
    # VmHWM, not ru_maxrss: that one is inherited across exec from the parent
    # (which holds nginx's 100 MiB file).
    with open("/proc/self/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    units = 2000 if workload == "a" else 100 * 1024**2 / 1e6
    print(json.dumps({"rate": rate, "cpu": cpu / units, "stop_s": stop, "file_mb": size / 1e6, "rss_mib": rss}))

asyncio.run(main())
"""

MODES = ("off", "on", "on-1MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT.parent / "shared" / "bench"))
    from server import Nginx

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("http_proxy", None)
    with Nginx(gz_size=1 << 20) as server:
        for workload, path, unit in (("a", "/small", "req/s"), ("d", "/100m", "MB/s")):
            samples = {m: [] for m in MODES}
            for i in range(a.rounds):
                order = MODES[i % 3 :] + MODES[: i % 3]
                for mode in order:
                    out = subprocess.run(
                        [sys.executable, "-c", CODE, server.base_url + path, mode, workload],
                        capture_output=True,
                        text=True,
                        check=True,
                        env=env,
                    )
                    samples[mode].append(json.loads(out.stdout))
            off = statistics.median(s["rate"] for s in samples["off"])
            off_cpu = statistics.median(s["cpu"] for s in samples["off"])
            per = "us/req" if workload == "a" else "us/MB"
            print(f"\n({workload}) {path}, {a.rounds} rounds, medians:")
            for mode in MODES:
                rows = samples[mode]
                rate = statistics.median(s["rate"] for s in rows)
                cpu = statistics.median(s["cpu"] for s in rows)
                print(
                    f"  record {mode:8s} {rate:10,.1f} {unit}  ratio {rate / off:.2f}x"
                    f"  client CPU {cpu * 1e6:,.0f} {per} ({off_cpu / cpu:.2f}x)"
                    f"  stop() {statistics.median(s['stop_s'] for s in rows):.3f} s"
                    f"  file {statistics.median(s['file_mb'] for s in rows):.1f} MB"
                    f"  peak RSS {statistics.median(s['rss_mib'] for s in rows):.0f} MiB"
                )


if __name__ == "__main__":
    main()
