"""The package as a user meets it: import cost, the README's main job, lint."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_does_not_load_the_notebook_stack():
    code = (
        "import sys, nbfetch; "
        "heavy = [m for m in ('ipykernel', 'ipywidgets', 'IPython', 'nest_asyncio2', 'zmq') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_readme_main_job_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "nbfetch.demo", "--tour"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "response.chunk" in out.stdout and "index=1, size=2000" in out.stdout
    assert "resolve.start" in out.stdout and "mapped_to" in out.stdout
    assert "reused the connection: True" in out.stdout


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    for command in (
        "python3 -m pip install -e . && python3 -m nbfetch.demo --tour",
        "python3 -m pip install -e '.[test]' && python3 -m pip install -e '.[browser]' && python3 -m pytest",
    ):
        assert command in readme and command in ci


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args):
    out = subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
