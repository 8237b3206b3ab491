"""Run every tutorial top to bottom in a real kernel (nbclient).

    python notebooks/execute.py            # run all, save outputs and widget state
    python notebooks/execute.py --check    # run all, save nothing (what CI does)

Each notebook starts the embedded demo server itself and needs no internet.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 60
#: Folders of files the tutorials read ("api/api.http"), copied beside them.
RESOURCES = ("api",)


def notebooks() -> list[Path]:
    return sorted(HERE.glob("[0-9][0-9]-*.ipynb"))


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_unused_widget_state(nb: nbformat.NotebookNode) -> None:
    """Keep the saved state of the widgets an output still shows (and the models
    they refer to). nbclient also saves closed models: a finished live view
    becomes a static snapshot and closes its widgets, so their state is dead
    weight in the file."""
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    if not saved:
        return
    state = saved["state"]
    wanted = [
        output["data"][WIDGET_VIEW]["model_id"]
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]
    keep: set[str] = set()
    while wanted:
        model_id = wanted.pop()
        if model_id in keep or model_id not in state:
            continue
        keep.add(model_id)
        # a model refers to others as "IPY_MODEL_<id>" (children, layout, style)
        wanted += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[model_id]))
    saved["state"] = {k: v for k, v in state.items() if k in keep}
    if not keep:
        del nb.metadata["widgets"]


def execute(path: Path) -> nbformat.NotebookNode:
    """Execute ``path`` in a fresh kernel; raises CellExecutionError on any error."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as cwd:
        # The kernel starts in a scratch folder (what a tutorial writes stays out
        # of the checkout) that holds what it reads, as notebooks/ does.
        for name in RESOURCES:
            shutil.copytree(HERE / name, Path(cwd) / name)
        NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": cwd}},
            store_widget_state=True,
        ).execute()
    drop_unused_widget_state(nb)
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
