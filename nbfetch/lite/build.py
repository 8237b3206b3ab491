"""``build``: a JupyterLite site with nbfetch, from the ``prepare`` cache only.

The recipe (jupyterlite-core and jupyterlite-pyodide-kernel 0.8.6, Pyodide 314.0.6):

- Pyodide's core files go to ``<litedir>/static/pyodide/``: the build copies
  them and points ``pyodideUrl`` there itself, so nothing loads from a CDN.
- The lock's wheels the kernel loads go beside them, and the lock is rewritten
  to list only those, with the sha256 of the wheels shipped (PyPI's builds are
  not Pyodide's: its hashes would refuse them). That sha256 is the one PyPI
  publishes, recorded by ``prepare``; every file of the cache is checked
  against its record first (``deps.verify``), so a damaged or altered wheel
  stops the build instead of being shipped with a hash that vouches for it.
- nbfetch's wheel and its requirements (h11, idna, ipywidgets, comm...) go to
  ``<litedir>/pypi/``, which piplite indexes: ``%pip install nbfetch`` in a
  notebook installs from there, and ``disablePyPIFallback`` keeps piplite from
  ever asking PyPI.
- The tutorials that make sense in a browser, with their first cell (which
  starts the embedded demo server: no threads, no sockets in a browser) replaced
  by one that installs nbfetch and points at the site's own origin (the demo endpoints).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from . import deps

#: The files of the npm package the site needs (no types, maps or consoles).
PYODIDE_CORE = [
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
]
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
#: The tutorials shipped, besides notebooks/lite/*.ipynb (written for the site).
#: Run cell by cell in the site (Chromium), 03-streaming fails in its trailers
#: cell (a browser hides trailers from scripts) and 05-panel in its lookup of
#: the X-Tutorial header the demo echoes (Chromium sends the names of the
#: headers a script sets in lower case): not shipped until they are adapted.
TUTORIALS = ["01-quickstart.ipynb"]
#: Their last cell stops the demo server the first one started; the site's
#: server is not the notebook's to stop, so the cell is left out.
SERVER_STOP = "server.stop()"
#: Their first code cell, replaced (see LITE_SETUP).
SERVER_SETUP = """\
import nbfetch
from nbfetch import demo

server = demo.serve()  # the embedded demo server: everything stays offline
base = server.url
base"""
LITE_SETUP = """\
%pip install nbfetch
import js
import nbfetch

# JupyterLite: the site's server (python -m nbfetch.lite serve) answers the demo
# endpoints too, on the same origin as this notebook
base = js.location.origin
base"""


def pyodide_dir(cache: Path, lock: dict, dest: Path, record: dict[str, str]) -> None:
    """``static/pyodide``: the core files, the kernel's lock wheels, the lock."""
    dest.mkdir(parents=True)
    with tarfile.open(deps.pyodide_tgz(cache)) as tar:
        for name in PYODIDE_CORE:
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise SystemExit(f"the pyodide npm package has no {name}")
            (dest / name).write_bytes(member.read())
    closure = deps.lock_closure(lock)
    packages = {}
    for key, entry in lock["packages"].items():  # Pyodide looks its keys up as they are
        if deps.canonical(key) not in closure:
            continue
        wheel = deps.find_wheel(cache, deps._req(f"{key}=={entry['version']}"), record)
        if wheel is None:
            raise SystemExit(f"{key} {entry['version']} is not in {cache}: run `prepare`")
        shutil.copy2(wheel, dest / wheel.name)
        algorithm, _, sha256 = record[f"wheels/{wheel.name}"].partition(":")
        assert algorithm == "sha256", record[f"wheels/{wheel.name}"]
        packages[key] = {**entry, "file_name": wheel.name, "sha256": sha256}
    (dest / "pyodide-lock.json").write_text(json.dumps({**lock, "packages": packages}))


def notebooks(dest: Path, extra: list[Path]) -> None:
    root = deps.source_root() / "notebooks"
    dest.mkdir(parents=True)
    for path in extra:
        if path.is_dir():
            shutil.copytree(path, dest / path.name)
        else:
            shutil.copy2(path, dest / path.name)
    for path in sorted((root / "lite").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        _strip(nb)
        (dest / path.name).write_text(json.dumps(nb, indent=1))
    for name in TUTORIALS:
        nb = json.loads((root / name).read_text())
        setup = [
            c
            for c in nb["cells"]
            if c["cell_type"] == "code" and "".join(c["source"]) == SERVER_SETUP
        ]
        if len(setup) != 1:
            raise SystemExit(f"{name}: its demo server cell changed; update nbfetch/lite/build.py")
        setup[0]["source"] = LITE_SETUP
        nb["cells"] = [c for c in nb["cells"] if "".join(c["source"]) != SERVER_STOP]
        _strip(nb)
        (dest / name).write_text(json.dumps(nb, indent=1))


def _strip(nb: dict) -> None:
    """Outputs saved in CPython (URLs of 127.0.0.1 ports long gone) would mislead."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None


def build(output: Path, cache: Path, contents: list[Path] = ()) -> Path:
    """Build the site into ``output`` (replaced) from ``cache`` only;
    ``contents``: more files or folders for the site's file browser."""
    cache, output = cache.resolve(), output.resolve()
    # before anything reads a file of the cache: a damaged one stops here
    record = deps.verify(cache)
    if not deps.tools_python(cache).exists() or deps.pyodide_tgz(cache).name not in record:
        raise SystemExit(f"{cache} is not a prepared cache: {deps.rerun(cache)}")
    lock = deps.read_lock(deps.pyodide_tgz(cache))
    with tempfile.TemporaryDirectory(prefix="nbfetch-lite-") as tmp:
        lite = Path(tmp) / "lite"
        pypi = lite / "pypi"
        nbfetch_wheel = deps.build_nbfetch_wheel(cache, pypi)
        for wheel in deps.resolve(cache, nbfetch_wheel, lock, record):
            shutil.copy2(wheel, pypi / wheel.name)
        pyodide_dir(cache, lock, lite / "static" / "pyodide", record)
        notebooks(lite / "files", list(contents))
        config = {
            "jupyter-lite-schema-version": 0,
            "jupyter-config-data": {
                "appName": "nbfetch in JupyterLite",
                "litePluginSettings": {KERNEL_PLUGIN: {"disablePyPIFallback": True}},
            },
        }
        (lite / "jupyter-lite.json").write_text(json.dumps(config, indent=2))
        if output.exists():
            shutil.rmtree(output)
        tools = deps.tools_python(cache).parent
        deps.run(
            [
                str(tools / "jupyter-lite"),
                "build",
                *("--lite-dir", str(lite), "--output-dir", str(output)),
                *("--contents", str(lite / "files"), "--no-sourcemaps"),
            ],
            cwd=lite,
            # offline: the build must not reach anything (no URL of Pyodide to
            # download: the well-known static/pyodide is used)
            env={**_clean_env(), "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
    return output


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON"))}
    # any download attempt goes to a closed port and fails, not to the internet
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = "http://127.0.0.1:9"
    env["NO_PROXY"] = env["no_proxy"] = ""
    return env


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
