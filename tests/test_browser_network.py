"""The network log in JupyterLab (Chromium): ``nbfetch.network()`` shows the
fetches of earlier cells newest first, follows a later cell's fetch live, and
on the page the status filter and picking a row work; Stop leaves the static
form. In the Light and Dark themes. ``NBFETCH_SCREENSHOTS=docs`` writes
docs/network-log.png and docs/network-log-dark.png."""

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
    "import nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url\n"
    "api, other = nbfetch.AsyncClient(), nbfetch.AsyncClient()\n"
    "for path in ('/json', '/redirect/2', '/bytes/65536', '/delay/0.3'):\n"
    "    await api.fetch(base + path)\n"
    "await other.fetch(base + '/status/404')\n"
    "await other.fetch(base + '/post', 'POST', json={'n': 1})\n"
    "try:\n"
    "    await other.fetch('http://127.0.0.1:9/refused')\n"
    "except nbfetch.FetchError as e:\n"
    "    print(type(e).__name__)",
    "nbfetch.network()",
    "r = await api.fetch(base + '/headers?cell=3')",
]


def set_theme(lab, name: str) -> None:
    path = lab.settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"theme": name}))


def rows(view) -> list[str]:
    """The Name column of the rows drawn, top to bottom (the header row is the
    first table of the panel)."""
    names = view.locator(".nbfetch-network table").evaluate_all(
        "ts => ts.slice(1).map(t => t.querySelectorAll('td')[2].textContent)"
    )
    return [n.strip() for n in names]


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_the_network_log_live_filtered_and_picked(lab, browser, tmp_path, theme):
    out = shots_dir(tmp_path)
    set_theme(lab, theme)
    dark = theme == "JupyterLab Dark"
    name = "network-log-dark" if dark else "network-log"
    page = open_notebook(browser, lab, f"{name}.ipynb", CELLS)
    try:
        first = run_cell(page, 0)
        assert "ConnectError" in first.locator(".jp-OutputArea").inner_text()
        view = run_cell(page, 1)
        panel = view.locator(".nbfetch-network")
        panel.wait_for(timeout=20_000)
        assert rows(view) == [
            "/refused",
            "/post",
            "/status/404",
            "/delay/0.3",
            "/bytes/65536",
            "/redirect/2",
            "/json",
        ]
        text = view.inner_text()
        assert "Network: 7 fetches in the log" in text
        assert "404" in text and "ConnectError" in text and "↪2" in text
        # A fetch of a later cell appears at the top of the panel shown above.
        run_cell(page, 2)
        view.locator(".nbfetch-network td", has_text="/headers?cell=3").wait_for(timeout=20_000)
        assert rows(view)[0] == "/headers?cell=3"
        # The status filter, typed on the page.
        view.locator("input[placeholder^='status']").fill("4xx")
        view.locator(".widget-html-content", has_text="1 shown of 1 matching").wait_for(
            timeout=20_000
        )
        assert rows(view) == ["/status/404"]
        view.locator("input[placeholder^='status']").fill("")
        view.locator(".widget-html-content", has_text="8 shown").wait_for(timeout=20_000)
        # Picking a row: its headers, body preview and events below the table.
        pick = view.locator("select").last
        (label,) = [o for o in pick.locator("option").all_inner_texts() if o.endswith("/json")]
        pick.select_option(label=label)
        detail = view.locator(".nbfetch-network-detail")
        detail.wait_for(timeout=20_000)
        shown = detail.inner_text()
        assert re.search(r"200 OK\s+GET http://127\.0\.0\.1:\d+/json", shown), shown
        assert "Request headers" in shown and "Response headers" in shown
        assert "Wake up to WonderWidgets!" in shown  # the body preview
        assert "response.headers" in shown and "connect.done" in shown  # the events
        # Readable in either theme: the text colour contrasts with the cell's.
        colour = panel.evaluate("e => getComputedStyle(e).color")
        levels = [int(v) for v in re.findall(r"\d+", colour)[:3]]
        assert (sum(levels) > 400) == dark, colour
        # The panel with the picked row is taller than the window: a taller
        # window, and the image cut below the response headers (the table and
        # the top of the detail are what the README shows).
        page.set_viewport_size({"width": 1400, "height": 2400})
        view.evaluate("e => e.scrollIntoView()")
        box = view.bounding_box()
        page.screenshot(
            path=str(out / f"{name}.png"),
            clip={**box, "height": min(box["height"], 900)},
        )
        # Stop: the output becomes the static form of the panel, no widget left.
        view.locator("button:has-text('Stop')").click()
        view.locator(".nbfetch-network-view").wait_for(timeout=20_000)
        assert view.locator(".jupyter-widgets").count() == 0
        assert "/headers?cell=3" in view.inner_text()
    finally:
        page.close()
        set_theme(lab, "JupyterLab Light")
