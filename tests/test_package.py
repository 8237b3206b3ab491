"""The package as a user meets it: import cost, the README's main job, lint."""

import os
import shutil
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


MAIN_JOB = ["python3 -m pip install -e .", "python3 -m nbfetch.demo --tour"]
TESTS = [
    "python3 -m pip install -e .[test]",
    "python3 -m pip install -e .[browser]",
    "python3 -m pytest",
]
APT = ["apt-get update -qq", "apt-get install -y -qq chromium"]
APT_SQUID = ["apt-get update -qq", "apt-get install -y -qq squid openssl"]
APT_NODE = ["apt-get update -qq", "apt-get install -y -qq nodejs npm"]
MITMPROXY = [
    "python3 -m venv .ci/mitmproxy-venv",
    "mitmproxy-venv/python -m pip install -q mitmproxy>=11",
    "mitmproxy-venv/mitmdump --version",
]
LITE = [
    "python3 -m pip install -q -e .[lite]",
    "python3 -m nbfetch.lite prepare --cache .ci/lite-cache",
]


def run_ci(
    tmp_path,
    fail="",
    status=1,
    chromium=True,
    apt_installs=True,
    squid=None,
    node=None,
    lite_cache=False,
):
    """.ci/run with each command it calls replaced by a stub that logs its command
    line and exits with ``status`` when that line is ``fail``. ``chromium``: it
    is on PATH from the start, ``squid`` (default: as ``chromium``) squid and
    openssl too, ``node`` (default: as ``chromium``) node and npm;
    ``apt_installs``: apt-get install puts the packages it names there (nodejs
    as ``node``); ``lite_cache``: .ci/lite-cache is prepared already."""
    (tmp_path / ".ci").mkdir(parents=True)
    (tmp_path / ".ci" / "run").write_text((ROOT / ".ci" / "run").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    chmod = shutil.which("chmod")
    install = (
        'for p in "$@"; do case "$p" in -*|install) ;; nodejs) p=node;; esac; case "$p" in'
        " -*|install) ;;"
        f" *) printf '#!/bin/sh\\n' > {bin_dir}/$p; {chmod} +x {bin_dir}/$p;; esac; done"
    )

    def stub(path, name, extra=()):
        lines = [
            "#!/bin/sh",
            f'echo "{name} $*" >> "$CI_LOG"',
            f'if [ "{name} $*" = "$CI_FAIL" ]; then exit "$CI_STATUS"; fi',
            *extra,
        ]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o755)

    # `python3 -m venv .ci/mitmproxy-venv` makes its python and mitmdump: stubs too.
    template = tmp_path / "venv-template"
    template.mkdir()
    for tool in ("python", "mitmdump"):
        stub(template / tool, f"mitmproxy-venv/{tool}")
    venv_bin = tmp_path / ".ci" / "mitmproxy-venv" / "bin"
    make_venv = (
        f'case "$*" in "-m venv "*) {shutil.which("mkdir")} -p {venv_bin};'
        f" {shutil.which('cp')} {template}/* {venv_bin};; esac"
    )
    squid = chromium if squid is None else squid
    node = chromium if node is None else node
    present = (
        (["chromium"] if chromium else [])
        + (["squid", "openssl"] if squid else [])
        + (["node", "npm"] if node else [])
    )
    if lite_cache:
        (tmp_path / ".ci" / "lite-cache").mkdir()
        (tmp_path / ".ci" / "lite-cache" / "prepared").touch()
        (tmp_path / ".ci" / "lite-cache" / "hashes.json").write_text("{}")
    for name in ["python3", "apt-get", *present]:
        extra = [make_venv] if name == "python3" else []
        if name == "apt-get" and apt_installs:
            extra.append(f'case "$*" in *install*) {install};; esac')
        stub(bin_dir / name, name, extra)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    log = tmp_path / "log"
    log.touch()
    env = {"PATH": str(bin_dir), "CI_LOG": str(log), "CI_FAIL": fail, "CI_STATUS": str(status)}
    out = subprocess.run(
        ["/bin/bash", str(tmp_path / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out, log.read_text().splitlines()


def test_ci_runs_every_step_in_order(tmp_path):
    out, ran = run_ci(tmp_path, chromium=False)
    assert out.returncode == 0, out.stderr
    assert ran == [*APT, *APT_SQUID, *APT_NODE, *MITMPROXY, *MAIN_JOB, *LITE, *TESTS]
    out, ran = run_ci(tmp_path / "again")  # chromium, squid, node already there: no apt
    assert out.returncode == 0 and ran == [*MITMPROXY, *MAIN_JOB, *LITE, *TESTS], out.stderr
    out, ran = run_ci(tmp_path / "prepared", lite_cache=True)  # a prepared cache is kept
    assert out.returncode == 0 and ran == [*MITMPROXY, *MAIN_JOB, *TESTS], out.stderr


@pytest.mark.parametrize(
    "fail,status,chromium",
    [
        *[(step, 100, False) for step in APT],
        ("apt-get install -y -qq squid openssl", 100, False),
        ("apt-get install -y -qq nodejs npm", 100, False),
        *[(step, 1, True) for step in MITMPROXY + MAIN_JOB + LITE + TESTS],
        ("python3 -m pytest", 5, True),  # no tests collected
    ],
)
def test_ci_stops_at_the_first_failing_step(tmp_path, fail, status, chromium):
    out, ran = run_ci(tmp_path, fail, status, chromium)
    assert out.returncode == status and "FAILED" in out.stderr, out.stderr
    assert ran[-1] == fail  # nothing after it ran


def test_ci_fails_when_apt_leaves_no_squid(tmp_path):
    out, ran = run_ci(tmp_path, chromium=True, apt_installs=False, squid=False)
    assert out.returncode != 0 and "command -v squid" in out.stderr, out.stderr
    assert ran == APT_SQUID


def test_ci_fails_when_apt_leaves_no_node(tmp_path):
    out, ran = run_ci(tmp_path, chromium=True, apt_installs=False, node=False)
    assert out.returncode != 0 and "command -v node" in out.stderr, out.stderr
    assert ran == APT_NODE


def test_ci_fails_when_apt_leaves_no_chromium(tmp_path):
    out, ran = run_ci(tmp_path, chromium=False, apt_installs=False)
    assert out.returncode != 0 and "command -v chromium" in out.stderr, out.stderr
    assert ran == APT


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


def test_import_contracts_are_kept():
    """The layers of DESIGN.md (pyproject.toml's [tool.importlinter]): no upward
    import, none of asyncio, trio, socket, ssl or time in the core, no cycle.
    Run as ``lint-imports`` is, on this checkout (the current directory first)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command;"
            " sys.exit(lint_imports_command())",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
