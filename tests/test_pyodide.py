"""nbfetch in real Pyodide (the JupyterLite kernel's Python), under Node.js:
Node's global fetch is the same Fetch API as a browser's (Response,
ReadableStream bodies, AbortController), so the browser transport
(client/browser.py, drivers/browser.py) runs unchanged against the demo server.
What only a browser does (CORS, forbidden headers dropped, Resource Timing
cross-origin) is for tests/test_lite.py (Chromium).

Pyodide comes from ``NBFETCH_PYODIDE_DIR`` (a directory with ``pyodide.mjs``)
or from the npm package in the site build's cache (``python -m nbfetch.lite
prepare``; conftest.lite_cache finds it). Without either, or without ``node``,
the test is skipped; in CI (CI=true), where .ci/run provides both, it fails.
"""

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import h11
import pytest
from conftest import lite_cache

import nbfetch
from nbfetch.lite import deps

HERE = Path(__file__).parent


def pyodide_dir(tmp_path_factory) -> Path:
    given = os.environ.get("NBFETCH_PYODIDE_DIR")
    if given:
        return Path(given)
    dest = tmp_path_factory.mktemp("pyodide")
    with tarfile.open(deps.pyodide_tgz(lite_cache())) as tar:
        tar.extractall(dest, filter="data")
    return dest / "package"


@pytest.fixture(scope="module")
def pyodide(tmp_path_factory):
    if shutil.which("node") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("no node: .ci/run installs it, so CI must have it")
        pytest.skip("no node")
    found = pyodide_dir(tmp_path_factory)
    assert (found / "pyodide.mjs").is_file(), f"no pyodide.mjs in {found}"
    return found


@pytest.mark.timeout(180)
def test_the_browser_transport_in_pyodide(pyodide, demo):
    mounts = [
        f"{Path(nbfetch.__file__).parent}=/lib/nbfetch-test/nbfetch",
        f"{Path(h11.__file__).parent}=/lib/nbfetch-test/h11",
    ]
    runner, script = HERE / "lite" / "pyodide_run.mjs", HERE / "lite" / "browser_transport.py"
    run = subprocess.run(
        ["node", str(runner), str(pyodide), str(script), *mounts],
        env={**os.environ, "NBFETCH_DEMO": demo.url},
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    checks = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            checks[record.pop("check")] = record
    print(run.stderr.strip(), json.dumps(checks.get("latency")), sep="\n")

    assert checks["driver"]["name"] == "BrowserDriver"
    latency = checks["latency"]
    assert latency["transfer_encoding"] == "chunked"
    for name in ("browser.request", "browser.response", "response.chunk", "response.done"):
        assert name in latency["events"]
    assert not any(n.startswith(("resolve.", "connect.", "tls.")) for n in latency["events"])
    assert latency["timing"]["dns"] is None and latency["timing"]["connect"] is None
    # The drip's pieces arrive as the server sends them (0.2 s apart), not at the end.
    drip = checks["drip"]
    assert drip["body"] == "*****" and drip["pieces"] >= 2
    assert drip["offsets"][-1] - drip["offsets"][0] >= 0.4
    assert checks["on_chunk"]["lines"] == 3
    gzip = checks["gzip"]
    assert gzip["gzipped"] is True and gzip["content_encoding"] is None
    assert gzip["decoded_by_browser"] == "gzip"
    assert checks["redirect"]["url"] == demo.url + "/get"
    assert checks["post"] == {"json": {"a": [1, 2]}, "status": 200}
    assert "Cookie" in checks["forbidden"]["error"]
    assert checks["read_timeout"]["timeout"] == "read_timeout"
    assert checks["read_timeout"]["after_s"] >= 0.5
    assert checks["request_timeout"]["phase"] == "download"
    assert checks["request_timeout"]["after_s"] >= 1.0
    assert checks["cancel"]["aborted"] is True
    assert checks["refused"]["type"] == "ConnectError"
    assert "cannot block in a browser" in checks["fetch_sync"]["error"]
    assert checks["fetch_many"]["statuses"] == [200] * 5
    assert checks["files"]["saved"] == 5000
    assert checks["files"]["uploaded"] is True
    assert checks["files"]["content_type"] == "multipart/form-data"
