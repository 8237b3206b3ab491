"""Run every tutorial top to bottom in a real kernel (nbclient).

    python notebooks/execute.py            # run all, save outputs and widget state
    python notebooks/execute.py --check    # run all, save nothing (what CI does)

Each notebook starts the embedded demo server itself and needs no internet.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 60


def notebooks() -> list[Path]:
    return sorted(HERE.glob("[0-9][0-9]-*.ipynb"))


def execute(path: Path) -> nbformat.NotebookNode:
    """Execute ``path`` in a fresh kernel; raises CellExecutionError on any error."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as cwd:
        NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": cwd}},
            store_widget_state=True,
        ).execute()
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="do not save the outputs")
    args = ap.parse_args()
    for path in notebooks():
        nb = execute(path)
        if not args.check:
            nbformat.write(nb, path)
        print(f"ok  {path.name}  ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
