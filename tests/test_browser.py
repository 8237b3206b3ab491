"""The live widgets in a real browser: JupyterLab, Debian's Chromium, Playwright.

A notebook runs a live ResponseView on a slow drip from the demo server, a
fetch_many waterfall, and a fetch cancelled by clicking Cancel in the page. We
assert the rendered text and take screenshots (saved to ``docs/`` when
``NBFETCH_SCREENSHOTS`` names a directory, else to the test's tmp dir).

Chromium comes from Debian (``.ci/run`` installs it); Playwright drives it with
``executable_path`` — never ``playwright install``, which cannot download here.
Every page request that is not to 127.0.0.1 is blocked.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _require():
    missing = []
    if CHROMIUM is None:
        missing.append("chromium (apt-get install chromium)")
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install: {', '.join(missing)}")
        pytest.skip(f"needs {', '.join(missing)}")


CELLS = [
    "import nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url",
    "%load_ext nbfetch",
    "h = %fetch --bg {base}/chunked?count=40&size=64&delay=0.15&ext=1",
    "await h\nh.result().status_code",
    "rs = await nbfetch.fetch_many([base + '/delay/0.4'] * 12, max_clients=4)",
    "r = %fetch {base}/drip?numbytes=60&duration=60&chunks=60",
    "'after cancel'",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _require()
    root = tmp_path_factory.mktemp("lab")
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": src,
                "outputs": [],
                "execution_count": None,
            }
            for src in CELLS
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "live.ipynb").write_text(json.dumps(nb))
    port = _free_port()
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no "get Jupyter news?" toast over the screenshots, no update checks
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
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
    yield base
    proc.terminate()  # the server we started, by its PID
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()

        def only_loopback(route):
            host = route.request.url.split("/")[2].split(":")[0]
            if host in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                route.abort()

        pg.route("**/*", only_loopback)
        pg.goto(lab + "/lab/tree/live.ipynb")
        pg.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        # the kernel is up: the status bar says "Python 3 (ipykernel) | Idle"
        pg.wait_for_function(
            "() => [...document.querySelectorAll('.jp-StatusBar-Widget, .jp-StatusBar-TextItem')]"
            ".some(e => /Idle/.test(e.textContent))",
            timeout=60_000,
        )
        yield pg
        browser.close()


def shots_dir(tmp_path) -> Path:
    target = os.environ.get("NBFETCH_SCREENSHOTS")
    path = Path(target) if target else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def cell(page, index):
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def run_cell(page, index, wait=True, timeout=60_000):
    """Select cell ``index`` and Shift+Enter; wait for its prompt number."""
    c = cell(page, index)
    c.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")  # command mode, this cell selected
    page.keyboard.press("Shift+Enter")
    if wait:
        wait_done(page, index, timeout)
    return c


def wait_done(page, index, timeout=60_000):
    prompt = cell(page, index).locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        text = prompt.inner_text().strip()
        if text.startswith("[") and text[1:-2].strip().isdigit():
            return
        time.sleep(0.2)
    raise AssertionError(f"cell {index} did not finish: prompt {prompt.inner_text()!r}")


def test_live_view_waterfall_and_cancel_in_a_real_browser(page, tmp_path):
    out = shots_dir(tmp_path)
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
    view.screenshot(path=str(out / "live-view-mid-fetch.png"))
    assert "download" in mid and "…" in mid  # the running phase grows in the waterfall
    run_cell(page, 3, timeout=30_000)
    assert "200" in cell(page, 3).locator(".jp-OutputArea").inner_text()
    final = view.locator(".jp-OutputArea").inner_text()
    assert "40 chunks" in final and "2,560" in final
    for phase in ("queue", "connect", "send", "wait", "download", "total"):
        assert phase in final
    view.locator(
        ".lm-TabBar-tab:has-text('Chunks'), .p-TabBar-tab:has-text('Chunks')"
    ).first.click()
    # a row of the chunk table: index 39, its size and its extensions
    view.locator("tr", has=page.locator("td", has_text="index=39;name=chunk 39")).wait_for(
        timeout=5_000
    )
    view.screenshot(path=str(out / "live-view-done.png"))

    many = run_cell(page, 4, timeout=60_000)
    text = many.locator(".jp-OutputArea").inner_text()
    assert "12 fetches" in text and "12 done" in text and "max_clients=4" in text
    many.screenshot(path=str(out / "fetch-many-waterfall.png"))

    slow = run_cell(page, 5, wait=False)
    slow.locator("text=200 OK").wait_for(timeout=20_000)
    started = time.monotonic()
    slow.locator("button:has-text('Cancel')").click()
    wait_done(page, 5, timeout=30_000)
    assert time.monotonic() - started < 30  # long before the 60 s drip would end
    output = slow.locator(".jp-OutputArea").inner_text()
    assert "FetchCancelled" in output and "cancelled by the Cancel button" in output
    assert "Stopped" in output
    slow.screenshot(path=str(out / "live-view-cancelled.png"))
    run_cell(page, 6)  # the kernel goes on
    assert "after cancel" in cell(page, 6).locator(".jp-OutputArea").inner_text()
