"""The live widgets in a real browser: JupyterLab, Debian's Chromium, Playwright.

A notebook runs a live ResponseView on a slow drip from the demo server, a
fetch_many waterfall, and a fetch cancelled by clicking Cancel in the page. We
assert the rendered text (the docs' screenshots come from test_browser_views.py
and test_browser_many_panel.py).
"""

from __future__ import annotations

import time

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    cell,
    lab_fixture,
    open_notebook,
    run_cell,
    wait_done,
)

pytestmark = pytest.mark.timeout(300)

CELLS = [
    "import nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url",
    "%load_ext nbfetch",
    "h = %fetch --bg {base}/chunked?count=40&size=64&delay=0.15&ext=1",
    "await h\nh.result().status_code",
    "rs = await nbfetch.fetch_many([base + '/delay/0.4'] * 12, max_clients=4)",
    "r = %fetch {base}/drip?numbytes=60&duration=60&chunks=60",
    "'after cancel'",
]


def test_live_view_waterfall_and_cancel_in_a_real_browser(lab, browser):
    page = open_notebook(browser, lab, "live.ipynb", CELLS)
    run_cell(page, 0)
    run_cell(page, 1)
    view = run_cell(page, 2)  # --bg: the cell ends, the view keeps updating
    # mid-fetch: the status line arrived, chunks are still coming
    view.locator("text=200 OK").wait_for(timeout=20_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.widget-html-content')].some(e => /[0-9]+ chunks/.test(e.textContent))",
        timeout=20_000,
    )
    mid = view.locator(".jp-OutputArea").inner_text()
    assert "download" in mid and "…" in mid  # the running phase grows in the waterfall
    run_cell(page, 3, timeout=30_000)
    view.locator(".nbfetch-response").wait_for(timeout=10_000)
    assert "200" in cell(page, 3).locator(".jp-OutputArea").inner_text()
    final = view.locator(".jp-OutputArea").inner_text()
    assert "40 chunks" in final and "2.5 KiB" in final
    for phase in ("queue", "connect", "send", "wait", "download", "total"):
        assert phase in final
    view.locator("summary", has_text="Chunks").click()  # the finished view's snapshot
    # a row of the chunk table: index 39, its size and its extensions
    view.locator("tr", has=page.locator("td", has_text="index=39;name=chunk 39")).wait_for(
        timeout=5_000
    )

    many = run_cell(page, 4, timeout=60_000)
    text = many.locator(".jp-OutputArea").inner_text()
    assert "12 fetches" in text and "12 done" in text and "max_clients=4" in text

    slow = run_cell(page, 5, wait=False)
    slow.locator("text=200 OK").wait_for(timeout=20_000)
    started = time.monotonic()
    slow.locator("button:has-text('Cancel')").click()
    wait_done(page, 5, timeout=30_000)
    assert time.monotonic() - started < 30  # long before the 60 s drip would end
    output = slow.locator(".jp-OutputArea").inner_text()
    assert "FetchCancelled" in output and "cancelled by the Cancel button" in output
    assert "cancelled during download" in output
    run_cell(page, 6)  # the kernel goes on
    assert "after cancel" in cell(page, 6).locator(".jp-OutputArea").inner_text()
