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
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from browser import (  # noqa: F401 (fixtures)
    Lab,
    _free_port,
    browser_fixture,
    open_notebook,
    require,
    run_cell,
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
    require()
    root = tmp_path_factory.mktemp("lab")
    port = _free_port()
    settings = root / ".settings"
    apputils = settings / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    widgets = settings / "@jupyter-widgets" / "jupyterlab-manager"
    widgets.mkdir(parents=True)
    (widgets / "plugin.jupyterlab-settings").write_text(json.dumps({"saveState": True}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "NBFETCH_SECRET_TOKEN": TOKEN,
        "NBFETCH_SECRET_KEY": API_KEY,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start")
    yield Lab(base, root, settings)
    proc.terminate()  # the server we started, by its PID
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


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
