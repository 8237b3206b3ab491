"""An embedded HTTP/1.1 demo server on h11 and asyncio, for tutorials and tests.

It runs its own loop in a background thread, so it works from a notebook, a
script or a test alike, and everything stays offline on 127.0.0.1::

    with nbfetch.demo.serve() as demo:          # or: python -m nbfetch.demo
        r = nbfetch.fetch_sync(demo.url + "/chunked?sizes=10,2000,7&ext=1")

Endpoints (httpbin-like JSON where it makes sense): see ``ENDPOINTS``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import gzip
import hashlib
import hmac
import json
import random
import secrets
import threading
import time
import zlib
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

import h11

ENDPOINTS = {
    "/get": "request args, headers, origin and URL as JSON",
    "/headers": "the request headers as JSON",
    "/status/{code}": "an empty response with that status",
    "/bytes/{n}": "n random bytes (?seed=, ?chunk_size= for chunked)",
    "/stream/{n}": "n JSON lines, one chunk each",
    "/drip?numbytes=&duration=&chunks=&delay=&code=": "a slow chunked body, for live views",
    "/chunked?sizes=10,2000,7&ext=1&trailers=1": "chunks of exactly those sizes, with extensions and trailers (or ?count=N&size=S)",
    "/gzip, /deflate, /brotli": "JSON, compressed",
    "/gzip-stream/{n}?delay=": "n lines, gzip-compressed and chunked",
    "/redirect/{n}": "n relative 302 redirects, then /get",
    "/absolute-redirect/{n}": "n absolute 302 redirects, then /get",
    "/redirect-to?url=&status_code=": "one redirect to url",
    "/delay/{seconds}": "answer after a delay (at most 60 s)",
    "/sequence/{token}?delays=0.01,0.05&status=200,500": "the k-th request of a token waits delays[k % len] s and answers status[k % len] (0: closes the connection unanswered), for load runs",
    "/post, /put, /patch, /delete, /anything": "echo method, args, headers, body, json and form",
    "/basic-auth/{user}/{password}": "200 with the right Basic credentials, 401 otherwise",
    "/close": "a response with Connection: close",
    "/unavailable/{token}/{n}?retry_after=&status=": "503 (or status; with ?retry_after, a Retry-After) the first n times per token, then 200",
    "/login?user=": "sets a session cookie and redirects to /whoami (a login flow)",
    "/whoami": "the user of the session cookie (401 without one), and the cookies received",
    "/html": "a small HTML page",
    "/json": "a small JSON document (httpbin's slideshow)",
    "/token": 'POST user and password (JSON or form; any user, password "secret"): a bearer token',
    "/me": "the user of an Authorization: Bearer token from /token (401 without a valid one)",
    "/items?n=3": "n items (0-1000) as JSON: items and count",
}

#: The password /token accepts, for any user (a demo: say so in the tutorials).
DEMO_PASSWORD = "secret"
TOKEN_LIFETIME = 3600  # seconds, as /token's expires_in says
MAX_TOKEN_BODY = 4096  # /token's body: a user and a password, not an upload
MAX_USER = 64
MAX_ITEMS = 1000

#: /json: the document httpbin.org/json serves, which .http examples assert on.
SLIDESHOW = {
    "slideshow": {
        "author": "Yours Truly",
        "date": "date of publication",
        "slides": [
            {"title": "Wake up to WonderWidgets!", "type": "all"},
            {
                "items": [
                    "Why <em>WonderWidgets</em> are great",
                    "Who <em>buys</em> WonderWidgets",
                ],
                "title": "Overview",
                "type": "all",
            },
        ],
        "title": "Sample Slide Show",
    }
}

MAX_REQUEST_BODY = 16 * 1024 * 1024


class _Exchange:
    """One request and the means to answer it."""

    def __init__(self, server, conn: h11.Connection, writer, request: h11.Request, body: bytes):
        self.server = server
        self.conn = conn
        self.writer = writer
        self.method = request.method.decode("ascii")
        self.target = request.target.decode("ascii")
        split = urlsplit(self.target)
        self.path = unquote(split.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.args = parse_qs(split.query)
        self.headers = [
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers.raw_items()
        ]
        self.body = body

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    @property
    def url(self) -> str:
        scheme = "https" if self.server.ssl_context is not None else "http"
        return f"{scheme}://{self.header('host') or self.server.host}{self.target}"

    def _write(self, data: bytes | None) -> None:
        if data:
            self.writer.write(data)

    async def send(
        self, status: int, body: bytes = b"", headers=(), content_type="application/json"
    ):
        hdrs = [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
        self._write(self.conn.send(_response(status, self._server_headers(hdrs))))
        if body and self.method != "HEAD":
            self._write(self.conn.send(h11.Data(data=body)))
        self._write(self.conn.send(h11.EndOfMessage()))
        await self.writer.drain()

    async def send_json(self, obj, status: int = 200, headers=()):
        body = (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        await self.send(status, body, headers)

    async def start(
        self, status: int, headers=(), content_type="application/octet-stream", chunked=True
    ):
        hdrs = [("Content-Type", content_type), *headers]
        if chunked:
            hdrs.append(("Transfer-Encoding", "chunked"))
        self._write(self.conn.send(_response(status, self._server_headers(hdrs))))
        await self.writer.drain()

    async def chunk(self, data: bytes, extensions: str = "") -> None:
        """One chunk of exactly ``len(data)`` bytes, with optional extensions."""
        if not data:
            return
        # h11 would frame this chunk without extensions; keep its state in step
        # and write our own framing (RFC 9112 section 7.1).
        self.conn.send(h11.Data(data=data))
        self.writer.write(b"%x%s\r\n%s\r\n" % (len(data), extensions.encode("latin-1"), data))
        await self.writer.drain()

    async def data(self, data: bytes) -> None:
        self._write(self.conn.send(h11.Data(data=data)))
        await self.writer.drain()

    async def end(self, trailers=()):
        self._write(self.conn.send(h11.EndOfMessage(headers=list(trailers))))
        await self.writer.drain()

    def _server_headers(self, headers):
        return [("Server", "nbfetch-demo"), *headers]


def _response(status: int, headers) -> h11.Response:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return h11.Response(status_code=status, headers=headers, reason=reason)


class DemoServer:
    """The demo server. ``url`` is its base URL; ``stats`` counts connections
    (``connections``), requests (``requests``) and the most requests in flight at
    once (``max_in_flight``), as seen by the server."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, ssl_context=None):
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task] = set()
        self.stats = {"connections": 0, "requests": 0, "in_flight": 0, "max_in_flight": 0}
        self._unavailable: dict[str, int] = {}  # /unavailable: token -> requests seen
        self._sequence: dict[str, int] = {}  # /sequence: token -> requests seen
        #: The tokens of the last 10,000 /sequence requests, in arrival order.
        self.sequence_log: collections.deque[str] = collections.deque(maxlen=10_000)
        self.sessions: dict[str, str] = {}  # /login's session tokens: their users
        # /token's tokens are stateless: signed with a key that dies with the server.
        self._token_key = secrets.token_bytes(32)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def reset_stats(self) -> None:
        self.stats.update(connections=0, requests=0, max_in_flight=self.stats["in_flight"])

    # -- running ---------------------------------------------------------------
    def start(self) -> DemoServer:
        self._thread = threading.Thread(target=self._run, name="nbfetch-demo", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, ssl=self.ssl_context)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def __enter__(self) -> DemoServer:
        return self if self._thread else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<DemoServer {self.url}>"

    # -- connections -------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self.stats["connections"] += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._next(conn, reader)
                if not isinstance(request, h11.Request):
                    break
                if conn.they_are_waiting_for_100_continue:
                    # RFC 9110 10.1.1: the client holds its body until we say so.
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                body = bytearray()
                while True:
                    event = await self._next(conn, reader)
                    if isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > MAX_REQUEST_BODY:
                            raise h11.RemoteProtocolError("request body too large", 413)
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
                ex = _Exchange(self, conn, writer, request, bytes(body))
                self.stats["requests"] += 1
                self.stats["in_flight"] += 1
                self.stats["max_in_flight"] = max(
                    self.stats["max_in_flight"], self.stats["in_flight"]
                )
                try:
                    await self._dispatch(ex)
                finally:
                    self.stats["in_flight"] -= 1
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                body = f"bad request: {exc}\n".encode()
                try:
                    writer.write(
                        conn.send(
                            h11.Response(
                                status_code=exc.error_status_hint,
                                headers=[
                                    ("Content-Length", str(len(body))),
                                    ("Connection", "close"),
                                ],
                            )
                        )
                    )
                    writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
                except h11.LocalProtocolError:
                    pass
        except (OSError, asyncio.CancelledError, h11.LocalProtocolError):
            pass  # a client that went away, or a TLS handshake that failed
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader):
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await reader.read(65536))

    async def _dispatch(self, ex: _Exchange) -> None:
        parts = [p for p in ex.path.split("/") if p]
        name = parts[0] if parts else ""
        handler = getattr(self, "_ep_" + name.replace("-", "_"), None)
        if handler is None:
            await ex.send_json({"error": "not found", "endpoints": ENDPOINTS}, 404)
            return
        try:
            await handler(ex, parts[1:])
        except (ValueError, IndexError) as exc:
            if ex.conn.our_state is h11.SEND_RESPONSE:
                await ex.send_json({"error": f"bad request: {exc}"}, 400)
            else:
                raise

    # -- endpoints ---------------------------------------------------------------
    def _echo(self, ex: _Exchange) -> dict:
        out = {
            "method": ex.method,
            "args": ex.query,
            "headers": dict(ex.headers),
            "origin": "127.0.0.1",
            "url": ex.url,
        }
        return out

    async def _ep_(self, ex, parts):
        await ex.send_json({"server": "nbfetch demo", "endpoints": ENDPOINTS})

    async def _ep_get(self, ex, parts):
        await ex.send_json(self._echo(ex))

    async def _ep_headers(self, ex, parts):
        await ex.send_json({"headers": dict(ex.headers)})

    async def _ep_anything(self, ex, parts):
        out = self._echo(ex)
        text = ex.body.decode("utf-8", errors="replace")
        out["data"] = text
        out["json"] = None
        out["form"] = {}
        ctype = (ex.header("content-type") or "").lower()
        if ctype.startswith("application/json") and ex.body:
            try:
                out["json"] = json.loads(ex.body)
            except ValueError:
                pass
        elif ctype.startswith("application/x-www-form-urlencoded"):
            out["form"] = {k: v[-1] for k, v in parse_qs(text).items()}
        await ex.send_json(out)

    _ep_post = _ep_put = _ep_patch = _ep_delete = _ep_anything

    async def _ep_status(self, ex, parts):
        code = int(parts[0])
        if not 200 <= code <= 599:
            raise ValueError("status must be 200-599")
        headers = [("Location", "/get")] if code in (301, 302, 303, 307, 308) else []
        await ex.send(code, b"", headers, content_type="text/plain")

    async def _ep_bytes(self, ex, parts):
        n = int(parts[0])
        if not 0 <= n <= 1 << 31:
            raise ValueError("n must be 0 .. 2 GiB")
        rng = random.Random(int(ex.query.get("seed", 0)))
        chunk_size = int(ex.query.get("chunk_size", 0))
        if chunk_size > 0:
            await ex.start(200)
        else:
            await ex.start(200, [("Content-Length", str(n))], chunked=False)
        block = rng.randbytes(min(n, 65536)) if n else b""
        sent = 0
        step = chunk_size or 65536
        while sent < n:
            piece = block[: min(step, n - sent)]
            if len(piece) < min(step, n - sent):
                piece = rng.randbytes(min(step, n - sent))
            if chunk_size:
                await ex.chunk(piece)
            else:
                await ex.data(piece)
            sent += len(piece)
        await ex.end()

    async def _ep_stream(self, ex, parts):
        n = min(int(parts[0]), 100_000)
        await ex.start(200, content_type="application/x-ndjson")
        base = self._echo(ex)
        for i in range(n):
            await ex.chunk((json.dumps({"id": i, **base}) + "\n").encode())
        await ex.end()

    async def _ep_drip(self, ex, parts):
        numbytes = int(ex.query.get("numbytes", 10))
        duration = float(ex.query.get("duration", 2))
        chunks = max(1, int(ex.query.get("chunks", numbytes)))
        delay = float(ex.query.get("delay", 0))
        code = int(ex.query.get("code", 200))
        if not (0 <= numbytes <= 100 * 1024 * 1024 and 0 <= duration <= 300 and 0 <= delay <= 60):
            raise ValueError("numbytes <= 100 MiB, duration <= 300 s, delay <= 60 s")
        await asyncio.sleep(delay)
        await ex.start(code)
        sizes = [numbytes // chunks + (1 if i < numbytes % chunks else 0) for i in range(chunks)]
        pause = duration / chunks
        for i, size in enumerate(sizes):
            if i:
                await asyncio.sleep(pause)
            await ex.chunk(b"*" * size)
        await ex.end()

    async def _ep_chunked(self, ex, parts):
        if "count" in ex.query:  # many equal chunks: ?count=200000&size=8
            sizes = [int(ex.query.get("size", 8))] * int(ex.query["count"])
        else:
            sizes = [int(s) for s in ex.query.get("sizes", "10,2000,7").split(",") if s]
        if (
            any(s <= 0 or s > 16 * 1024 * 1024 for s in sizes[:1] + sizes[-1:])
            or len(sizes) > 1_000_000
        ):
            raise ValueError("sizes: positive, at most 16 MiB each")
        delay = float(ex.query.get("delay", 0))
        with_ext = ex.query.get("ext") == "1"
        with_trailers = ex.query.get("trailers") == "1"
        headers = [("Trailer", "X-Checksum, X-Chunks")] if with_trailers else []
        await ex.start(200, headers, content_type="text/plain")
        digest = hashlib.sha256()
        for i, size in enumerate(sizes):
            if i and delay:
                await asyncio.sleep(delay)
            data = bytes((ord("a") + (i % 26),)) * size
            digest.update(data)
            await ex.chunk(data, f';index={i};name="chunk {i}"' if with_ext else "")
        trailers = [("X-Checksum", "sha256=" + digest.hexdigest()), ("X-Chunks", str(len(sizes)))]
        await ex.end(trailers if with_trailers else ())

    async def _compressed(self, ex, coding: str, compress):
        body = (json.dumps({**self._echo(ex), coding + "ped": True}, indent=2) + "\n").encode()
        await ex.send(200, compress(body), [("Content-Encoding", coding)])

    async def _ep_gzip(self, ex, parts):
        await self._compressed(ex, "gzip", gzip.compress)

    async def _ep_deflate(self, ex, parts):
        await self._compressed(ex, "deflate", zlib.compress)

    async def _ep_brotli(self, ex, parts):
        try:
            import brotli
        except ImportError:
            await ex.send_json({"error": "brotli is not installed on the server"}, 501)
            return
        await self._compressed(ex, "br", brotli.compress)

    async def _ep_gzip_stream(self, ex, parts):
        n = min(int(parts[0]) if parts else 100, 1_000_000)
        delay = float(ex.query.get("delay", 0))
        await ex.start(200, [("Content-Encoding", "gzip")], content_type="text/plain")
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        for i in range(n):
            line = f"line {i}: the quick brown fox jumps over the lazy dog\n".encode()
            out = comp.compress(line) + comp.flush(zlib.Z_SYNC_FLUSH)
            await ex.chunk(out)
            if delay:
                await asyncio.sleep(delay)
        await ex.chunk(comp.flush())
        await ex.end()

    async def _redirect(self, ex, location: str, status: int = 302):
        await ex.send(status, b"", [("Location", location)], content_type="text/plain")

    async def _ep_redirect(self, ex, parts):
        n = int(parts[0])
        await self._redirect(ex, f"/redirect/{n - 1}" if n > 1 else "/get")

    async def _ep_absolute_redirect(self, ex, parts):
        n = int(parts[0])
        base = ex.url.split("/absolute-redirect")[0]
        await self._redirect(ex, f"{base}/absolute-redirect/{n - 1}" if n > 1 else f"{base}/get")

    async def _ep_redirect_to(self, ex, parts):
        await self._redirect(ex, ex.query["url"], int(ex.query.get("status_code", 302)))

    async def _ep_delay(self, ex, parts):
        seconds = float(parts[0])
        if not 0 <= seconds <= 60:
            raise ValueError("delay must be 0 .. 60 s")
        await asyncio.sleep(seconds)
        await ex.send_json(self._echo(ex))

    async def _ep_sequence(self, ex, parts):
        # Known delays and failures for load runs: the k-th request of a token
        # gets the k-th entry of each list, cycling. Bounded like /unavailable.
        token = parts[0]
        delays = [float(d) for d in ex.query.get("delays", "0").split(",")]
        codes = [int(c) for c in ex.query.get("status", "200").split(",")]
        if not all(0 <= d <= 60 for d in delays) or len(delays) > 1000 or len(codes) > 1000:
            raise ValueError("delays must be 0 .. 60 s, at most 1,000 of each")
        if not all(c == 0 or 200 <= c <= 599 for c in codes):
            raise ValueError("status must be 0 or 200-599")
        if len(self._sequence) >= 1000 and token not in self._sequence:
            self._sequence.clear()
        k = self._sequence.get(token, 0)
        self._sequence[token] = k + 1
        self.sequence_log.append(token)
        await asyncio.sleep(delays[k % len(delays)])
        code = codes[k % len(codes)]
        if code == 0:  # the connection ends with no response: a client's NetworkError
            raise ConnectionResetError("/sequence: closed unanswered")
        await ex.send_json({"token": token, "k": k}, code)

    async def _ep_basic_auth(self, ex, parts):
        import base64

        expected = "Basic " + base64.b64encode(f"{parts[0]}:{parts[1]}".encode()).decode()
        if ex.header("authorization") == expected:
            await ex.send_json({"authenticated": True, "user": parts[0]})
        else:
            await ex.send_json(
                {"authenticated": False}, 401, [("WWW-Authenticate", 'Basic realm="demo"')]
            )

    async def _ep_unavailable(self, ex, parts):
        # For retries: "come back later" n times, then a 200 that says how many
        # requests it took. Bounded: at most 1,000 tokens are remembered.
        token, n = parts[0], int(parts[1])
        seen = self._unavailable.get(token, 0) + 1
        if len(self._unavailable) >= 1000 and token not in self._unavailable:
            self._unavailable.clear()
        self._unavailable[token] = seen
        if seen > n:
            await ex.send_json({"requests": seen, "method": ex.method})
            return
        code = int(ex.query.get("status") or "503")
        if code not in (429, 502, 503, 504):
            raise ValueError("status must be 429, 502, 503 or 504")
        retry_after = ex.query.get("retry_after")
        headers = [] if retry_after is None else [("Retry-After", retry_after)]
        await ex.send_json({"requests": seen}, code, headers)

    async def _ep_login(self, ex, parts):
        token = secrets.token_hex(8)
        if len(self.sessions) >= 1000:  # a demo: bounded, not a session store
            self.sessions.clear()
        self.sessions[token] = ex.query.get("user", "guest")
        cookie = f"session={token}; Path=/; HttpOnly; SameSite=Lax"
        await ex.send(302, b"", [("Location", "/whoami"), ("Set-Cookie", cookie)], "text/plain")

    async def _ep_whoami(self, ex, parts):
        from http.cookies import SimpleCookie

        jar = SimpleCookie(ex.header("cookie") or "")
        cookies = {name: morsel.value for name, morsel in jar.items()}
        user = self.sessions.get(cookies.get("session", ""))
        await ex.send_json({"user": user, "cookies": cookies}, 200 if user else 401)

    # -- bearer tokens: /token, /me ------------------------------------------------
    def _sign(self, payload: str) -> str:
        return hmac.new(self._token_key, payload.encode(), hashlib.sha256).hexdigest()

    def issue_token(self, user: str, lifetime: int = TOKEN_LIFETIME) -> str:
        """``base64url(user).expiry.signature``: nothing to remember on the server."""
        name = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        payload = f"{name}.{int(time.time()) + lifetime}"
        return f"{payload}.{self._sign(payload)}"

    def token_user(self, token: str) -> str | None:
        """The user a valid, unexpired token was issued to, else None."""
        if len(token) > 512 or token.count(".") != 2:
            return None
        name, expiry, signature = token.split(".")
        expected = self._sign(f"{name}.{expiry}").encode()
        if not hmac.compare_digest(signature.encode("latin-1", "replace"), expected):
            return None
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        try:
            return base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None

    def _credentials(self, ex) -> dict:
        ctype = (ex.header("content-type") or "").lower()
        text = ex.body.decode("utf-8", errors="replace")
        if ctype.startswith("application/json"):
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"the body is not JSON: {exc}") from None
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return data
        if ctype.startswith("application/x-www-form-urlencoded"):
            return {k: v[-1] for k, v in parse_qs(text).items()}
        raise ValueError("send user and password as JSON or as a form")

    async def _ep_token(self, ex, parts):
        if ex.method != "POST":
            await ex.send_json({"error": "POST user and password"}, 405, [("Allow", "POST")])
            return
        if len(ex.body) > MAX_TOKEN_BODY:
            await ex.send_json({"error": f"body over {MAX_TOKEN_BODY} bytes"}, 413)
            return
        data = self._credentials(ex)
        user = data.get("user", data.get("username"))
        if not isinstance(user, str) or not 0 < len(user) <= MAX_USER:
            raise ValueError(f"user must be a string of 1-{MAX_USER} characters")
        user.encode()  # a lone surrogate from JSON is a 400 here, not a crash later
        password = data.get("password")
        # compare_digest takes ASCII text only: compare bytes (a bad encoding is a 400).
        given = password.encode() if isinstance(password, str) else b""
        if not hmac.compare_digest(given, DEMO_PASSWORD.encode()):
            # RFC 9110 section 15.5.2: a 401 names the scheme that would work.
            challenge = [("WWW-Authenticate", 'Bearer realm="nbfetch demo"')]
            await ex.send_json({"error": "wrong user or password"}, 401, challenge)
            return
        token = {"access_token": self.issue_token(user), "token_type": "bearer"}
        # RFC 6749 section 5.1: a token response is not to be cached.
        headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        await ex.send_json({**token, "expires_in": TOKEN_LIFETIME}, headers=headers)

    async def _ep_me(self, ex, parts):
        scheme, _, token = (ex.header("authorization") or "").partition(" ")
        user = self.token_user(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            # RFC 6750 section 3: say why when a token came, only the scheme when none did.
            challenge = 'Bearer realm="nbfetch demo"'
            if scheme:
                challenge += ', error="invalid_token"'
            await ex.send_json(
                {"error": "a valid bearer token is required (POST /token)"},
                401,
                [("WWW-Authenticate", challenge)],
            )
            return
        await ex.send_json({"user": user})

    async def _ep_items(self, ex, parts):
        n = int(ex.query.get("n", 3))
        if not 0 <= n <= MAX_ITEMS:
            raise ValueError(f"n must be 0 .. {MAX_ITEMS}")
        items = [
            {"id": i, "name": f"item {i}", "price": round(1.5 * i, 2)} for i in range(1, n + 1)
        ]
        await ex.send_json({"items": items, "count": n})

    async def _ep_json(self, ex, parts):
        await ex.send_json(SLIDESHOW)

    async def _ep_close(self, ex, parts):
        await ex.send_json(self._echo(ex), headers=[("Connection", "close")])

    async def _ep_html(self, ex, parts):
        page = "<!doctype html><title>nbfetch demo</title><h1>Hello from the demo server</h1>\n"
        await ex.send(200, page.encode(), content_type="text/html; charset=utf-8")


def serve(port: int = 0, host: str = "127.0.0.1", ssl_context=None) -> DemoServer:
    """Start the demo server in a background thread; returns it (a context manager).
    With an ``ssl.SSLContext`` (server side) it serves https."""
    return DemoServer(host, port, ssl_context).start()


__all__ = ["DemoServer", "serve", "ENDPOINTS"]
