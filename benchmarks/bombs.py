"""Decompression bombs: peak RSS of one fetch, decode speed, and the work of one step.

    python benchmarks/bombs.py rss [--max-decoded-size N] [--max-body-size N]
    python benchmarks/bombs.py speed
    python benchmarks/bombs.py steps

``rss``: a server process on 127.0.0.1 serves 2 GiB of zeros compressed with
each coding (built once, streaming: about 30 s); every case is one fetch, buffered
(``await c.fetch(url)``) or streamed (``aiter_bytes``), in a fresh interpreter
that prints its VmHWM (/proc/self/status) before and after the fetch.
``speed``: 100 MiB of text-like data (about 3x compressible; gzip level 6, br
quality 5, zstd level 3) fed to nbfetch's decoder and to the library alone, in
64 KiB pieces (``--piece``) as a socket delivers them; median CPU time of 7 interleaved rounds.
``steps``: the longest single ``decode()`` call (thread CPU time) and the number of
calls, on 8 MiB bodies (``--mib``) that decode to nothing or almost nothing (empty blocks,
frames or members: cheap to send, costly to parse) and on ordinary data, fed in
256 KiB pieces (what asyncio reads at once) and as one piece.
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


def library_decoder(coding: str):
    """The library's own streaming decompress, with no bound per call."""
    if coding in ("gzip", "deflate"):
        return zlib.decompressobj(31 if coding == "gzip" else 15).decompress
    if coding == "br":
        import brotli

        return brotli.Decompressor().process
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress


def speed(piece: int) -> None:
    sys.path.insert(0, str(ROOT))
    from nbfetch.core.decoders import drain, make_decoder

    data = text_like(100 << 20)
    for coding, level in (("gzip", 6), ("br", 5), ("zstd", 3)):
        if coding == "gzip":
            body = zlib.compress(data, level, wbits=31)
        elif coding == "br":
            import brotli

            body = brotli.compress(data, quality=level)
        else:
            import zstandard

            body = zstandard.ZstdCompressor(level=level).compress(data)
        pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
        print(f"{coding}: {len(data) / 2**20:.0f} MiB -> {len(body) / 2**20:.1f} MiB")

        def library(coding, pieces):  # no bound per call
            decompress = library_decoder(coding)
            return sum(len(decompress(p)) for p in pieces)

        def nbfetch(coding, pieces):
            d = make_decoder([coding], max_size=None)
            return sum(len(drain(d, p)) for p in pieces) + len(d.flush())

        times = {library: [], nbfetch: []}
        for _ in range(7):  # interleaved rounds: the machine is shared
            for f in times:
                start = time.process_time()
                assert f(coding, pieces) == len(data)
                times[f].append(time.process_time() - start)
        for f, t in times.items():
            m = statistics.median(t)
            print(f"  {f.__name__:8} median CPU {m:.3f} s, {len(data) / m / 2**20:.0f} MiB/s")


def empty_bodies(size: int) -> dict[str, tuple[str, bytes]]:
    """Bodies of about ``size`` bytes that decode to (almost) nothing."""
    zstd_frame = b"\x28\xb5\x2f\xfd\x00\x00"  # magic, descriptor, 1 KiB window
    # Empty fixed-Huffman deflate blocks (RFC 1951 3.2.6): 3 header bits and a
    # 7-bit end-of-block code, 4 blocks in 5 bytes; then a final empty block.
    fixed = sum(1 << (10 * i + 1) for i in range(4)).to_bytes(5, "little")
    # An empty dynamic-Huffman block (zlib builds tables for each) and an empty
    # stored block: DYNAMIC_EMPTY in tests/test_bombs.py shows its fields.
    dynamic = bytes.fromhex("04c0810800000000207feb030000ffff")
    gzip_member = zlib.compress(b"", wbits=31)
    return {
        "zstd, empty raw blocks": ("zstd", zstd_frame + bytes(size // 3 * 3) + b"\x01\0\0"),
        "zstd, 1-byte RLE blocks": ("zstd", zstd_frame + b"\x0a\0\0x" * (size // 4) + b"\x01\0\0"),
        "zstd, empty frames": ("zstd", (b"\x28\xb5\x2f\xfd\x20\x00\x01\0\0") * (size // 9)),
        "deflate, empty fixed": (
            "deflate",
            b"\x78\x9c" + fixed * (size // 5) + b"\x03\0\0\0\0\x01",
        ),
        "deflate, empty dynamic": (
            "deflate",
            b"\x78\x9c" + dynamic * (size // 16) + b"\x03\0\0\0\0\x01",
        ),
        "gzip, empty members": ("gzip", gzip_member * (size // len(gzip_member))),
        # Brotli (RFC 7932 9.2): empty metadata meta-blocks, one byte each.
        "br, empty metadata": ("br", b"\x0c" + b"\x06" * size + b"\x03"),
    }


def steps(mib: int) -> None:
    sys.path.insert(0, str(ROOT))
    from nbfetch.core.decoders import make_decoder

    size = mib << 20
    bodies = empty_bodies(size)
    text = text_like(3 * size)
    for coding in ("gzip", "br", "zstd"):
        compress, finish = compressor(coding)
        bodies[f"{coding}, ordinary {3 * mib} MiB"] = (coding, compress(text) + finish())
    print("longest decode() call (thread CPU ms), number of calls, total CPU s")
    for name, (coding, body) in bodies.items():
        row = []
        for piece in (256 << 10, len(body)):
            d = make_decoder([coding], max_size=None)
            longest = calls = 0
            total = time.thread_time()
            for i in range(0, len(body), piece):
                data = body[i : i + piece]
                while True:
                    start = time.thread_time()
                    d.decode(data)
                    longest = max(longest, time.thread_time() - start)
                    calls += 1
                    data = b""
                    if not d.more:
                        break
            d.flush()
            total = time.thread_time() - total
            row.append(f"{longest * 1000:7.2f} ms {calls:7d} calls {total:6.2f} s")
        print(f"{name:24} 256 KiB pieces: {row[0]} | one piece: {row[1]}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["rss", "speed", "steps", "serve"])
    p.add_argument("--max-decoded-size", type=int)
    p.add_argument("--max-body-size", type=int)
    p.add_argument("--mib", type=int, default=8, help="steps: body size")
    p.add_argument("--piece", type=int, default=64, help="speed: KiB per piece")
    args = p.parse_args()
    if args.what == "serve":
        serve()
    elif args.what == "speed":
        speed(args.piece << 10)
    elif args.what == "steps":
        steps(args.mib)
    else:
        rss({k: v for k, v in vars(args).items() if k.startswith("max_") and v is not None})
