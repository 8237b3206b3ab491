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
- ``hashes.json``: the hash the registry publishes for each of those files (the
  sha256 in PyPI's simple index, npm's ``dist.integrity``), as ``prepare`` found
  them. ``build`` checks every file against it before reading any: ``build``
  writes the sha256 of what it ships into the site's pyodide-lock.json, so a
  damaged or altered file it did not refuse would pass Pyodide's own check.
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
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


#: The record of the published hashes, ``{"<path in the cache>": "<algorithm>:<hex>"}``.
HASHES = "hashes.json"
#: Where ``prepare`` reads each wheel's sha256: PyPI's simple index (PEP 691 JSON),
#: the one pip downloads from and checks against.
PYPI_SIMPLE = "https://pypi.org/simple"


def digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def matches(path: Path, expected: str) -> bool:
    """Whether the file ``path`` has the hash ``expected`` (``"sha256:<hex>"``)."""
    algorithm, _, hexdigest = expected.partition(":")
    return path.is_file() and digest(path, algorithm) == hexdigest


def rerun(cache: Path) -> str:
    return f"re-run `python -m nbfetch.lite prepare --cache {cache}` (it fetches them again)"


def verify(cache: Path) -> dict[str, str]:
    """Check every file ``prepare`` recorded against its published hash, and
    return the record; a missing record or file, or a wrong hash, is a
    SystemExit that says to re-run ``prepare``."""
    if not is_prepared(cache):
        raise SystemExit(f"{cache} is not a prepared cache: run `python -m nbfetch.lite prepare`")
    try:
        record = json.loads((cache / HASHES).read_text())
    except FileNotFoundError:
        raise SystemExit(
            f"{cache} has no {HASHES} (prepared by an older nbfetch): {rerun(cache)}"
        ) from None
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{cache / HASHES} is unreadable ({exc}): {rerun(cache)}") from None
    if not isinstance(record, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in record.items()
    ):
        raise SystemExit(f"{cache / HASHES} is not a record of hashes: {rerun(cache)}")
    bad = []
    for name, expected in sorted(record.items()):
        path = cache / name
        if not path.is_file():
            bad.append(f"{name} is missing")
        elif not matches(path, expected):
            bad.append(f"{name} is not the file its registry published (damaged or altered)")
    if bad:
        raise SystemExit(f"the cache {cache} is damaged: {'; '.join(bad)}: {rerun(cache)}")
    return record


def write_record(cache: Path, record: dict[str, str]) -> None:
    tmp = cache / (HASHES + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, cache / HASHES)


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
    try:
        with tarfile.open(tgz) as tar:
            member = tar.extractfile("package/pyodide-lock.json")
            if member is None:
                raise SystemExit(f"{tgz}: no package/pyodide-lock.json")
            return json.load(member)
    except (OSError, EOFError, KeyError, ValueError, tarfile.TarError, zlib.error) as exc:
        # verify() has passed by then: this is npm's own tarball, changed
        raise SystemExit(f"{tgz} is unreadable ({exc!r}): {rerun(tgz.parent)}") from None


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
    try:
        subprocess.run(cmd, check=True, **kwargs)
    except FileNotFoundError:
        raise SystemExit(f"{cmd[0]} is not installed") from None
    except subprocess.CalledProcessError as exc:
        # its own output (above) says why: a traceback of ours would not
        raise SystemExit(f"{Path(cmd[0]).name} failed (exit {exc.returncode})") from None


def pip_download(dest: Path, requirements: list[str]) -> None:
    """Pure-Python wheels for Pyodide's Python, no dependencies (we resolve
    them ourselves: pip would evaluate markers for this machine, not for
    emscripten)."""
    if requirements:
        run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--no-deps"),
                *("--only-binary", ":all:", "--python-version", PYODIDE_PYTHON),
                *("--platform", "any", "--implementation", "py", "--abi", "none"),
                *("-d", str(dest), *requirements),
            ]
        )


class Wheels:
    """``prepare``'s wheels, each checked against the sha256 that PyPI's index
    publishes for its file name before anything reads it, and recorded."""

    def __init__(self, cache: Path, index: str = PYPI_SIMPLE):
        self.cache, self.index = cache, index.rstrip("/")
        self.pages: dict[str, dict[str, tuple[str, str]]] = {}
        self.record: dict[str, str] = {}

    def published(self, filename: str) -> tuple[str, str]:
        """The index's sha256 and URL of the wheel ``filename``."""
        project = canonical(filename.split("-")[0])
        if project not in self.pages:
            self.pages[project] = index_files(f"{self.index}/{project}/")
        entry = self.pages[project].get(filename)
        if entry is None:
            raise SystemExit(f"{filename} is not a file of {self.index}/{project}/")
        return entry

    def check(self, path: Path) -> bool:
        """Whether the cached ``path`` is the file the index publishes; a
        damaged one is removed (then fetched again, as a missing one)."""
        sha256, _ = self.published(path.name)
        if digest(path, "sha256") != sha256:
            print(f"{path.name}: not the file PyPI publishes (damaged?): fetching it again")
            path.unlink()
            return False
        self.record[f"wheels/{path.name}"] = f"sha256:{sha256}"
        return True

    def download(self, requirements: list[str]) -> None:
        """Download to a temporary directory, check, then move into ``wheels/``:
        an interrupted download never leaves a partial wheel there."""
        (self.cache / "wheels").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache, prefix=".download-") as tmp:
            pip_download(Path(tmp), requirements)
            for path in sorted(Path(tmp).glob("*.whl")):
                sha256, url = self.published(path.name)
                if digest(path, "sha256") != sha256:
                    # pip may have taken it from a local find-links folder:
                    # take PyPI's own file instead
                    download(url, path)
                    if digest(path, "sha256") != sha256:
                        raise SystemExit(f"{url} does not have the sha256 its index publishes")
                os.replace(path, self.cache / "wheels" / path.name)
                self.record[f"wheels/{path.name}"] = f"sha256:{sha256}"


def index_files(url: str) -> dict[str, tuple[str, str]]:
    """A project's page of a PEP 691 index: ``{filename: (sha256, url)}``."""
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            page = json.load(response)
        return {
            f["filename"]: (f["hashes"]["sha256"], urllib.parse.urljoin(url, f["url"]))
            for f in page["files"]
            if f.get("hashes", {}).get("sha256")
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"cannot read the hashes of {url}: {exc}") from None


def download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=120) as response, dest.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except OSError as exc:
        raise SystemExit(f"cannot download {url}: {exc}") from None


def pyodide_integrity() -> str:
    """npm's ``dist.integrity`` of the Pyodide package, as ``"sha512:<hex>"``."""
    cmd = ["npm", "view", "--json", f"pyodide@{PYODIDE_VERSION}", "dist.integrity"]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        algorithm, _, b64 = json.loads(out).partition("-")
        return f"{algorithm}:{base64.b64decode(b64, validate=True).hex()}"
    except FileNotFoundError:
        raise SystemExit("npm is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{' '.join(cmd)} failed: {exc.stderr.strip()}") from None
    except (ValueError, AttributeError) as exc:
        raise SystemExit(f"{' '.join(cmd)}: no integrity in its answer ({exc})") from None


def fetch_pyodide(cache: Path) -> str:
    """The npm tarball, kept only if it has npm's published hash, else packed
    again (into a temporary directory, checked, then renamed: an interrupted
    ``npm pack`` leaves no half tarball). Returns its hash."""
    tgz, expected = pyodide_tgz(cache), pyodide_integrity()
    if tgz.exists() and not matches(tgz, expected):
        print(f"{tgz.name}: not the file npm publishes (damaged?): fetching it again")
        tgz.unlink()
    if not tgz.exists():
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            spec = f"pyodide@{PYODIDE_VERSION}"
            run(["npm", "pack", "-q", "--pack-destination", tmp, spec], cwd=cache)
            packed = Path(tmp) / tgz.name
            if not matches(packed, expected):
                raise SystemExit(f"npm pack {spec} is not the file npm publishes")
            os.replace(packed, tgz)
    return expected


def find_wheel(cache: Path, req, among=None) -> Path | None:
    """The cached wheel for ``req``; ``among``: only those names (``build``
    takes only the recorded, checked files)."""
    for path in sorted((cache / "wheels").glob("*.whl")):
        if among is not None and f"wheels/{path.name}" not in among:
            continue
        if wheel_name(path) == canonical(req.name):
            version = path.name.split("-")[1]
            if req.specifier.contains(version, prereleases=True):
                return path
    return None


def resolve(cache: Path, nbfetch_wheel: Path, lock: dict, wheels: Wheels | dict) -> list[Path]:
    """The wheels for ``pypi/``: what nbfetch, the kernel's shims and the lock's
    wheels require under Pyodide, less what the lock or the shims provide.
    PyPI's wheels are not Pyodide's builds: ipython 9.12 requires
    ipython-pygments-lexers, which Pyodide's lock entry does not list.
    ``wheels``: a ``Wheels`` downloads what is missing and checks what is
    there (``prepare``); a record (``verify``'s) limits the search to the
    checked files, and a missing one is an error (``build``)."""
    fetch = isinstance(wheels, Wheels)
    among = None if fetch else wheels

    def find(req) -> Path | None:
        path = find_wheel(cache, req, among)
        # a file that fails its check is removed: fetched again, as a missing one
        if path is not None and fetch and not wheels.check(path):
            return None
        return path

    shims = kernel_shims(cache)
    provided = {n: [p["version"]] for n, p in lock_closure(lock).items()}
    for path in shims:
        provided.setdefault(wheel_name(path), []).append(path.name.split("-")[1])
    roots = [nbfetch_wheel, *shims]
    for name, entry in lock_closure(lock).items():
        wheel = find(_req(f"{name}=={entry['version']}"))
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
                path = find(req)
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
            wheels.download(sorted({str(r) for _, r in missing}))
            for parent, req in missing:
                if find_wheel(cache, req) is None:
                    raise SystemExit(f"no pure-Python wheel of {req} (needed by {parent})")
        todo = missing + new
    return sorted(found.values())


def prepare(cache: Path, index: str = PYPI_SIMPLE) -> None:
    """Fill ``cache`` from PyPI and npm (the only online step). Every file is
    checked against its registry's published hash, a file that fails is
    fetched again, and the hashes are recorded for ``build``."""
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    # the marker says the record matches the files: not while they change
    (cache / PREPARED).unlink(missing_ok=True)
    # what a killed prepare left half downloaded (never read: only renamed in)
    for stale in cache.glob(".download-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if not tools_python(cache).exists():
        run([sys.executable, "-m", "venv", str(cache / "tools")])
    run([str(tools_python(cache)), "-m", "pip", "install", "-q", *TOOLS])
    wheels = Wheels(cache, index)
    record = {pyodide_tgz(cache).name: fetch_pyodide(cache)}
    lock = read_lock(pyodide_tgz(cache))
    missing = []
    for name, p in lock_closure(lock).items():
        path = find_wheel(cache, _req(f"{name}=={p['version']}"))
        if path is None or not wheels.check(path):
            missing.append(f"{p['name']}=={p['version']}")
    wheels.download(missing)
    with tempfile.TemporaryDirectory() as tmp:
        found = resolve(cache, build_nbfetch_wheel(cache, Path(tmp)), lock, wheels)
    record.update(wheels.record)
    write_record(cache, record)
    (cache / PREPARED).write_text(f"jupyterlite {JUPYTERLITE_VERSION}, pyodide {PYODIDE_VERSION}\n")
    print(f"cache ready: {cache} ({len(found)} wheels for nbfetch's requirements)")


def _req(text: str):
    from packaging.requirements import Requirement

    return Requirement(text)
