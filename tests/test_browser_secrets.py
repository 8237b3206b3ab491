"""A saved notebook keeps no secret (issue 15, item 10): JupyterLab + Chromium.

The cells read a token and an API key from environment variables of the
JupyterLab server (so of its kernels), so the cell sources do not contain them;
they send both to the demo's ``/get``, which echoes headers and arguments in its
body, with ``%fetch``, with ``nbfetch.fetch`` displayed, and as ``r``'s repr.
The notebook is saved with widget state (JupyterLab's "save widget state"
setting on), and its file text must contain neither value: outputs, widget
state and metadata alike.
"""

from __future__ import annotations

import json

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    open_notebook,
    run_cell,
    running_lab,
)

pytestmark = pytest.mark.timeout(240)

TOKEN = "tok-Br0wser-5e1f9a"
API_KEY = "key-Br0wser-77c2d0"

CELLS = [
    "import os, nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url\n"
    "tok, key = os.environ['NBFETCH_SECRET_TOKEN'], os.environ['NBFETCH_SECRET_KEY']",
    "%load_ext nbfetch",
    '%fetch -H "Authorization: Bearer {tok}" "{base}/get?api_key={key}"',
    'r = await nbfetch.fetch(f"{base}/get?api_key={key}", headers={"Authorization": f"Bearer {tok}"})'
    "\ndisplay(r)",
    "r",
    "repr(r)",
    "assert key in r.text and tok in r.text  # the server echoed both\n'echoed'",
]


@pytest.fixture(scope="module", name="lab")
def lab_fixture(tmp_path_factory):
    """tests/browser.py's lab, with the secrets in the server's environment and
    widget state saved in the notebook file."""
    yield from running_lab(
        tmp_path_factory.mktemp("lab"),
        env={"NBFETCH_SECRET_TOKEN": TOKEN, "NBFETCH_SECRET_KEY": API_KEY},
        settings={"@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True}},
    )


def saved_leaks(nb: dict, secrets: tuple[str, ...]) -> list[str]:
    """Where in a notebook each secret is: cell outputs (by mime type), metadata."""
    places = []
    for i, c in enumerate(nb["cells"]):
        if any(s in "".join(c["source"]) for s in secrets):
            places.append(f"cell {i} source")
        for out in c.get("outputs", []):
            parts = out.get("data", {"text": out.get("text", "")})
            for mime, value in parts.items():
                found = [s for s in secrets if s in json.dumps(value)]
                if found:
                    places.append(f"cell {i} {out['output_type']} {mime}: {found}")
    for key, value in nb["metadata"].items():
        found = [s for s in secrets if s in json.dumps(value)]
        if found:
            places.append(f"metadata {key}: {found}")
    return places


def test_a_saved_notebook_keeps_neither_the_token_nor_the_api_key(lab, browser):
    page = open_notebook(browser, lab, "secrets.ipynb", CELLS)
    for i in range(len(CELLS)):
        run_cell(page, i)
    assert "echoed" in page.locator(".jp-Notebook .jp-Cell").nth(6).inner_text()
    path = lab.root / "secrets.ipynb"
    written = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)
    assert path.stat().st_mtime_ns != written
    text = path.read_text()
    nb = json.loads(text)
    # every cell ran (Shift+Enter on the last one added an empty cell)
    assert all(c["execution_count"] for c in nb["cells"][: len(CELLS)])
    assert "widget-state" in text  # the widget state was saved too: it is checked
    leaks = saved_leaks(nb, (TOKEN, API_KEY))
    assert not leaks, "secrets in the saved notebook:\n" + "\n".join(leaks)
    assert TOKEN not in text and API_KEY not in text
