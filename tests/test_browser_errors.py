"""Errors as a user sees them in JupyterLab (Chromium, Playwright): a typo URL
ends in an error state in a few lines, Kernel → Interrupt during a slow fetch
ends in one line and the kernel goes on."""

from __future__ import annotations

import pytest
from browser import (  # noqa: F401 (fixtures)
    browser_fixture,
    cell,
    lab_fixture,
    open_notebook,
    run_cell,
    shots_dir,
    wait_done,
)

pytestmark = pytest.mark.timeout(180)

CELLS = [
    "import nbfetch\nfrom nbfetch import demo\nserver = demo.serve()\nbase = server.url",
    "%load_ext nbfetch",
    "%fetch htp://x",
    "r = %fetch {base}/drip?numbytes=60&duration=60&chunks=60",
    "'after interrupt'",
]
ERROR_TEXT = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# Lines as the user sees them: the distinct rows (tops, 4 px apart) of the text on
# screen. innerText would count a tab bar of five titles side by side as 5 lines.
VISUAL_ROWS = """(area) => {
    // Chromium lays out a closed <details>' content (content-visibility:
    // hidden) and a range still reports its rects: not rows anyone sees.
    const inClosedDetails = (node) => {
        for (let el = node.parentElement; el && el !== area; el = el.parentElement) {
            if (el.tagName === "DETAILS" && !el.open) {
                const summary = el.querySelector(":scope > summary");
                if (!(summary && summary.contains(node))) return true;
            }
        }
        return false;
    };
    const tops = [];
    const walk = document.createTreeWalker(area, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
        if (!walk.currentNode.textContent.trim() || inClosedDetails(walk.currentNode)) continue;
        const range = document.createRange();
        range.selectNodeContents(walk.currentNode);
        for (const r of range.getClientRects()) {
            if (r.width > 0 && r.height > 0 && !tops.some(t => Math.abs(t - r.top) < 4)) {
                tops.push(r.top);
            }
        }
    }
    return tops.length;
}"""


def test_typo_url_and_interrupt_in_a_real_browser(lab, browser, tmp_path):
    page = open_notebook(browser, lab, "errors.ipynb", CELLS)
    out = shots_dir(tmp_path)
    run_cell(page, 0)
    run_cell(page, 1)

    typo = run_cell(page, 2)
    typo.locator(ERROR_TEXT).wait_for(timeout=20_000)
    # the view reached its error state: the error shown, nothing still running
    typo.locator("text=unsupported URL scheme").first.wait_for(timeout=10_000)
    output = typo.locator(".jp-OutputArea").inner_text()
    assert "starting…" not in output, output
    rows = typo.locator(".jp-OutputArea").evaluate(VISUAL_ROWS)
    assert rows <= 10, (rows, output)
    assert len(lines(typo.locator(ERROR_TEXT).inner_text())) == 1
    assert typo.locator("button:has-text('Cancel'):enabled").count() == 0
    typo.screenshot(path=str(out / "error-typo-url.png"))

    slow = run_cell(page, 3, wait=False)
    slow.locator("text=200 OK").wait_for(timeout=20_000)
    page.keyboard.press("Escape")  # command mode: "i, i" interrupts the kernel
    page.keyboard.press("i")
    page.keyboard.press("i")
    wait_done(page, 3, timeout=30_000)
    error = lines(slow.locator(ERROR_TEXT).inner_text())
    assert len(error) == 1 and error[0].startswith("FetchCancelled: interrupted"), error
    slow.screenshot(path=str(out / "error-interrupted.png"))
    run_cell(page, 4)  # the kernel goes on
    assert "after interrupt" in cell(page, 4).locator(".jp-OutputArea").inner_text()
