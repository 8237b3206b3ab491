"""Instructions per request, counted by callgrind: a figure that does not move
with the machine's load (wall-clock ratios on a shared 2-core VM move by
10-20% between runs; instruction counts repeat to within 0.1%).

    python benchmarks/instructions.py [--clients nbfetch,h11-raw,nbfetch+log]

The workload is (b) of the shared harness: GET /small (100 B) from 64
concurrent tasks sharing one client, against the harness's nginx. Each client
runs twice under ``valgrind --tool=callgrind`` (warm-up, then N=200 and
N=1,200 timed requests); the difference of the two totals over 1,000 requests
is the cost of one request, without the interpreter's start, the imports and
the warm-up (with a fixed ``PYTHONHASHSEED``, it repeats to within 0.1%). ``nbfetch+log`` is nbfetch with the network log on (as inside
IPython). Needs valgrind (``apt-get install valgrind``) and nginx.

Callgrind counts each byte a ``rep stosb`` writes as an instruction: zeroing
memory weighs more here than on the wall clock.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The shared harness beside the project (or beside the directory of its worktrees).
SHARED_BENCH = next(
    (
        p
        for p in (ROOT.parent / "shared" / "bench", ROOT.parent.parent / "shared" / "bench")
        if p.exists()
    ),
    ROOT.parent / "shared" / "bench",
)

LOAD = r"""
import asyncio, importlib, sys
sys.path.insert(0, sys.argv[4])
url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if name.startswith("nbfetch"):
    import nbfetch
    if name == "nbfetch+log":
        nbfetch.network_log.enable()
    mod = importlib.import_module("nbfetch_adapter")
else:
    mod = importlib.import_module("h11_client")

async def main():
    async with mod.Client(64) as c:
        async def worker(k):
            for _ in range(k):
                assert await c.get(url) == 100
        await asyncio.gather(*(worker(2) for _ in range(64)))  # warm-up: 64 connections
        per, extra = divmod(n, 64)
        await asyncio.gather(*(worker(per + (i < extra)) for i in range(64)))

asyncio.run(main())
"""

#: (fewer, more) timed requests: their difference is what is reported.
COUNTS = (200, 1200)


def instructions(url: str, client: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                # The interpreter itself, not a shim script that execs it.
                os.path.realpath(sys.executable),
                "-c",
                LOAD,
                url,
                client,
                str(n),
                str(SHARED_BENCH / "clients"),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,  # "-c" puts the working directory first on sys.path
            # A fixed hash seed: str hashes move dict probes, by ~1% between runs.
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"},
        )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", default="h11-raw,nbfetch,nbfetch+log")
    a = ap.parse_args()
    sys.path.insert(0, str(SHARED_BENCH))
    from server import Nginx  # the shared harness's nginx, as in the peers run

    per_request = {}
    with Nginx(gz_size=1 << 20) as server:
        url = server.base_url + "/small"
        for client in a.clients.split(","):
            fewer, more = (instructions(url, client, n) for n in COUNTS)
            per_request[client] = (more - fewer) / (COUNTS[1] - COUNTS[0])
            print(f"{client}: {per_request[client]:,.0f} instructions/request", flush=True)
    if "h11-raw" in per_request:
        for client, count in per_request.items():
            if client != "h11-raw":
                print(f"h11-raw / {client}: {per_request['h11-raw'] / count:.2f}")


if __name__ == "__main__":
    main()
