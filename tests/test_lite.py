"""nbfetch in JupyterLite, end to end: the site built offline from the
``prepare`` cache, served on 127.0.0.1 (site and demo endpoints on one origin),
Debian's Chromium driven by Playwright, and the tutorial
notebooks/lite/09-jupyterlite.ipynb run cell by cell in the Pyodide kernel.

Asserted: the JSON fetch's rendered status line; a slow drip's live view whose
Chunks table grows while the server is still sending; Cancel ending a long
stream (the view says so, and the server sees the client go long before the
stream would end); and not one request to anything but 127.0.0.1 (Chromium
resolves no other name, and the context aborts and records any other URL).

Measured (printed; ``-s`` shows them): the site's size, the kernel's boot (page
opened to kernel idle) and the JSON fetches' latency inside the kernel.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser import CHROMIUM, FLAGS, cell, require
from conftest import lite_cache

import nbfetch
from nbfetch.lite import build as build_mod
from nbfetch.lite import serve as serve_mod

# The site build (about 10 s), the kernel's boot (about 20 s on 2 cores) and
# the notebook (about 30 s, a 10 s drip among its cells), with room for a
# loaded CI machine.
pytestmark = pytest.mark.timeout(180)

NOTEBOOK = "09-jupyterlite.ipynb"
#: Chromium resolves no name but 127.0.0.1: a request elsewhere cannot leave.
LOCAL_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
PROMPT_DONE = re.compile(r"\[\d+\]")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built by the documented command from the prepared cache only."""
    require()  # Chromium and Playwright (CI=true: missing ones fail)
    cache = lite_cache()
    out = tmp_path_factory.mktemp("lite") / "site"
    # the checkout this test imports, whatever an editable install points at
    root = Path(nbfetch.__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-m", "nbfetch.lite", "build", *("--output", out, "--cache", cache)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    print(run.stdout.strip().splitlines()[-1])  # "built ... in X s: Y MB"
    assert (out / "files" / NOTEBOOK).is_file()
    return out


class WatchedSite(serve_mod.SiteServer):
    """The site's server, counting the requests of each path it is still
    answering: a stream the client dropped ends early here (the server's next
    write fails)."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.answering: collections.Counter[str] = collections.Counter()

    async def _dispatch(self, ex) -> None:
        self.answering[ex.path] += 1
        try:
            await super()._dispatch(ex)
        finally:
            self.answering[ex.path] -= 1


@pytest.fixture(scope="module")
def served(site):
    """The site's server (`nbfetch.lite serve`'s), in this process, so the
    test sees what the server saw; stopped by the fixture."""
    server = WatchedSite(site).start()
    yield server
    server.stop()


@pytest.fixture
def page(served):
    """A page of a Chromium that reaches 127.0.0.1 only; ``page.blocked``
    lists every other URL it tried."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def only_loopback(route):
        host = route.request.url.split("/")[2].rsplit(":", 1)[0]
        if host == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, args=[*FLAGS, LOCAL_ONLY], headless=True
        )
        try:
            context = chromium.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.blocked = blocked
            yield page
        finally:
            chromium.close()


def wait_done(page, index: int, timeout: float = 60_000) -> None:
    """Cell ``index``'s prompt shows its number. Waited for by Playwright,
    never by sleeping: the sync API answers the routed requests only while
    one of its calls runs, so a sleep would hold every fetch of the page."""
    prompt = cell(page, index).locator(".jp-InputPrompt")
    prompt.filter(has_text=PROMPT_DONE).wait_for(timeout=timeout)


def run_cell(page, index: int, timeout: float = 60_000):
    c = cell(page, index)
    c.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")  # command mode, this cell selected
    page.keyboard.press("Shift+Enter")
    wait_done(page, index, timeout)
    return c


def poll(page, predicate, timeout: float, what: str) -> None:
    """Until ``predicate()`` (a host-side condition, such as the server's
    counters); Playwright's own wait between checks keeps the page served."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)


def output(c) -> str:
    return c.locator(".jp-OutputArea").inner_text()


def test_the_tutorial_runs_in_the_pyodide_kernel(site, served, page):
    started = time.monotonic()
    page.goto(f"{served.url}/lab/index.html?path={NOTEBOOK}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # the kernel is up: the status bar says "Python (Pyodide) | Idle"
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => /Pyodide/.test(e.textContent))"
        " && [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => /Idle/.test(e.textContent))",
        timeout=120_000,
    )
    boot = time.monotonic() - started

    outputs: dict[str, str] = {}
    seen_rows: list[int] = []
    count = page.locator(".jp-Notebook .jp-Cell").count()
    for i in range(count):
        c = cell(page, i)
        if "jp-CodeCell" not in (c.get_attribute("class") or ""):
            continue
        source = c.locator(".jp-InputArea-editor").inner_text()
        if "duration=10&" in source:
            seen_rows = _watch_the_chunks_grow(page, served, i)
        elif "duration=60&" in source:
            _cancel_the_long_stream(page, served, i)
        else:
            run_cell(page, i, timeout=90_000)  # the first installs nbfetch
        outputs[source] = output(c)
        errors = c.locator('[data-mime-type="application/vnd.jupyter.stderr"]')
        assert errors.count() == 0, f"cell {i} failed:\n{source}\n{outputs[source]}"

    def out(part: str) -> str:
        """The output of the one cell whose source has ``part``."""
        (text,) = [o for s, o in outputs.items() if part in s]
        return text

    # The JSON fetch: the card's status line, reconstructed from the browser's
    # answer (the wire is the browser's).
    card = out('r = await nbfetch.fetch(base + "/json")')
    assert f"200 OK GET {served.url}/json HTTP/1.1" in card
    assert "browser fetch(): head and chunks reconstructed" in card
    # What the browser hides, as the tutorial shows it.
    assert not any(
        name.startswith(("'resolve.", "'connect.", "'tls.")) for name in out("[e.name").split()
    )
    assert "'browser.response'" in out("[e.name")
    assert "forbidden request header" in out("from nbfetch.core.errors")
    assert "(True, None, 'gzip')" in out('r = await nbfetch.fetch(base + "/gzip")')
    assert f"(URL('{served.url}/get'), [])" in out('r = await nbfetch.fetch(base + "/redirect')
    assert "the likely cause is CORS" in out("http://127.0.0.1:9/")
    assert "(200, '" + "*" * 40 + "', 40)" in out("r = await h")
    assert "<FetchHandle cancelled" in out("print(h)")

    total = float(re.search(r"total=([\d.]+)ms", out("r.timing")).group(1))
    median, fastest = map(
        float,
        re.search(r"median ([\d.]+) ms, fastest ([\d.]+) ms", out("import statistics")).groups(),
    )
    print(
        f"site {build_mod.size(site) / 1e6:.1f} MB; kernel boot {boot:.1f} s"
        f" (page opened to kernel idle); /json: first fetch {total:.1f} ms,"
        f" then median {median:.1f} ms, fastest {fastest:.1f} ms of 10"
        f"; chunk rows seen while streaming: {seen_rows}"
    )
    assert page.blocked == []


def _watch_the_chunks_grow(page, served, index: int) -> list[int]:
    """``%fetch --bg`` on a 10 s drip of 40 pieces: the cell ends at once, the
    view goes on. Open its Chunks tab and see the table grow while the server
    still sends (its in-flight counter, read after the row count)."""
    c = run_cell(page, index)
    view = c.locator(".jp-OutputArea")
    view.locator("text=200 OK").wait_for(timeout=20_000)
    view.locator(".widget-toggle-button", has_text="Chunks").click()
    # the chunk table (its header has "gap (ms)"), not the Timing tab's
    table = view.locator("table", has=page.locator("th", has_text="gap (ms)"))
    table.wait_for(timeout=20_000)
    seen: list[int] = []
    for _ in range(2):
        # more rows than last time (the header row is one of them)
        page.wait_for_function(
            "([el, n]) => [...el.querySelectorAll('table')]"
            ".some(t => /gap \\(ms\\)/.test(t.textContent) && t.querySelectorAll('tr').length > n)",
            arg=[view.element_handle(), seen[-1] if seen else 1],
            timeout=20_000,
        )
        seen.append(table.locator("tr").count())
        # read after the rows: the server was still sending when they were counted
        assert served.answering["/drip"] == 1, "the drip ended before the table was read"
    assert seen[0] < seen[1] < 41, seen  # 40 pieces and the header: not all there yet
    # The end: the view becomes its static snapshot, with every piece.
    view.locator(".nbfetch-response").wait_for(timeout=30_000)
    assert "40 chunks" in output(c)
    return seen


def _cancel_the_long_stream(page, served, index: int) -> None:
    """A 60 s drip, cancelled by its view's Cancel button: the view ends
    cancelled and the server sees the client go (the aborted fetch closes the
    connection; the drip's next write fails), long before the drip would end."""
    c = run_cell(page, index)
    view = c.locator(".jp-OutputArea")
    view.locator("text=200 OK").wait_for(timeout=20_000)
    assert served.answering["/drip"] == 1
    view.locator("button:has-text('Cancel')").click()
    view.locator(".nbfetch-response").wait_for(timeout=20_000)
    assert "cancelled during download (by the Cancel button)" in output(c)
    # within 30 s of a click 1-2 s in: the drip itself would take 60 s
    poll(page, lambda: served.answering["/drip"] == 0, 30, "the server to see the client go")
