"""Record and replay in JupyterLab + Chromium: a session recorded against the
demo server, the server stopped, the same %fetch replayed from the file; the
live view shows the recorded chunks (a screenshot for docs/)."""

from __future__ import annotations

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    lab_fixture,
    open_notebook,
    run_cell,
    shots_dir,
)

pytestmark = pytest.mark.timeout(300)

URL = "{base}/chunked?sizes=5,300,7,1200&ext=1&trailers=1&delay=0.3"
CELLS = [
    "import nbfetch, tempfile, pathlib\nfrom nbfetch import demo\n"
    "server = demo.serve()\nbase = server.url\n"
    "path = pathlib.Path(tempfile.mkdtemp()) / 'session.har'\n%load_ext nbfetch",
    f"rec = nbfetch.record(path)\nr = %fetch {URL}\nrec.stop()\nserver.stop()",
    "replaying = nbfetch.replay(path)",
    f"%fetch {URL}",
    "replaying.stop()\nprint(replaying)",
]


def test_a_replayed_fetch_shows_its_recorded_chunks(lab, browser, tmp_path):
    out = shots_dir(tmp_path)
    page = open_notebook(browser, lab, "record.ipynb", CELLS)
    for i in range(3):
        run_cell(page, i)
    view = run_cell(page, 3)
    view.locator(".nbfetch-response").wait_for(timeout=30_000)
    text = view.locator(".jp-OutputArea").inner_text()
    assert "200 OK" in text and "4 chunks" in text
    view.locator("summary", has_text="Chunks (4)").click()
    view.locator("td", has_text="index=3;name=chunk 3").first.wait_for()
    view.screenshot(path=str(out / "record-replayed-view.png"))
    done = run_cell(page, 4)
    assert "answered 1, passed 0" in done.locator(".jp-OutputArea").inner_text()
