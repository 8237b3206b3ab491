"""The live view's Pause/Resume and rate control in JupyterLab + Chromium
(Playwright): clicked on the page, the status line says "paused", the kernel's
response is paused and limited. The screenshot for docs/ goes to ``shots_dir``."""

from __future__ import annotations

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    lab_fixture,
    open_notebook,
    run_cell,
    shots_dir,
    wait_done,
)

pytestmark = pytest.mark.timeout(300)

CELLS = [
    "import nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url",
    "%load_ext nbfetch",
    "h = %fetch --bg --stream {base}/drip?numbytes=6000&duration=30&chunks=60",
    "print('state:', h.view._stream.paused, h.view._stream.rate_limit)",
]


def test_pause_resume_and_rate_control_on_the_page(lab, browser, tmp_path):
    out = shots_dir(tmp_path)
    page = open_notebook(browser, lab, "pause.ipynb", CELLS)
    run_cell(page, 0)
    run_cell(page, 1)
    view = run_cell(page, 2)
    view.locator("text=200 OK").wait_for(timeout=20_000)
    view.locator("button:has-text('Pause')").click()
    view.locator(".nbfetch-paused").wait_for(timeout=20_000)
    view.locator("select").select_option(label="100 KB/s")
    view.locator("button:has-text('Resume')").wait_for(timeout=20_000)
    view.screenshot(path=str(out / "pause-live-view.png"))
    state = run_cell(page, 3)
    state.locator("text=state: True 100000.0").wait_for(timeout=20_000)
    view.locator("button:has-text('Resume')").click()
    view.locator("button:has-text('Pause')").wait_for(timeout=20_000)
    assert view.locator(".nbfetch-paused").count() == 0
    view.locator("button:has-text('Cancel')").click()
    view.locator(".nbfetch-response").wait_for(timeout=20_000)
    text = view.locator(".jp-OutputArea").inner_text()
    assert "cancelled during download" in text and "paused" in text  # "paused 1.2 s"
    page.close()
