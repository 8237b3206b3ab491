"""The pool inspector in JupyterLab (Chromium): live while fetches queue, in the
Light and Dark themes, then a static snapshot when the client closes.
``NBFETCH_SCREENSHOTS=docs`` writes docs/inspect-*.png."""

from __future__ import annotations

import json
import re

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    lab_fixture,
    open_notebook,
    run_cell,
    shots_dir,
)

pytestmark = pytest.mark.timeout(300)

CELLS = [
    "import asyncio\nimport nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\n"
    "base = server.url\n"
    "client = nbfetch.AsyncClient(max_clients=4, max_connections_per_host=2)\n"
    "warm = [await client.fetch(base + '/get') for _ in range(3)]",
    "client.inspect()",
    "tasks = [asyncio.ensure_future(client.fetch(f'{base}/delay/3?n={i}')) for i in range(8)]",
    "await asyncio.gather(*tasks)\nawait client.aclose()",
]


def set_theme(lab, name: str) -> None:
    path = lab.settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    path.write_text(json.dumps({"theme": name}))


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_the_inspector_live_then_static(lab, browser, tmp_path, theme):
    out = shots_dir(tmp_path)
    set_theme(lab, theme)
    name = f"inspect-{theme.split()[-1].lower()}"
    page = open_notebook(browser, lab, f"{name}.ipynb", CELLS)
    try:
        run_cell(page, 0)
        view = run_cell(page, 1)
        view.locator(".widget-html-content", has_text="max_clients 0/4").wait_for(timeout=20_000)
        run_cell(page, 2)
        # Four fetches hold a slot (two on connections, two waiting for the
        # host), four wait in the queue; the ages tick once a second.
        view.locator(".widget-html-content", has_text="waiting for a max_clients slot").wait_for(
            timeout=20_000
        )
        view.locator("td", has_text=re.compile(r"^[1-9]\.\d s$")).first.wait_for(timeout=20_000)
        text = view.inner_text()
        assert "max_clients 4/4" in text and "max_connections_per_host=2" in text
        assert "reused" in text and "went idle" in text
        # Readable in either theme: the text colour contrasts with the cell's.
        colour = view.locator(".widget-html-content").first.evaluate(
            "e => getComputedStyle(e.querySelector('div')).color"
        )
        levels = [int(v) for v in re.findall(r"\d+", colour)[:3]]
        assert (sum(levels) > 400) == (theme == "JupyterLab Dark"), colour
        view.screenshot(path=str(out / f"{name}.png"))
        run_cell(page, 3, timeout=60_000)
        view.locator(".nbfetch-inspect").wait_for(timeout=20_000)  # the static snapshot
        assert "client closed" in view.inner_text()
        assert view.locator(".jupyter-widgets").count() == 0
    finally:
        page.close()
        set_theme(lab, "JupyterLab Light")
