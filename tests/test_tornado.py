"""Tornado's own HTTP-client tests, run against nbfetch's Tornado adapter.

Tornado's wheel ships ``tornado/test``. The test cases that use the configured
client run here with ``AsyncHTTPClient.configure("nbfetch.tornado.AsyncHTTPClient")``:
HTTPClientCommonTestCase, SyncHTTPClientTest, HTTP100ContinueTestCase and
HTTP204NoContentTestCase (the same as
``python -m tornado.test.runtests --httpclient=nbfetch.tornado.AsyncHTTPClient``).
"""

import pytest

tornado = pytest.importorskip("tornado")

# Modules, not classes: a TestCase imported into this namespace would be
# collected a second time under its own name.
import tornado.test.httpclient_test as common  # noqa: E402
import tornado.test.simple_httpclient_test as simple  # noqa: E402
from tornado.httpclient import AsyncHTTPClient  # noqa: E402

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


def test_the_configured_class_is_nbfetch():
    client = AsyncHTTPClient(force_instance=True)
    try:
        assert isinstance(client, nbfetch.tornado.AsyncHTTPClient)
    finally:
        client.close()
