"""A hostile HTTP server: raw asyncio sockets, one misbehaviour per path.

    server = Adversary().start()          # in a thread, for tests
    python tests/adversary.py             # in its own process; prints its base URL

Each handler gets the request head (already read) and the stream writer, and
writes exactly the bytes it wants, however wrong. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import sys
import threading
import zlib

import brotli
import zstandard

CASES = {}


def case(path):
    def register(fn):
        CASES[path] = fn
        return fn

    return register


def simple(path, data: bytes, close: bool = True):
    async def handler(request, reader, writer):
        writer.write(data)
        await writer.drain()
        if not close:
            await asyncio.sleep(30)

    CASES[path] = handler


OK = b"HTTP/1.1 200 OK\r\n"

# -- malformed heads ------------------------------------------------------------------------
simple("/bad-status-line", b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n")
simple("/bad-version", b"HTTP/9.9 200 OK\r\nContent-Length: 0\r\n\r\n")
simple("/bad-header-line", OK + b"no colon here\r\nContent-Length: 0\r\n\r\n")
simple("/header-name-space", OK + b"Bad Name: x\r\nContent-Length: 0\r\n\r\n")
simple("/header-value-ctl", OK + b"X: a\x00b\r\nContent-Length: 0\r\n\r\n")
simple("/huge-header-line", OK + b"X: " + b"a" * 200_000 + b"\r\n\r\n")
simple("/many-headers", OK + b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n")
simple("/bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
simple("/http09", b"<html>no status line at all</html>")
simple("/obs-fold", OK + b"X: a\r\n b\r\nContent-Length: 2\r\n\r\nok")
simple("/non-utf8-header", OK + b"X-Bin: caf\xe9 \xff\xfe\r\nContent-Length: 2\r\n\r\nok")
simple(
    "/informational-flood",
    b"HTTP/1.1 102 Processing\r\n\r\n" * 100 + OK + b"Content-Length: 0\r\n\r\n",
)
simple("/empty", b"")

# -- framing --------------------------------------------------------------------------------
simple("/cl-too-long", OK + b"Content-Length: 100\r\n\r\nonly eighteen byte")
simple("/cl-too-short", OK + b"Content-Length: 2\r\n\r\nokEXTRA BYTES", close=False)
simple("/cl-conflict", OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok!")
simple("/cl-same-twice", OK + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok")
simple("/cl-negative", OK + b"Content-Length: -1\r\n\r\nok")
simple("/cl-not-a-number", OK + b"Content-Length: 1e3\r\n\r\nok")
simple(
    "/cl-and-chunked",
    OK + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
)
simple("/te-unknown", OK + b"Transfer-Encoding: gzip\r\n\r\nok")
simple("/bad-chunk-size", OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n")
simple("/huge-chunk-size", OK + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nok")
simple("/chunk-missing-crlf", OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n")
simple("/truncated-chunked", OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab")
simple("/no-last-chunk", OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
simple("/until-close", OK + b"\r\nthe body ends when the connection does")


# -- timing and resets ------------------------------------------------------------------------
@case("/never-answers")
async def never(request, reader, writer):
    await asyncio.sleep(60)


@case("/close-at-once")
async def close_at_once(request, reader, writer):
    writer.close()


@case("/drip-head")
async def drip_head(request, reader, writer):
    for byte in OK + b"Content-Length: 0\r\n\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.1)


@case("/drip-body")
async def drip_body(request, reader, writer):
    writer.write(OK + b"Content-Length: 1000\r\n\r\n")
    for _ in range(1000):
        writer.write(b"*")
        await writer.drain()
        await asyncio.sleep(0.1)


@case("/reset-mid-body")
async def reset_mid_body(request, reader, writer):
    writer.write(OK + b"Content-Length: 100000\r\n\r\n" + b"x" * 1000)
    await writer.drain()
    await asyncio.sleep(0.05)
    sock = writer.get_extra_info("socket")
    # SO_LINGER 0: close sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- decompression ---------------------------------------------------------------------------
ZEROS = b"\0" * (200 * 1024 * 1024)
GZIP_BOMB = gzip.compress(ZEROS, 9)
DEFLATE_BOMB = zlib.compress(ZEROS, 9)
BROTLI_BOMB = brotli.compress(ZEROS, quality=5)
del ZEROS
# 1 GiB of zeros in 32 KiB of RLE blocks, built a MiB at a time.
_zstd = zstandard.ZstdCompressor().compressobj()
ZSTD_BOMB = b"".join(_zstd.compress(bytes(1 << 20)) for _ in range(1024)) + _zstd.flush()


def compressed(path, coding: bytes, body: bytes, status=b"200 OK", extra=b""):
    simple(
        path,
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Encoding: "
        + coding
        + b"\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body,
    )


compressed("/gzip-bomb", b"gzip", GZIP_BOMB)
compressed("/deflate-bomb", b"deflate", DEFLATE_BOMB)
compressed("/br-bomb", b"br", BROTLI_BOMB)
compressed("/zstd-bomb", b"zstd", ZSTD_BOMB)
compressed("/gzip-zstd-bomb", b"gzip, zstd", zstandard.ZstdCompressor().compress(GZIP_BOMB))
compressed("/bomb-in-redirect", b"gzip", GZIP_BOMB, b"302 Found", b"Location: /gzip-ok\r\n")
compressed("/gzip-ok", b"gzip", gzip.compress(b"fine"))
compressed("/encoding-chain", b"gzip, gzip, gzip, gzip, gzip", b"x")
compressed("/corrupt-gzip", b"gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage!")
compressed("/truncated-gzip", b"gzip", gzip.compress(b"a" * 10000)[:-30])
compressed("/unknown-encoding", b"compress", b"x")
compressed(
    "/chained-bomb", b"gzip, gzip", gzip.compress(gzip.compress(b"\0" * (100 * 1024 * 1024), 9), 9)
)


# -- redirects ---------------------------------------------------------------------------------
def redirect(path, location: bytes, status=b"302 Found"):
    simple(
        path,
        b"HTTP/1.1 " + status + b"\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n",
    )


redirect("/loop", b"/loop")
redirect("/to-file", b"file:///etc/passwd")
redirect("/to-data", b"data:text/plain,hi")
redirect("/to-ftp", b"ftp://127.0.0.1/x")
redirect("/to-javascript", b"javascript:alert(1)")
redirect("/to-bad-location", b"http://[::zz]/")
redirect("/to-crlf", b"/a\r\nX-Injected: 1")


@case("/echo-headers")
async def echo_headers(request, reader, writer):
    writer.write(OK + b"Content-Length: %d\r\n\r\n" % len(request) + request)
    await writer.drain()


# -- the server -------------------------------------------------------------------------------
class Adversary:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.loop = None
        self._ready = threading.Event()
        self._tasks: set = set()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, reader, writer):
        self.connections += 1
        self._tasks.add(asyncio.current_task())
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                path = request.split(b" ", 2)[1].decode("latin-1").split("?")[0]
                handler = CASES.get(path)
                if handler is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                for line in request.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                await handler(request, reader, writer)
                if path != "/echo-headers":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(asyncio.current_task())
            writer.close()

    async def _serve(self):
        server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._server = server
        self._ready.set()
        async with server:
            await server.serve_forever()

    def start(self) -> Adversary:
        def run():
            self.loop = asyncio.new_event_loop()
            try:
                self.loop.run_until_complete(self._serve())
            except (asyncio.CancelledError, RuntimeError):
                pass
            pending = asyncio.all_tasks(self.loop)
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self._ready.wait(30)
        return self

    def stop(self) -> None:
        if self.loop is not None:

            def shut():
                for task in self._tasks:
                    task.cancel()  # handlers still sleeping (never-answers, drips)
                self._server.close()  # ends serve_forever

            self.loop.call_soon_threadsafe(shut)
            self._thread.join(5)


if __name__ == "__main__":
    server = Adversary()

    async def main():
        task = asyncio.ensure_future(server._serve())
        await asyncio.get_running_loop().run_in_executor(None, server._ready.wait)
        print(server.url, flush=True)
        await task

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
