"""fetch_many's waterfall and FetchPanel in a real browser (JupyterLab,
Debian's Chromium, Playwright): 30 URLs that differ only at the end get 30
distinct labels, a time axis and Status/Time/Size columns, a row opens to its
details, the saved notebook shows the final waterfall without a kernel (Dark
theme too); in a FetchPanel, Enter in the URL box sends and Copy puts the curl
command on the clipboard."""

from __future__ import annotations

import json

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    cell,
    lab_fixture,
    open_notebook,
    run_cell,
    shots_dir,
)

from nbfetch.text.curl import parse_curl

pytestmark = pytest.mark.timeout(180)


def test_fetch_many_waterfall_rows_axis_and_saved_output(lab, browser, demo, tmp_path):
    out = shots_dir(tmp_path)
    urls = f"[{demo.url!r} + f'/drip?numbytes=20&duration=0.2&i={{i}}' for i in range(30)]"
    page = open_notebook(
        browser,
        lab,
        "many.ipynb",
        ["import nbfetch", f"rs = await nbfetch.fetch_many({urls}, max_clients=6)"],
    )
    run_cell(page, 0)
    many = run_cell(page, 1, timeout=60_000)
    output = many.locator(".jp-OutputArea")
    output.locator(".nbfetch-many").wait_for(timeout=10_000)  # the final static bundle
    text = output.inner_text()
    assert "30 fetches" in text and "30 done" in text and "max_clients=6" in text
    for column in ("Name", "Status", "Time", "Size"):
        assert column in text
    names = output.locator(".nbfetch-many-row > summary td:first-child").all_inner_texts()
    assert len(names) == 30 and len(set(names)) == 30, names
    assert names[0].endswith("i=0") and names[29].endswith("i=29")
    axis = output.locator(".nbfetch-waterfall > table").first.inner_text()
    assert "ms" in axis  # the time axis' ticks
    sizes = output.locator(".nbfetch-many-row > summary td:nth-child(4)").all_inner_texts()
    assert set(sizes) == {"20 B"}
    # the chart follows the cell's width, not a fixed 420 px
    width = output.locator(".nbfetch-waterfall").evaluate("e => e.getBoundingClientRect().width")
    area = output.evaluate("e => e.getBoundingClientRect().width")
    assert width > 0.7 * area
    row = output.locator(".nbfetch-many-row").nth(3)
    row.locator("summary").click()
    details = row.inner_text()
    assert "200 OK" in details and "Request headers" in details and "User-Agent" in details
    # names are left-aligned (JupyterLab right-aligns table cells by default)
    align = output.locator(".nbfetch-many-row > summary td").first.evaluate(
        "e => getComputedStyle(e).textAlign"
    )
    assert align == "left"
    page.set_viewport_size({"width": 1400, "height": 1600})  # the whole output, no void
    output.screenshot(path=str(out / "fetch-many-waterfall.png"))

    # saved and reopened in JupyterLab Dark, with no kernel: the final waterfall, dark
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=10_000)
    page.close()
    saved = json.loads((lab.root / "many.ipynb").read_text())
    bundle = saved["cells"][1]["outputs"][0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in bundle
    assert "30 fetches" in "".join(bundle["text/plain"])
    themes = lab.settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    themes.write_text(json.dumps({"theme": "JupyterLab Dark"}))
    try:
        dark = open_notebook(browser, lab, "many.ipynb", kernel=False)
        reopened = cell(dark, 1).locator(".jp-OutputArea")
        reopened.locator(".nbfetch-many-row").first.wait_for(timeout=20_000)
        assert reopened.locator(".nbfetch-many-row").count() == 30
        track = reopened.locator(".nbfetch-many-row > summary td:nth-child(5)").first
        rgb = track.evaluate("e => getComputedStyle(e).backgroundColor")
        r, g, b = (int(x) for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
        assert r + g + b < 3 * 128, rgb  # a dark track, not a white slab
        dark.set_viewport_size({"width": 1400, "height": 1600})
        reopened.screenshot(path=str(out / "fetch-many-waterfall-dark.png"))
        dark.close()
    finally:
        themes.unlink()


def test_fetch_panel_enter_sends_and_copy_fills_the_clipboard(lab, browser, demo):
    browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    page = open_notebook(
        browser, lab, "panel.ipynb", ["import nbfetch\npanel = nbfetch.FetchPanel()\npanel"]
    )
    panel = run_cell(page, 0)
    box = panel.locator(".widget-text input").first
    box.fill(demo.url + "/get?from=enter")
    box.press("Enter")
    panel.locator("text=200 OK").first.wait_for(timeout=20_000)
    assert demo.stats["requests"] == 1
    panel.locator("summary", has_text="Request headers as sent").click()
    panel.locator("td", has_text="User-Agent").first.wait_for(timeout=5_000)
    panel.locator(".lm-TabBar-tab:has-text('Copy as')").first.click()
    button = panel.locator("button.nbfetch-copy", has_text="Copy curl")
    button.click()
    panel.locator("button.nbfetch-copy", has_text="Copied").wait_for(timeout=5_000)
    clip = page.evaluate("() => navigator.clipboard.readText()")
    copied = parse_curl(clip)  # what the clipboard holds runs as the panel's request
    assert (copied.method, copied.url) == ("GET", f"{demo.url}/get?from=enter"), clip
    page.close()
