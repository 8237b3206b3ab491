"""The host-side tools of ``python -m nbfetch.lite``, without a browser:

- ``build`` refuses a damaged cache (a flipped byte, a half tarball, a missing
  file, a cache with no recorded hashes) with a message that says to re-run
  ``prepare``, never a traceback, and before it ships anything: it writes the
  sha256 of what it ships into pyodide-lock.json, so a file it did not refuse
  would pass Pyodide's own check in the browser.
- ``prepare``'s wheels are checked against the sha256 a PEP 691 index
  publishes: a damaged one is removed and fetched again, a download that does
  not match is refused (a local index on 127.0.0.1 stands for PyPI).
- ``serve`` on a small site: the directory redirect's Location stays on the
  site (a path decoded from %2F starts with // otherwise), and a path no file
  can have (NUL, a name too long) answers 400 on a connection that stays usable.

The cache tests copy the prepared cache (conftest.lite_cache) when there is
one, else make a tiny cache of their own: they need no network either way.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import lite_cache

import nbfetch
from nbfetch.lite import deps
from nbfetch.lite import serve as serve_mod

pytestmark = pytest.mark.timeout(120)

ROOT = Path(nbfetch.__file__).resolve().parents[1]


def make_wheel(path: Path, name: str, version: str, code: bytes = b"x = 1\n") -> Path:
    """A small real wheel (its METADATA and one module, stored uncompressed
    so a flipped byte lands in the module's data)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as whl:
        whl.writestr(f"{name}/__init__.py", code * 200)
        whl.writestr(
            f"{name}-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        whl.writestr(
            f"{name}-{version}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: a test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr(f"{name}-{version}.dist-info/RECORD", "")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_cache(dest: Path) -> None:
    """A cache laid out as ``prepare`` leaves it (marker, record, npm tarball,
    wheels), small: the build must refuse damage before it needs the tools."""
    (dest / "wheels").mkdir(parents=True)
    record = {}
    for name, version in [("jedi", "0.19.2"), ("micropip", "0.11.1")]:
        whl = make_wheel(dest / "wheels" / f"{name}-{version}-py3-none-any.whl", name, version)
        record[f"wheels/{whl.name}"] = f"sha256:{sha256(whl)}"
    lock = json.dumps({"info": {}, "packages": {}}).encode()
    tgz = deps.pyodide_tgz(dest)
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("package/pyodide-lock.json")
        info.size = len(lock)
        tar.addfile(info, io.BytesIO(lock))
    record[tgz.name] = f"sha512:{hashlib.sha512(tgz.read_bytes()).hexdigest()}"
    deps.write_record(dest, record)
    (dest / deps.PREPARED).write_text("a test's cache\n")


@pytest.fixture
def cache(tmp_path) -> Path:
    """A copy of the prepared cache (its tools venv linked, not copied), or a
    fake one: each test damages its own."""
    dest = tmp_path / "cache"
    try:
        real = lite_cache()
    except pytest.skip.Exception:
        real = None
    if real is None:
        fake_cache(dest)
    else:
        dest.mkdir()
        (dest / "tools").symlink_to(real.resolve() / "tools")
        shutil.copytree(real / "wheels", dest / "wheels")
        for name in (deps.HASHES, deps.PREPARED, deps.pyodide_tgz(real).name):
            shutil.copy2(real / name, dest / name)
    return dest


def build(cache: Path, out: Path) -> subprocess.CompletedProcess:
    """The documented command, importing this checkout."""
    return subprocess.run(
        [sys.executable, "-m", "nbfetch.lite", "build", *("--output", out, "--cache", cache)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=100,
    )


def flip_wheel_byte(path: Path) -> None:
    """One byte of the first module's data (the zip's directory stays intact,
    as after a bit flip or a tampered file: the wheel still opens)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as whl:
        info = next(i for i in whl.infolist() if i.filename.endswith(".py"))
    offset = (
        info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    )
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def damage(cache: Path, how: str) -> str:
    """Damage ``cache``; returns what the refusal must name."""
    jedi = next((cache / "wheels").glob("jedi-*.whl"))
    tgz = deps.pyodide_tgz(cache)
    if how == "flipped byte":
        flip_wheel_byte(jedi)
        return f"wheels/{jedi.name}"
    if how == "half tarball":
        tgz.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
        return tgz.name
    if how == "missing wheel":
        jedi.unlink()
        return f"wheels/{jedi.name} is missing"
    assert how == "no record"
    (cache / deps.HASHES).unlink()
    return f"no {deps.HASHES}"


def test_an_intact_cache_verifies(cache):
    """The control: every wheel and the tarball are recorded, and they pass."""
    record = deps.verify(cache)
    files = {f"wheels/{p.name}" for p in (cache / "wheels").glob("*.whl")}
    assert files and files | {deps.pyodide_tgz(cache).name} == set(record)


@pytest.mark.parametrize("how", ["flipped byte", "half tarball", "missing wheel", "no record"])
def test_build_refuses_a_damaged_cache(cache, tmp_path, how):
    named = damage(cache, how)
    out = tmp_path / "site"
    run = build(cache, out)
    assert run.returncode != 0, run.stdout[-1000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    message = run.stderr.strip().splitlines()[-1]
    assert named in message and "re-run `python -m nbfetch.lite prepare" in message, message
    assert not out.exists()  # nothing shipped


class Index:
    """A PEP 691 index and file host on 127.0.0.1: ``publish`` a wheel under a
    sha256 (its own unless told), ``files`` the bytes served for it."""

    def __init__(self):
        self.pages: dict[str, list[dict]] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                index.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                if parts[0] == "simple" and len(parts) == 2 and parts[1] in index.pages:
                    body = json.dumps(
                        {"meta": {"api-version": "1.0"}, "files": index.pages[parts[1]]}
                    )
                    ctype = "application/vnd.pypi.simple.v1+json"
                    data = body.encode()
                elif parts[0] == "files" and parts[-1] in index.files:
                    ctype, data = "application/octet-stream", index.files[parts[-1]]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, project: str, wheel: Path, sha: str | None = None) -> None:
        self.files[wheel.name] = wheel.read_bytes()
        self.pages.setdefault(project, []).append(
            {
                "filename": wheel.name,
                "url": f"{self.url}/files/{wheel.name}",
                "hashes": {"sha256": sha or sha256(wheel)},
            }
        )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def index():
    server = Index()
    yield server
    server.close()


@pytest.fixture
def pip_to(index, monkeypatch):
    """pip reads only the local index: no configuration file, no find-links,
    no constraints of this machine."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"{index.url}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")


PROJECT = "nbfetch-test-wheel"
WHEEL = "nbfetch_test_wheel-1.0-py3-none-any.whl"


def test_prepare_fetches_a_damaged_wheel_again(tmp_path, index, pip_to):
    good = make_wheel(tmp_path / WHEEL, "nbfetch_test_wheel", "1.0")
    index.publish(PROJECT, good)
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    cached = cache / "wheels" / WHEEL
    shutil.copy2(good, cached)
    flip_wheel_byte(cached)
    wheels = deps.Wheels(cache, f"{index.url}/simple")
    assert not wheels.check(cached)  # removed: it will be fetched as a missing one
    assert not cached.exists() and wheels.record == {}
    wheels.download([f"{PROJECT}==1.0"])
    assert cached.read_bytes() == good.read_bytes()
    assert wheels.record == {f"wheels/{WHEEL}": f"sha256:{sha256(good)}"}
    assert f"/files/{WHEEL}" in index.requests
    # the intact file is kept (and recorded) without another download
    fetched = index.requests.count(f"/files/{WHEEL}")
    assert deps.Wheels(cache, f"{index.url}/simple").check(cached)
    assert index.requests.count(f"/files/{WHEEL}") == fetched
    assert not [p for p in cache.iterdir() if p.name.startswith(".download-")]


def test_a_local_wheel_pip_prefers_is_replaced_by_the_published_one(
    tmp_path, index, pip_to, monkeypatch
):
    """pip may take a wheel from a find-links folder of the machine (not
    checked against the index): when its bytes are not the published ones,
    the index's own file is downloaded instead."""
    good = make_wheel(tmp_path / WHEEL, "nbfetch_test_wheel", "1.0")
    index.publish(PROJECT, good)
    local = tmp_path / "links"
    local.mkdir()
    make_wheel(local / WHEEL, "nbfetch_test_wheel", "1.0", code=b"x = 2\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(local))
    cache = tmp_path / "cache"
    cache.mkdir()
    wheels = deps.Wheels(cache, f"{index.url}/simple")
    wheels.download([f"{PROJECT}==1.0"])
    assert (cache / "wheels" / WHEEL).read_bytes() == good.read_bytes()
    assert index.requests.count(f"/files/{WHEEL}") == 1  # ours, not pip's
    assert wheels.record == {f"wheels/{WHEEL}": f"sha256:{sha256(good)}"}


def test_prepare_refuses_a_wheel_whose_hash_is_not_published(tmp_path, index, pip_to):
    """The file served is not the one the index vouches for: nothing enters
    the cache, and the error is a message (pip's own check or ours)."""
    good = make_wheel(tmp_path / WHEEL, "nbfetch_test_wheel", "1.0")
    index.publish(PROJECT, good, sha="0" * 64)
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(SystemExit) as exc:
        deps.Wheels(cache, f"{index.url}/simple").download([f"{PROJECT}==1.0"])
    assert isinstance(exc.value.code, str), exc.value.code
    assert list((cache / "wheels").iterdir()) == []
    assert not [p for p in cache.iterdir() if p.name.startswith(".download-")]


def test_a_wheel_the_index_does_not_list_is_refused(tmp_path, index):
    good = make_wheel(tmp_path / WHEEL, "nbfetch_test_wheel", "1.0")
    index.publish(PROJECT, make_wheel(tmp_path / "other.whl", "x", "1"))
    with pytest.raises(SystemExit, match=f"{WHEEL} is not a file of"):
        deps.Wheels(tmp_path, f"{index.url}/simple").check(good)


# -- serve ----------------------------------------------------------------------


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    for folder in ("", "lab", "my dir"):
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "index.html").write_text(f"<html>{folder or 'root'}</html>\n")
    (root / "jupyter-lite.json").write_text("{}")
    with serve_mod.serve(root, port=0) as server:
        yield server


def get(conn: http.client.HTTPConnection, target: str) -> tuple[int, str | None, bytes]:
    conn.request("GET", target)
    response = conn.getresponse()
    return response.status, response.getheader("Location"), response.read()


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/lab", "/lab/"),
        # decoded, the path is //evil.example/../lab: the old Location, a
        # browser reads as http://evil.example/lab/
        ("/%2Fevil.example%2F..%2Flab", "/lab/"),
        ("/%2F%2Fevil.example%2F..%2Flab", "/lab/"),
        # a browser reads \ as / in an http URL
        ("/%5Cevil.example%2F..%2Flab", "/lab/"),
        ("/lab/.", "/lab/"),
        ("/my%20dir", "/my%20dir/"),
    ],
)
def test_directory_redirect_stays_on_the_site(site, target, location):
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        status, got, _ = get(conn, target)
        assert (status, got) == (301, location)
        # and it leads to the directory's page
        assert get(conn, got)[::2] == (
            200,
            f"<html>{got.strip('/').replace('%20', ' ')}</html>\n".encode(),
        )
    finally:
        conn.close()


@pytest.mark.parametrize("target", ["/a%00b", "/static/a%00.js", "/lab%00/", "/" + "a" * 300])
def test_a_path_no_file_can_have_is_a_400(site, target):
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        status, _, body = get(conn, target)
        assert (status, body) == (400, b"invalid path\n")
        # the connection stays usable (it was dropped with a traceback)
        assert get(conn, "/index.html")[::2] == (200, b"<html>root</html>\n")
        assert get(conn, "/get")[0] == 200  # the demo endpoints, still there
    finally:
        conn.close()
