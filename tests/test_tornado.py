"""Tornado's own HTTP-client tests, run against nbfetch's Tornado adapter.

Tornado's wheel ships ``tornado/test``. The test cases that use the configured
client run here with ``AsyncHTTPClient.configure("nbfetch.tornado.AsyncHTTPClient")``:
HTTPClientCommonTestCase, SyncHTTPClientTest, HTTP100ContinueTestCase and
HTTP204NoContentTestCase (the same as
``python -m tornado.test.runtests --httpclient=nbfetch.tornado.AsyncHTTPClient``).
"""

import asyncio

import pytest

tornado = pytest.importorskip("tornado")

# Modules, not classes: a TestCase imported into this namespace would be
# collected a second time under its own name.
import tornado.test.httpclient_test as common  # noqa: E402
import tornado.test.simple_httpclient_test as simple  # noqa: E402
from tornado.httpclient import AsyncHTTPClient  # noqa: E402
from tornado.web import Application, RequestHandler  # noqa: E402

import nbfetch.tornado  # noqa: E402


def setup_module():
    import logging

    # As tornado.test.runtests does: the access log is not part of what is tested
    # (and tornado.testing fails a test on log records it did not expect).
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
    AsyncHTTPClient.configure("nbfetch.tornado.AsyncHTTPClient")


def teardown_module():
    AsyncHTTPClient.configure(None)


class TestCommon(common.HTTPClientCommonTestCase):
    # nbfetch decodes any Content-Encoding it supports, asked for or not (as
    # libcurl does): run the unsolicited-brotli-bomb test instead of skipping it.
    decompresses_brotli = True


class TestSync(common.SyncHTTPClientTest):
    pass


class TestContinue(simple.HTTP100ContinueTestCase):
    pass


class TestNoContent(simple.HTTP204NoContentTestCase):
    pass


class TestBodyProducer(simple.SimpleHTTPClientTestCase):
    """Tornado's own body_producer tests, from its simple client's test case
    (whose other tests are about the simple client's internals)."""

    def create_client(self, **kwargs):
        return nbfetch.tornado.AsyncHTTPClient(force_instance=True, **kwargs)


for _name in dir(TestBodyProducer):
    if _name.startswith("test_") and "body_producer" not in _name:
        setattr(TestBodyProducer, _name, None)  # unittest collects callables only


def test_the_configured_class_is_nbfetch():
    client = AsyncHTTPClient(force_instance=True)
    try:
        assert isinstance(client, nbfetch.tornado.AsyncHTTPClient)
    finally:
        client.close()


# -- body_producer: write() queues at once, as Tornado's HTTP1Connection.write does ------------
class _Echo(RequestHandler):
    def post(self):
        self.write(self.request.body)


def _first_then_awaited(write):
    async def produce():
        write(b"first-")  # not awaited: still sent, and first
        await write(b"second")

    return produce()


def _none_awaited(write):
    async def produce():
        write(b"first-")
        write(b"second")

    return produce()


def _plain_function(write):
    # Tornado awaits the producer's result only when it is not None.
    write(b"first-")
    write(b"second")


def _memoryview_not_awaited(write):
    async def produce():
        write(memoryview(b"first-"))
        await write(b"second")

    return produce()


def _many_not_awaited(write):
    for i in range(100):
        write(b"%05d" % i * 2000)  # 1 MB in all, more than any socket buffer


_MANY = b"".join(b"%05d" % i * 2000 for i in range(100))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("producer", "expected"),
    [
        (_first_then_awaited, b"first-second"),
        (_none_awaited, b"first-second"),
        (_plain_function, b"first-second"),
        (_memoryview_not_awaited, b"first-second"),
        (_many_not_awaited, _MANY),
    ],
    ids=["first-not-awaited", "none-awaited", "plain-function", "memoryview", "many-not-awaited"],
)
@pytest.mark.parametrize(
    "client_class",
    [simple.SimpleAsyncHTTPClient, nbfetch.tornado.AsyncHTTPClient],
    ids=["tornado-simple", "nbfetch"],
)
async def test_body_producer_writes_need_not_be_awaited(client_class, producer, expected):
    """Every write() is sent, in order, awaited or not; its Future resolves once sent.
    Run against Tornado's own simple client too: the expected behaviour is Tornado's."""
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    futures = []

    def recording(write):
        def recorded_write(chunk):
            futures.append(write(chunk))
            return futures[-1]

        return producer(recorded_write)

    sock, port = bind_unused_port()  # 127.0.0.1
    server = HTTPServer(Application([("/echo", _Echo)]))
    server.add_sockets([sock])
    client = client_class(force_instance=True)
    try:
        response = await client.fetch(
            f"http://127.0.0.1:{port}/echo", method="POST", body_producer=recording
        )
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
    assert response.body == expected
    # asyncio.isfuture, not isinstance: once a test has applied nest-asyncio2,
    # asyncio.Future is its pure-Python class, while Tornado made C futures.
    assert futures and all(asyncio.isfuture(f) for f in futures)
    assert all(f.done() and f.exception() is None for f in futures)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "client_class",
    [simple.SimpleAsyncHTTPClient, nbfetch.tornado.AsyncHTTPClient],
    ids=["tornado-simple", "nbfetch"],
)
async def test_body_producer_writing_a_non_bytes_fails_the_fetch(client_class):
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    async def producer(write):
        await write(5)

    sock, port = bind_unused_port()
    server = HTTPServer(Application([("/echo", _Echo)]))
    server.add_sockets([sock])
    client = client_class(force_instance=True)
    try:
        with pytest.raises(TypeError):
            await client.fetch(
                f"http://127.0.0.1:{port}/echo", method="POST", body_producer=producer
            )
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
