"""Colours for the notebook views, from JupyterLab's theme variables.

Every colour is a CSS ``var()`` with a fallback, so a view follows JupyterLab's
Light, Dark and High Contrast themes, and still reads in classic Notebook, VS
Code or an nbconvert page where the variables are not defined (the fallbacks
are JupyterLab Light's values). Names follow JupyterLab's own
(``packages/theme-light-extension/style/variables.css``).
"""

from __future__ import annotations

#: Text: primary, secondary (labels, units), tertiary (hints).
FG = "var(--jp-ui-font-color1, rgba(0, 0, 0, 0.87))"
FG_DIM = "var(--jp-ui-font-color2, rgba(0, 0, 0, 0.54))"
FG_FAINT = "var(--jp-ui-font-color3, rgba(0, 0, 0, 0.38))"
#: Backgrounds: the cell's own, a raised surface (a bar's track, a header row).
BG = "var(--jp-layout-color0, #ffffff)"
BG_RAISED = "var(--jp-layout-color2, #eeeeee)"
BORDER = "var(--jp-border-color2, #e0e0e0)"
#: States.
OK = "var(--jp-success-color1, #388e3c)"
INFO = "var(--jp-brand-color1, #1976d2)"
WARN = "var(--jp-warn-color1, #f57c00)"
ERROR = "var(--jp-error-color1, #d32f2f)"
MONO = "var(--jp-code-font-family, monospace)"
UI_FONT = "var(--jp-ui-font-family, sans-serif)"

#: One colour per timing phase: mid-tone hues that read on light and dark
#: backgrounds alike (the theme has no variables for them).
PHASE_COLOURS = {
    "redirect": "#9e9e9e",
    "queue": "#a0a0a0",
    "dns": "#2a9d8f",
    "connect": "#e9a03b",
    "tunnel": "#c8553d",  # the CONNECT through a proxy
    "tls": "#9b5de5",
    "send": "#4d908e",
    "wait": "#43aa8b",
    "download": "#3a8fc2",
}


def status_colour(code: int) -> str:
    """The colour of an HTTP status: 2xx ok, 3xx info, 4xx warn, 5xx error."""
    if code < 300:
        return OK
    if code < 400:
        return INFO
    if code < 500:
        return WARN
    return ERROR
