"""The wire view's hot path: a chunked body of 10,000 chunks of 100 bytes.

nginx cannot be told to send chunks that small, so a small asyncio server in its
own process (on CPU 1, as nginx in the peer run) answers every request on a
keep-alive connection with one pre-built response. Each client runs in a fresh
process on CPU 0 through the shared harness's client modules (``stream(url)``),
rounds interleaved and the order rotated each round.

    python benchmarks/chunks.py [--rounds 7] [--streams 20]

Rows: aiohttp, h11-raw, asyncio-raw (the shared harness's), nbfetch, and
nbfetch with a recorder that records nothing (what the per-chunk events cost).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_BENCH = ROOT.parent / "shared" / "bench"

CHUNKS, CHUNK_SIZE = 10_000, 100
BODY_BYTES = CHUNKS * CHUNK_SIZE


def response() -> bytes:
    chunk = b"%x\r\n%s\r\n" % (CHUNK_SIZE, b"x" * CHUNK_SIZE)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + chunk * CHUNKS + b"0\r\n\r\n"


# -- the server (its own process) ------------------------------------------------------
class _Serve(asyncio.Protocol):
    RESPONSE = response()
    SMALL = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"s" * 100

    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        # Requests are GETs without bodies: one response per head.
        self.pending += data
        while (end := self.pending.find(b"\r\n\r\n")) >= 0:
            head, self.pending = self.pending[:end], self.pending[end + 4 :]
            small = head.startswith(b"GET /small ")
            self.transport.write(self.SMALL if small else self.RESPONSE)


def serve(port_file: str, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})

    async def main():
        server = await asyncio.get_running_loop().create_server(_Serve, "127.0.0.1", 0)
        Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
        await server.serve_forever()

    asyncio.run(main())


# -- one measurement (its own process) --------------------------------------------------
def worker(client: str, base: str, streams: int) -> None:
    sys.path.insert(0, str(SHARED_BENCH))
    from clients import CLIENTS

    name = "nbfetch" if client == "nbfetch-unrecorded" else client
    if client == "nbfetch-unrecorded":
        from nbfetch.client.recorder import Recorder
        from nbfetch.core.events import Event

        nothing = Event("", 0.0, 0.0, None)
        Recorder.emit = lambda self, name, details=None, body=False: nothing
    module = importlib.import_module(CLIENTS[name])

    async def main():
        async with module.Client(max_conns=1) as c:
            for _ in range(20):
                await c.get(base + "/small")
            assert await c.stream(base + "/chunks") == BODY_BYTES  # warm the path
            start = time.perf_counter()
            for _ in range(streams):
                assert await c.stream(base + "/chunks") == BODY_BYTES
            return time.perf_counter() - start

    wall = asyncio.run(main())
    print(json.dumps({"client": client, "chunks_per_s": streams * CHUNKS / wall}))


# -- the run ---------------------------------------------------------------------------
CLIENT_ROWS = ["aiohttp", "h11-raw", "asyncio-raw", "nbfetch", "nbfetch-unrecorded"]


class Server:
    """The chunk server in its own process (on ``cpu``), stopped by its PID."""

    def __init__(self, cpu: int | None = 1):
        self.cpu = cpu if (os.cpu_count() or 1) >= 2 else None
        self.port_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"nbfetch-chunks-{os.getpid()}"
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> Server:
        self.port_file.unlink(missing_ok=True)
        cpu = "" if self.cpu is None else str(self.cpu)
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", str(self.port_file), cpu])
        deadline = time.monotonic() + 10
        while not self.port_file.exists() or not self.port_file.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("the chunk server did not start")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self.port_file.read_text()}"
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.port_file.unlink(missing_ok=True)


def run(rounds: int = 7, streams: int = 20, client_cpu: int = 0) -> dict:
    pin = (os.cpu_count() or 1) >= 2
    samples: dict[str, list[float]] = {c: [] for c in CLIENT_ROWS}
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with Server() as server:
        for i in range(rounds):
            order = CLIENT_ROWS[i % len(CLIENT_ROWS) :] + CLIENT_ROWS[: i % len(CLIENT_ROWS)]
            for client in order:
                cmd = [sys.executable, __file__, "worker", client, server.base_url, str(streams)]
                if pin:
                    cmd = ["taskset", "-c", str(client_cpu), *cmd]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                samples[client].append(json.loads(out.stdout)["chunks_per_s"])
                print(f"  round {i + 1} {client}: {samples[client][-1]:,.0f}", file=sys.stderr)
    medians = {c: statistics.median(s) for c, s in samples.items()}
    spread = {c: (max(s) - min(s)) / medians[c] for c, s in samples.items()}
    ours = medians["nbfetch"]
    print(f"\n10,000 chunks of 100 B per response, {streams} responses a round, {rounds} rounds")
    print("| client | chunks/s (median) | spread | nbfetch / client |")
    print("|---|---|---|---|")
    for c in CLIENT_ROWS:
        print(f"| {c} | {medians[c]:,.0f} | {spread[c] * 100:.0f}% | {ours / medians[c]:.2f}x |")
    cost = 1 - ours / medians["nbfetch-unrecorded"]
    print(f"per-chunk events cost {cost * 100:.1f}% (nbfetch vs nbfetch recording nothing)")
    return {"medians": medians, "spread": spread, "samples": samples, "events_cost": cost}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]) if sys.argv[3] else None)
    elif len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        ap = argparse.ArgumentParser(description=__doc__)
        ap.add_argument("--rounds", type=int, default=7)
        ap.add_argument("--streams", type=int, default=20)
        a = ap.parse_args()
        run(a.rounds, a.streams)
