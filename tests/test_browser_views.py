"""The live view and its static snapshot in JupyterLab + Chromium (Playwright).

One notebook: a ``--bg`` fetch watched mid-way and finished, a 2,000-chunk
stream, a fetch cancelled from the page; then a browser reload, the notebook
saved and opened again after its kernel was shut down (the saved outputs are
static HTML), and the Dark theme. Screenshots for docs/ go to ``shots_dir``.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    cell,
    lab_fixture,
    open_notebook,
    run_cell,
    shots_dir,
    wait_done,
    wait_ready,
)

pytestmark = pytest.mark.timeout(300)

CELLS = [
    "import nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url",
    "%load_ext nbfetch",
    "h = %fetch --bg {base}/chunked?count=40&size=64&delay=0.15&ext=1",
    "r = %fetch --stream {base}/stream/2000",
    "r = %fetch {base}/drip?numbytes=60&duration=60&chunks=60",
    "r = %fetch {base}/drip?numbytes=4000&duration=3&chunks=40",
]

# Evaluated on the cell in one go: the live widget replaces its HTML as it renders.
LUMINANCE = """(c) => {
  const el = c.querySelector('.nbfetch-track');
  const text = getComputedStyle(el).backgroundColor;
  const m = (text.match(/[0-9.]+/g) || []).map(Number);
  if (m.length < 3) return {text, alpha: 0, y: 1};
  const [r, g, b] = m.slice(0, 3).map(v => v / 255);
  return {text, alpha: m.length > 3 ? m[3] : 1, y: 0.2126 * r + 0.7152 * g + 0.0722 * b};
}"""


def output(c):
    return c.locator(".jp-OutputArea")


def set_theme(lab, name: str) -> None:
    path = lab.settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    path.write_text(json.dumps({"theme": name}))


def shut_down_kernels(lab) -> None:
    with urllib.request.urlopen(lab.url + "/api/kernels", timeout=10) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(f"{lab.url}/api/kernels/{k['id']}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()


def test_live_view_snapshot_reload_reopen_and_dark_theme(lab, browser, tmp_path):
    out = shots_dir(tmp_path)
    set_theme(lab, "JupyterLab Light")
    page = open_notebook(browser, lab, "views.ipynb", CELLS)
    run_cell(page, 0)
    run_cell(page, 1)

    view = run_cell(page, 2)  # --bg: the cell ends, the view keeps updating
    view.locator("text=200 OK").wait_for(timeout=20_000)
    view.locator(".widget-html-content", has_text=re.compile(r"\d+ chunks")).first.wait_for()
    mid = output(view).inner_text()
    assert "download" in mid and "…" in mid  # the running phase grows
    assert "ETA" not in mid  # no length known: no ETA
    assert view.locator(".nbfetch-indeterminate").count() == 1
    view.screenshot(path=str(out / "live-view-mid-fetch.png"))
    # the end: the widget is replaced by the static snapshot
    view.locator(".nbfetch-response").wait_for(timeout=30_000)
    final = output(view).inner_text()
    assert "40 chunks" in final and "2.5 KiB" in final and "…" not in final
    assert view.locator(".widget-button").count() == 0  # no Cancel, no "Done"
    view.locator("summary", has_text="Chunks (40)").click()
    view.locator("tr", has=page.locator("td", has_text="index=39;name=chunk 39")).wait_for()
    view.screenshot(path=str(out / "live-view-done.png"))

    stream = run_cell(page, 3, timeout=60_000)
    stream.locator(".nbfetch-response").wait_for(timeout=30_000)
    assert "Chunks (2,000)" in output(stream).inner_text()
    stream.locator("summary", has_text="Chunks").click()
    height = stream.bounding_box()["height"]
    print(f"2,000-chunk stream: cell height {height:.0f} px")
    assert height < 900, height  # before: 6,640 px

    slow = run_cell(page, 4, wait=False)
    slow.locator("text=200 OK").wait_for(timeout=20_000)
    slow.locator("button:has-text('Cancel')").click()
    wait_done(page, 4, timeout=30_000)
    slow.locator(".nbfetch-response").wait_for(timeout=10_000)
    text = output(slow).inner_text()
    assert "cancelled during download" in text and "in phase" not in text
    slow.screenshot(path=str(out / "live-view-cancelled.png"))

    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=20_000)
    saved = (lab.root / "views.ipynb").read_text()
    assert "nbfetch-response" in saved and "ResponseView(children=" not in saved

    # a reload re-renders every output: snapshots need no widget model
    page.reload()
    wait_ready(page)
    for i in (2, 3, 4):
        cell(page, i).locator(".nbfetch-response").wait_for(timeout=20_000)
    assert "model not found" not in page.locator(".jp-Notebook").inner_text()
    page.close()
    shut_down_kernels(lab)

    # opened again, in the Dark theme: the saved outputs show the status lines as text
    set_theme(lab, "JupyterLab Dark")
    page = open_notebook(browser, lab, "views.ipynb")
    reopened = output(cell(page, 2))
    reopened.locator(".nbfetch-response").wait_for(timeout=20_000)
    assert "200 OK" in reopened.inner_text() and "40 chunks" in reopened.inner_text()
    assert "ResponseView(" not in page.locator(".jp-Notebook").inner_text()

    run_cell(page, 0)
    run_cell(page, 1)
    dark = run_cell(page, 5, wait=False)
    dark.locator(".nbfetch-track").first.wait_for(timeout=20_000)
    live = dark.evaluate(LUMINANCE)
    assert live["alpha"] > 0 and live["y"] < 0.3, live  # before: #f4f4f4, a white slab
    dark.locator(".nbfetch-response").wait_for(timeout=30_000)
    done = dark.evaluate(LUMINANCE)
    assert done["alpha"] > 0 and done["y"] < 0.3, done
    dark.screenshot(path=str(out / "live-view-done-dark.png"))
    page.close()
    set_theme(lab, "JupyterLab Light")
