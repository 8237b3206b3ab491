"""nbfetch's benchmarks: one command each for the peer comparison and the checks
(event overhead, memory, import time, the wire-chunk path, a live view's cost).

    python benchmarks/run.py peers [--quick] [--rounds 7]  # ../shared/bench/peers.py, then nbfetch / aiohttp, h11, raw
    python benchmarks/run.py overhead          # events recorded vs a build that records nothing
    python benchmarks/run.py memory            # 1 GiB streamed; 10,000 fetches queued
    python benchmarks/run.py imports           # python -c "import nbfetch" vs "import httpx"
    python benchmarks/run.py chunks            # 10,000 chunks of 100 B: nbfetch vs aiohttp, h11, raw asyncio
    python benchmarks/run.py widget            # 100 MiB and 10,000-chunk streams in a kernel, with and without a live view
    python benchmarks/run.py dask              # fetch_many on a LocalCluster: 1 vs 2 workers
    python benchmarks/run.py instructions      # callgrind instructions per request of (b): nbfetch vs h11-raw
    python benchmarks/run.py all [--quick]

Servers: nginx from ../shared/bench/server.py (Debian's nginx) for throughput,
the demo server in its own process for the memory check. All on 127.0.0.1.
Every number printed is a median over interleaved rounds; quote ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_BENCH = ROOT.parent / "shared" / "bench"
sys.path.insert(0, str(ROOT / "benchmarks"))


def nginx():
    sys.path.insert(0, str(SHARED_BENCH))
    from server import Nginx  # the shared harness's nginx, same config as the peers run

    return Nginx(gz_size=1 << 20)  # started by "with" (its __enter__ starts it)


# -- peers ---------------------------------------------------------------------------------
#: The goals of the performance issue: (workload, peer, at least this ratio).
PEER_GOALS = [
    ("seq_small", "h11-raw", 0.9),
    ("conc_small", "h11-raw", 0.9),
    ("seq_1m", "aiohttp", 1.0),
    ("stream_100m", "aiohttp", 1.0),
    ("gzip_stream", "asyncio-raw", 0.95),
]


def peers(quick: bool, rounds: int | None = None) -> dict:
    """The shared harness (every client, every workload, one run), then
    nbfetch's ratios to aiohttp, the bare h11 client and the raw asyncio
    client, all from that same run."""
    out = ROOT / "benchmarks" / f"peers-{'quick' if quick else 'full'}.json"
    cmd = [sys.executable, str(SHARED_BENCH / "peers.py")] + (["--quick"] if quick else [])
    if rounds:
        cmd += ["--rounds", str(rounds)]
    subprocess.run([*cmd, "--json", str(out)], check=True)
    import json

    results = json.loads(out.read_text())["results"]
    ours = results["nbfetch"]
    # A peer the harness could not import (aiohttp not installed) is left out.
    peers_ = tuple(p for p in ("aiohttp", "h11-raw", "asyncio-raw") if p in results)
    print("\nnbfetch / peer, medians of the same run:\n")
    print("| workload | " + " | ".join(peers_) + " |")
    print("|---|" + "---|" * len(peers_))
    for workload, cell in ours.items():
        ratios = [cell["median"] / results[p][workload]["median"] for p in peers_]
        print(f"| {workload} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    print("\nGoals:")
    for workload, peer, goal in PEER_GOALS:
        if peer not in results or workload not in ours:
            print(f"  {workload}: no {peer} row in this run")
            continue
        ratio = ours[workload]["median"] / results[peer][workload]["median"]
        verdict = "met" if ratio >= goal else "missed"
        print(f"  {workload}: {ratio:.2f}x {peer} (goal >= {goal}x): {verdict}")
    return results


# -- event overhead ----------------------------------------------------------------------
OVERHEAD_CODE = r"""
import asyncio, sys, time
import nbfetch
from nbfetch.client.recorder import Recorder
from nbfetch.core.events import Event

if sys.argv[2] == "off":
    # The "records nothing" build: emit does no work at all.
    _dummy = Event("", 0.0, 0.0, None)
    Recorder.emit = lambda self, name, details=None, body=False: _dummy

async def main(url, n):
    async with nbfetch.AsyncClient() as c:
        for _ in range(50):
            await c.fetch(url)
        start = time.perf_counter()
        for _ in range(n):
            await c.fetch(url)
        return n / (time.perf_counter() - start)

print(asyncio.run(main(sys.argv[1], int(sys.argv[3]))))
"""


def overhead(rounds: int = 7, n: int = 3000) -> dict:
    with nginx() as server:
        url = server.base_url + "/small"
        samples: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(rounds):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                out = subprocess.run(
                    [sys.executable, "-c", OVERHEAD_CODE, url, mode, str(n)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                samples[mode].append(float(out.stdout))
    on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
    result = {"events_on_req_s": on, "events_off_req_s": off, "cost": 1 - on / off}
    print(
        f"sequential small GETs: events recorded {on:,.0f} req/s, recording nothing "
        f"{off:,.0f} req/s: events cost {result['cost'] * 100:.1f}% ({rounds} rounds, median)"
    )
    return result


# -- memory --------------------------------------------------------------------------------
PEAK_RSS = r"""
def peak_rss_mib():
    # VmHWM belongs to this address space; ru_maxrss would carry the parent's
    # peak across fork+exec on Linux and hide (or invent) growth.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

STREAM_CODE = (
    PEAK_RSS
    + r"""
import asyncio, sys
import nbfetch

async def main(url):
    async with nbfetch.AsyncClient() as c:
        await c.fetch(url.rsplit("/bytes/", 1)[0] + "/get")
        before = peak_rss_mib()
        total = 0
        async with c.stream("GET", url, request_timeout=None) as r:
            async for data in r.aiter_bytes():
                total += len(data)
        return total, peak_rss_mib() - before

total, grown = asyncio.run(main(sys.argv[1]))
print(total, grown)
"""
)

QUEUE_CODE = (
    PEAK_RSS
    + r"""
import asyncio, sys
import nbfetch

async def main(url, n):
    async with nbfetch.AsyncClient(max_clients=64) as c:
        rs = await asyncio.gather(*[c.fetch(url) for _ in range(n)])
        assert all(r.status_code == 200 for r in rs)
    return peak_rss_mib()

print(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
"""
)


def memory() -> dict:
    gib = 1 << 30
    demo = subprocess.Popen(
        [sys.executable, "-m", "nbfetch.demo", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        base = demo.stdout.readline().split(" on ")[1].split()[0]
        out = subprocess.run(
            [sys.executable, "-c", STREAM_CODE, f"{base}/bytes/{gib}"],
            capture_output=True,
            text=True,
            check=True,
        )
        total, grown = out.stdout.split()
    finally:
        demo.terminate()  # the process we started, by its PID
        demo.wait(10)
    assert int(total) == gib
    with nginx() as server:
        out = subprocess.run(
            [sys.executable, "-c", QUEUE_CODE, server.base_url + "/small", "10000"],
            capture_output=True,
            text=True,
            check=True,
        )
    queue_rss = float(out.stdout)
    print(f"1 GiB through aiter_bytes(): peak RSS grew by {float(grown):.1f} MiB (bound 32 MiB)")
    print(f"10,000 fetches behind max_clients=64: peak RSS {queue_rss:.1f} MiB (bound 200 MiB)")
    return {"stream_1gib_rss_growth_mib": float(grown), "queue_10k_rss_mib": queue_rss}


# -- imports -------------------------------------------------------------------------------
def imports(runs: int = 21) -> dict:
    def best(module: str) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    base = best("sys")
    ours, theirs = best("nbfetch") - base, best("httpx") - base
    print(
        f"import nbfetch {ours * 1000:.1f} ms, import httpx {theirs * 1000:.1f} ms "
        f"(interpreter start subtracted, median of {runs})"
    )
    return {"import_nbfetch_ms": ours * 1000, "import_httpx_ms": theirs * 1000}


# -- a live view's cost ---------------------------------------------------------------------
WIDGET_STREAM = (
    "async def stream(url, expect, view=None):\n"
    "    start = time.perf_counter(); n = 0\n"
    "    async with c.stream('GET', url, trace=view.trace if view else None) as r:\n"
    "        async for d in r.aiter_bytes(): n += len(d)\n"
    "    assert n == expect, n\n"
    "    return n / (time.perf_counter() - start) / 1e6\n"
)


def widget(rounds: int = 7) -> dict:
    """A 100 MiB stream and a 10,000-chunk stream in a real kernel, with and
    without a live ResponseView; the order alternates each round (a fixed order
    measures the machine's drift, not the view)."""
    import chunks

    sys.path.insert(0, str(ROOT / "tests"))
    from kernel import Kernel

    results = {}
    with nginx() as server, chunks.Server() as chunk_server:
        cases = {
            "100 MiB stream": (server.base_url + "/100m", 100 * 2**20),
            "10,000-chunk stream": (chunk_server.base_url + "/chunks", chunks.BODY_BYTES),
        }
        k = Kernel()
        try:
            k.run("import nbfetch, time\nc = nbfetch.AsyncClient()\n" + WIDGET_STREAM)
            for name, (url, expect) in cases.items():
                k.run(f"await stream({url!r}, {expect})")  # warm up
                plain, viewed = [], []
                for i in range(rounds):
                    for observed in (False, True) if i % 2 == 0 else (True, False):
                        if observed:
                            k.run(f"v = nbfetch.ResponseView('GET', {url!r})\ndisplay(v)")
                            viewed.append(float(k.value(f"await stream({url!r}, {expect}, v)")))
                        else:
                            plain.append(float(k.value(f"await stream({url!r}, {expect})")))
                p, v = statistics.median(plain), statistics.median(viewed)
                print(
                    f"{name} in a kernel: {p:,.1f} MB/s unobserved, {v:,.1f} MB/s with a live "
                    f"ResponseView ({v / p * 100:.0f}%, bound 90%; {rounds} rounds, order alternating)"
                )
                results[name] = {"unobserved_mb_s": p, "viewed_mb_s": v, "kept": v / p}
        finally:
            k.shutdown()
    return results


# -- scale-out --------------------------------------------------------------------------------
DASK_CODE = r"""
import asyncio, sys, time
from distributed import Client, LocalCluster
import nbfetch

if __name__ == "__main__":
    url, workers, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster, Client(cluster) as client:
        urls = [url + "?i=%d" % i for i in range(n)]
        asyncio.run(nbfetch.fetch_many(urls[:2000], cluster=client, max_clients=32, show=False))
        start = time.perf_counter()
        results = asyncio.run(nbfetch.fetch_many(urls, cluster=client, max_clients=32,
                                                 batch_size=1000, show=False))
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in results)
        print(n / elapsed)
"""


def dask_scaling(rounds: int = 3, n: int = 20_000) -> dict:
    samples: dict[int, list[float]] = {1: [], 2: []}
    with nginx() as server:
        for i in range(rounds):
            for workers in (1, 2) if i % 2 == 0 else (2, 1):
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        DASK_CODE,
                        server.base_url + "/small",
                        str(workers),
                        str(n),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                samples[workers].append(float(out.stdout.strip().splitlines()[-1]))
    one, two = statistics.median(samples[1]), statistics.median(samples[2])
    print(
        f"fetch_many on a LocalCluster, {n:,} small GETs: 1 worker {one:,.0f} fetches/s, "
        f"2 workers {two:,.0f} fetches/s ({two / one:.2f}x; {rounds} rounds, median)"
    )
    return {"one_worker": one, "two_workers": two}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "what",
        choices=[
            "peers",
            "overhead",
            "memory",
            "imports",
            "chunks",
            "widget",
            "dask",
            "instructions",
            "all",
        ],
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, help="rounds for peers (the harness: 5 full, 3 quick)")
    a = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    os.environ.pop("http_proxy", None)
    if a.what in ("peers", "all"):
        peers(a.quick, a.rounds)
    if a.what in ("overhead", "all"):
        overhead(rounds=5 if a.quick else 9)
    if a.what in ("memory", "all"):
        memory()
    if a.what in ("imports", "all"):
        imports()
    if a.what in ("chunks", "all"):
        import chunks

        chunks.run(rounds=3 if a.quick else 7)
    if a.what in ("widget", "all"):
        widget()
    if a.what in ("dask", "all"):
        dask_scaling()
    if a.what in ("instructions", "all"):
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "instructions.py")], check=True)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
