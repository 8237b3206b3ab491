"""Decompression bombs: peak RSS of one fetch, and zstd's ordinary decode speed.

    python benchmarks/bombs.py rss [--max-decoded-size N] [--max-body-size N]
    python benchmarks/bombs.py speed

``rss``: a server process on 127.0.0.1 serves 2 GiB of zeros compressed with
each coding (built once, streaming: about 30 s); every case is one fetch, buffered
(``await c.fetch(url)``) or streamed (``aiter_bytes``), in a fresh interpreter
that prints its VmHWM (/proc/self/status) before and after the fetch.
``speed``: 100 MiB of text-like data (about 3x compressible, zstd level 3) fed
to nbfetch's zstd decoder and to zstandard's decompressobj alone, in 64 KiB
pieces as a socket delivers them; median CPU time of 7 interleaved rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODINGS = ["gzip", "deflate", "br", "zstd", "gzip, zstd"]
ZEROS = bytes(1 << 20)


def compressor(coding: str):
    """(compress, finish) for a streaming compressor of ``coding``."""
    if coding in ("gzip", "deflate"):
        c = zlib.compressobj(9, zlib.DEFLATED, 31 if coding == "gzip" else 15)
        return c.compress, c.flush
    if coding == "br":
        import brotli

        c = brotli.Compressor(quality=5)
        return c.process, c.finish
    import zstandard

    c = zstandard.ZstdCompressor(level=3).compressobj()
    return c.compress, c.flush


def bomb(coding: str, mib: int) -> bytes:
    """``mib`` MiB of zeros, compressed with ``coding`` (as applied: "gzip, zstd" is
    gzip first), without ever holding the zeros."""
    data = None
    for name in coding.split(", "):
        compress, finish = compressor(name)
        parts = [compress(ZEROS) for _ in range(mib)] if data is None else [compress(data)]
        data = b"".join(parts) + finish()
    return data


def serve() -> None:
    bodies = {"/" + c.replace(", ", "-"): (c, bomb(c, 2048)) for c in CODINGS}

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        coding, body = bodies[head.split()[1].decode()]
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            % (coding.encode(), len(body))
        )
        writer.write(body)
        try:
            await writer.drain()
        except ConnectionError:
            pass  # the client stopped at its limit
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(3600)  # the parent stops this process when done

    asyncio.run(main())


FETCH = r"""
import asyncio, json, sys
import nbfetch

def hwm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024

async def main(url, mode, limits):
    before = hwm()
    async with nbfetch.AsyncClient(limits=nbfetch.Limits(**limits)) as c:
        try:
            if mode == "buffered":
                await c.fetch(url)
            else:
                async with c.stream("GET", url) as r:
                    async for _ in r.aiter_bytes():
                        pass
            result = "no error"
        except nbfetch.FetchError as exc:
            result = type(exc).__name__
    print(json.dumps({"before": before, "after": hwm(), "result": result}))

asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
"""


def rss(limits: dict) -> None:
    server = subprocess.Popen([sys.executable, __file__, "serve"], stdout=subprocess.PIPE)
    try:
        port = int(server.stdout.readline())
        print(f"limits: {limits or 'defaults'}; VmHWM in MiB (before the fetch -> after)")
        for coding in CODINGS:
            url = f"http://127.0.0.1:{port}/" + coding.replace(", ", "-")
            for mode in ("buffered", "streamed"):
                out = subprocess.run(
                    [sys.executable, "-c", FETCH, url, mode, json.dumps(limits)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                ).stdout
                r = json.loads(out)
                print(
                    f"{coding:11} {mode:9} {r['before']:6.0f} -> {r['after']:6.0f}  {r['result']}"
                )
    finally:
        server.kill()
        server.wait()


def text_like(size: int) -> bytes:
    rng = random.Random(1)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10)))
        for _ in range(2000)
    ]
    lines, n = [], 0
    while n < size:
        text = " ".join(rng.choices(words, k=rng.randint(5, 30)))
        line = f'{{"id": {rng.randrange(10**5)}, "name": "{rng.choice(words)}", '
        line += f'"score": {rng.random():.4f}, "text": "{text}"}}\n'
        lines.append(line)
        n += len(line)
    return "".join(lines).encode()[:size]


def speed() -> None:
    import zstandard

    sys.path.insert(0, str(ROOT))
    from nbfetch.core.decoders import drain, make_decoder

    data = text_like(100 << 20)
    body = zstandard.ZstdCompressor(level=3).compress(data)
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    print(f"{len(data) / 2**20:.0f} MiB -> {len(body) / 2**20:.1f} MiB zstd, in 64 KiB pieces")

    def library():  # what nbfetch did before: no bound per call
        d = zstandard.ZstdDecompressor().decompressobj()
        return sum(len(d.decompress(p)) for p in pieces)

    def nbfetch():
        d = make_decoder(["zstd"], max_size=None)
        return sum(len(drain(d, p)) for p in pieces) + len(d.flush())

    times = {library: [], nbfetch: []}
    for _ in range(7):  # interleaved rounds: the machine is shared
        for f in times:
            start = time.process_time()
            assert f() == len(data)
            times[f].append(time.process_time() - start)
    for f, t in times.items():
        m = statistics.median(t)
        print(f"{f.__name__:8} median CPU {m:.3f} s, {len(data) / m / 2**20:.0f} MiB/s")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["rss", "speed", "serve"])
    p.add_argument("--max-decoded-size", type=int)
    p.add_argument("--max-body-size", type=int)
    args = p.parse_args()
    if args.what == "serve":
        serve()
    elif args.what == "speed":
        speed()
    else:
        rss({k: v for k, v in vars(args).items() if k.startswith("max_") and v is not None})
