"""Peak memory of large bodies: one fresh process per case.

    python benchmarks/memory.py           # every case
    python benchmarks/memory.py download  # the cases whose name contains "download"

Each case starts a raw-socket server on 127.0.0.1 in a thread of its own process,
fetches from it, and prints how much the process's peak RSS (VmHWM) grew during
the fetch. Decompression bombs have their own script: benchmarks/bombs.py.
"""

from __future__ import annotations

import subprocess
import sys

CASE = r"""
import asyncio, os, socket, sys, threading
import nbfetch
from nbfetch import AsyncClient, Limits

MiB = 1 << 20
GiB = 1 << 30
case = sys.argv[1]

def peak_rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

def server(body_parts, head):
    srv = socket.create_server(("127.0.0.1", 0))
    def run():
        conn, _ = srv.accept()
        conn.recv(65536)
        try:
            conn.sendall(head)
            for part in body_parts():
                conn.sendall(part)
        except OSError:
            pass  # the client stopped reading (a limit): expected
        conn.close()
    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}/"

def plain(size, chunked=False, one_chunk=False):
    block = b"x" * MiB
    if one_chunk:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        def parts():
            yield b"%x\r\n" % size
            for _ in range(size // MiB):
                yield block
            yield b"\r\n0\r\n\r\n"
    elif chunked:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        def parts():
            for _ in range(size // MiB):
                yield b"100000\r\n" + block + b"\r\n"
            yield b"0\r\n\r\n"
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
        def parts():
            for _ in range(size // MiB):
                yield block
    return server(parts, head)

async def main():
    kind, _, how = case.partition(":")
    limits = Limits()
    if kind == "300mib-one-wire-chunk":
        url, note = plain(300 * MiB, one_chunk=True), "300 MiB in one wire chunk"
    else:
        url, note = plain(GiB, chunked=kind.endswith("chunked")), "1 GiB"
    if how == "buffered-raised":
        limits = Limits(max_body_size=None, max_decoded_size=None)
    before = peak_rss_mib()
    outcome = ""
    async with AsyncClient(limits=limits, request_timeout=None) as c:
        try:
            if how.startswith("buffered"):
                r = await c.fetch(url)
                outcome = f"{len(r.body):,} bytes"
            elif how == "streamed":
                n = 0
                async with c.stream("GET", url) as r:
                    async for data in r.aiter_bytes():
                        n += len(data)
                outcome = f"{n:,} bytes"
            elif how == "chunks":
                n = pieces = 0
                async with c.stream("GET", url) as r:
                    async for ch in r.aiter_chunks():
                        n += len(ch.raw)
                        pieces += 1
                outcome = f"{n:,} bytes in {pieces} pieces"
            elif how == "download":
                path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"nbfetch-mem-{os.getpid()}")
                try:
                    r = await c.download(url, path)
                    outcome = f"{os.path.getsize(path):,} bytes on disk"
                finally:
                    if os.path.exists(path):
                        os.unlink(path)
        except nbfetch.FetchError as exc:
            outcome = f"{type(exc).__name__}: {exc.message[:60]}"
    print(f"{case:<34} {note:<28} peak RSS +{peak_rss_mib() - before:7.1f} MiB  {outcome}")

asyncio.run(main())
"""

CASES = [
    "1gib-content-length:buffered",
    "1gib-content-length:buffered-raised",
    "1gib-chunked:buffered-raised",
    "1gib-content-length:streamed",
    "1gib-chunked:streamed",
    "300mib-one-wire-chunk:chunks",
    "1gib-content-length:download",
]


def main() -> None:
    wanted = [c for c in CASES if not sys.argv[1:] or any(a in c for a in sys.argv[1:])]
    for case in wanted:
        subprocess.run([sys.executable, "-c", CASE, case], check=True, timeout=600)


if __name__ == "__main__":
    main()
