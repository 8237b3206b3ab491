"""Where the notebook layer runs: is this a Jupyter kernel?"""

from __future__ import annotations

import sys


def in_kernel() -> bool:
    """True inside a running IPython kernel (not a terminal IPython, not a script).
    Never imports IPython: a script that did not load it is not in a kernel."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")
