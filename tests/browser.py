"""JupyterLab, Debian's Chromium and Playwright, for the browser tests.

Each browser test module imports the fixtures (``lab``, ``browser``) and
writes its own notebook::

    from browser import browser_fixture, lab_fixture, open_notebook, run_cell  # noqa: F401

    def test_x(lab, browser):
        page = open_notebook(browser, lab, "x.ipynb", ["import nbfetch", "..."])
        out = run_cell(page, 0)

Chromium comes from Debian (``.ci/run`` installs it); Playwright drives it with
``executable_path`` — never ``playwright install``, which cannot download here.
Every page request that is not to 127.0.0.1 is blocked. Screenshots go to
``docs/`` when ``NBFETCH_SCREENSHOTS`` names a directory, else to the test's
tmp dir.
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
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def require() -> None:
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    root: Path
    settings: Path

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        nb = {
            "cells": [
                {
                    "cell_type": "code",
                    "metadata": {},
                    "source": src,
                    "outputs": [],
                    "execution_count": None,
                }
                for src in cells
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        path = self.root / name
        path.write_text(json.dumps(nb))
        return path


def running_lab(root: Path, env: dict | None = None, settings: dict | None = None):
    """Start JupyterLab on 127.0.0.1 with its settings under ``root``; yields
    the ``Lab``, stops the server by its PID after. ``env``: more environment
    for the server (and so its kernels); ``settings``: more
    ``{"<extension>/<plugin>": {...}}`` settings files."""
    require()
    port = _free_port()
    settings_dir = root / ".settings"
    # no "get Jupyter news?" toast over the screenshots, no update checks
    files = {
        "@jupyterlab/apputils-extension/notification": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        **(settings or {}),
    }
    for name, values in files.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
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
        env={
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
            "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
            **(env or {}),
        },
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
    try:
        yield Lab(base, root, settings_dir)
    finally:
        proc.terminate()  # the server we started, by its PID
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module", name="lab")
def lab_fixture(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with its own settings (module scope)."""
    yield from running_lab(tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module", name="browser")
def browser_fixture(lab):
    """A Chromium browser context (1400 by 1000) that reaches only 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})

        def only_loopback(route):
            host = route.request.url.split("/")[2].split(":")[0]
            if host in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", only_loopback)
        yield context
        chromium.close()


def open_notebook(context, lab: Lab, name: str, cells: list[str] | None = None, kernel=True):
    """A new page with notebook ``name`` (written first from ``cells`` if given),
    once its kernel is idle. ``?reset`` starts from an empty workspace: without
    it, JupyterLab restores the notebook an earlier test opened beside this one,
    and ``cell()`` would count the cells of both."""
    if cells is not None:
        lab.write_notebook(name, cells)
    page = context.new_page()
    page.goto(f"{lab.url}/lab/tree/{name}?reset")
    wait_ready(page, kernel=kernel)
    return page


def wait_ready(page, kernel: bool = True) -> None:
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    if kernel:
        # the kernel is up: the status bar says "Python 3 (ipykernel) | Idle"
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-StatusBar-Widget, .jp-StatusBar-TextItem')]"
            ".some(e => /Idle/.test(e.textContent))",
            timeout=60_000,
        )


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
