"""What a JupyterLite site of nbfetch is made of, and ``prepare``: fetching it once.

Everything the site needs comes from PyPI and npm into one cache directory
(``prepare``, online, idempotent); ``build`` then reads only that directory.

The cache holds:

- ``tools/``: a venv with the build tools (``jupyterlite-core``,
  ``jupyterlite-pyodide-kernel``, ``jupyter_server``, ``jupyterlab_widgets`` for
  the widgets front end, ``hatchling`` for nbfetch's own wheel). A venv of its
  own: they must not change the test environment's packages.
- ``pyodide-<version>.tgz``: the npm package, which has Pyodide's core files and
  its lock but none of the lock's wheels.
- ``wheels/``: pure-Python wheels for Python 3.14 (what Pyodide 314 runs): the
  lock's packages the kernel loads (micropip, ipython and its dependencies, jedi)
  and nbfetch's own requirements as they apply under Pyodide.
"""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

#: jupyterlite-pyodide-kernel 0.8.7 needs a jupyterlite-core not yet published;
#: 0.8.6 pins Pyodide 314.0.6 (Python 3.14).
JUPYTERLITE_VERSION = "0.8.6"
PYODIDE_VERSION = "314.0.6"
PYODIDE_PYTHON = "3.14"
TOOLS = [
    f"jupyterlite-core=={JUPYTERLITE_VERSION}",
    f"jupyterlite-pyodide-kernel=={JUPYTERLITE_VERSION}",
    "jupyter_server>=2",
    # the widgets front end (@jupyter-widgets/jupyterlab-manager): the build
    # copies the federated extensions of the environment it runs in
    "jupyterlab_widgets>=3.0.15,<3.1",
    "hatchling>=1.21",
]
#: What the kernel loads from Pyodide's lock before the first cell
#: (micropip, then piplite installs ipython and jedi), with their dependencies.
KERNEL_LOCK_PACKAGES = ["micropip", "ipython", "jedi"]
#: Environment markers as Pyodide 314 evaluates them (PEP 508).
PYODIDE_MARKERS = {
    "python_version": PYODIDE_PYTHON,
    "python_full_version": PYODIDE_PYTHON + ".2",
    "sys_platform": "emscripten",
    "platform_system": "Emscripten",
    "platform_machine": "wasm32",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def default_cache() -> Path:
    """``NBFETCH_LITE_CACHE``, else ``nbfetch-lite`` in the user's cache directory."""
    given = os.environ.get("NBFETCH_LITE_CACHE")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nbfetch-lite"


#: Written by ``prepare`` once everything is in the cache: an interrupted
#: ``prepare`` leaves none, so a script (CI) can tell a complete cache.
PREPARED = "prepared"


def is_prepared(cache: Path) -> bool:
    return (cache / PREPARED).is_file()


def tools_python(cache: Path) -> Path:
    return cache / "tools" / "bin" / "python"


def kernel_shims(cache: Path) -> list[Path]:
    """The wheels jupyterlite-pyodide-kernel ships itself: piplite, the kernel,
    an ipykernel stub, widgetsnbextension stubs."""
    pypi = "share/jupyter/labextensions/@jupyterlite/pyodide-kernel-extension/static/pypi"
    shims = sorted((cache / "tools" / pypi).glob("*.whl"))
    if not any(wheel_name(p) == "pyodide-kernel" for p in shims):
        raise SystemExit(f"no jupyterlite-pyodide-kernel in {cache / 'tools'}: run `prepare`")
    return shims


def pyodide_tgz(cache: Path) -> Path:
    return cache / f"pyodide-{PYODIDE_VERSION}.tgz"


def source_root() -> Path:
    """The checkout nbfetch is imported from (its wheel is built from there)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise SystemExit(f"nbfetch is not imported from a source checkout ({root}): cannot build")
    return root


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def read_lock(tgz: Path) -> dict:
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/pyodide-lock.json")
        if member is None:
            raise SystemExit(f"{tgz}: no package/pyodide-lock.json")
        return json.load(member)


def lock_closure(lock: dict, roots=KERNEL_LOCK_PACKAGES) -> dict[str, dict]:
    """The lock's entries for ``roots`` and everything they depend on."""
    packages = {canonical(n): p for n, p in lock["packages"].items()}
    seen: dict[str, dict] = {}
    todo = [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen[name] = packages[name]
            todo.extend(canonical(d) for d in packages[name]["depends"])
    return seen


def wheel_metadata(path: Path):
    with zipfile.ZipFile(path) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.BytesParser().parsebytes(whl.read(name), headersonly=True)


def pyodide_requirements(path: Path) -> list:
    """The wheel's requirements that apply under Pyodide (markers evaluated
    for emscripten: ``ipykernel; sys_platform != 'emscripten'`` drops out)."""
    from packaging.requirements import Requirement

    out = []
    for line in wheel_metadata(path).get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(PYODIDE_MARKERS):
            out.append(req)
    return out


def wheel_name(path: Path) -> str:
    return canonical(path.name.split("-")[0])


def build_nbfetch_wheel(cache: Path, dest: Path) -> Path:
    """nbfetch's own wheel from the source checkout, offline (hatchling from
    the tools venv, no build isolation)."""
    dest.mkdir(parents=True, exist_ok=True)
    run(
        [
            str(tools_python(cache)),
            *("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"),
            *("-w", str(dest), str(source_root())),
        ]
    )
    (wheel,) = dest.glob("nbfetch-*.whl")
    return wheel


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def pip_download(cache: Path, requirements: list[str]) -> None:
    """Pure-Python wheels for Pyodide's Python, no dependencies (we resolve
    them ourselves: pip would evaluate markers for this machine, not for
    emscripten)."""
    if requirements:
        run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--no-deps"),
                *("--only-binary", ":all:", "--python-version", PYODIDE_PYTHON),
                *("--platform", "any", "--implementation", "py", "--abi", "none"),
                *("-d", str(cache / "wheels"), *requirements),
            ]
        )


def find_wheel(cache: Path, req) -> Path | None:
    for path in sorted((cache / "wheels").glob("*.whl")):
        if wheel_name(path) == canonical(req.name):
            version = path.name.split("-")[1]
            if req.specifier.contains(version, prereleases=True):
                return path
    return None


def resolve(cache: Path, nbfetch_wheel: Path, lock: dict, fetch: bool) -> list[Path]:
    """The wheels for ``pypi/``: what nbfetch, the kernel's shims and the lock's
    wheels require under Pyodide, less what the lock or the shims provide.
    PyPI's wheels are not Pyodide's builds: ipython 9.12 requires
    ipython-pygments-lexers, which Pyodide's lock entry does not list.
    ``fetch``: download what is missing (``prepare``); else a missing one is
    an error (``build``)."""
    shims = kernel_shims(cache)
    provided = {n: [p["version"]] for n, p in lock_closure(lock).items()}
    for path in shims:
        provided.setdefault(wheel_name(path), []).append(path.name.split("-")[1])
    roots = [nbfetch_wheel, *shims]
    for name, entry in lock_closure(lock).items():
        wheel = find_wheel(cache, _req(f"{name}=={entry['version']}"))
        if wheel is None:
            raise SystemExit(f"{name} {entry['version']} is not in {cache}: run `prepare`")
        roots.append(wheel)
    found: dict[str, Path] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(root.name, r) for root in roots for r in pyodide_requirements(root)]
    while todo:
        missing, new = [], []
        for parent, req in todo:
            name = canonical(req.name)
            if (parent, str(req)) in seen:
                continue
            if name in provided:
                # piplite would refuse it in the browser: say so at build time
                if not any(req.specifier.contains(v, prereleases=True) for v in provided[name]):
                    raise SystemExit(
                        f"{parent} requires {req}, but under Pyodide {name} is "
                        f"{', '.join(provided[name])} (the kernel's own): give the "
                        "requirement a sys_platform != 'emscripten' marker"
                    )
            elif name not in found:
                path = find_wheel(cache, req)
                if path is None:
                    missing.append((parent, req))
                    continue
                found[name] = path
                new.extend((path.name, r) for r in pyodide_requirements(path))
            seen.add((parent, str(req)))
        if missing and not fetch:
            needs = ", ".join(f"{r} (by {p})" for p, r in missing)
            raise SystemExit(f"not in the cache {cache}: {needs}; run `prepare` first")
        if missing:
            pip_download(cache, sorted({str(r) for _, r in missing}))
            for parent, req in missing:
                if find_wheel(cache, req) is None:
                    raise SystemExit(f"no pure-Python wheel of {req} (needed by {parent})")
        todo = missing + new
    return sorted(found.values())


def prepare(cache: Path) -> None:
    """Fill ``cache`` from PyPI and npm (the only online step)."""
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    if not tools_python(cache).exists():
        run([sys.executable, "-m", "venv", str(cache / "tools")])
    run([str(tools_python(cache)), "-m", "pip", "install", "-q", *TOOLS])
    tgz = pyodide_tgz(cache)
    if not tgz.exists():
        run(["npm", "pack", "-q", f"pyodide@{PYODIDE_VERSION}"], cwd=cache)
    lock = read_lock(tgz)
    pip_download(
        cache,
        [
            f"{p['name']}=={p['version']}"
            for name, p in lock_closure(lock).items()
            if find_wheel(cache, _req(f"{name}=={p['version']}")) is None
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        wheels = resolve(cache, build_nbfetch_wheel(cache, Path(tmp)), lock, fetch=True)
    (cache / PREPARED).write_text(f"jupyterlite {JUPYTERLITE_VERSION}, pyodide {PYODIDE_VERSION}\n")
    print(f"cache ready: {cache} ({len(wheels)} wheels for nbfetch's requirements)")


def _req(text: str):
    from packaging.requirements import Requirement

    return Requirement(text)
