"""``nbfetch run FILE`` as CI runs it: a real ``python -m nbfetch`` process
against the demo server (its URL from an environment file), the table on
stdout, and the exit status: 0 all passed, 1 a failure, 2 bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

API = """\
# @name first
POST {{base}}/post
Content-Type: application/json

{"token": "tok-{{$randomInt 1000 9999}}-abcdef"}

?? status == 200

###
# @name second
GET {{base}}/get
Authorization: Bearer {{first.response.body.$.json.token}}

?? body $.headers.Authorization startsWith "Bearer tok-"
"""


def nbfetch_run(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "nbfetch", "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )


@pytest.fixture
def project(tmp_path, demo):
    """A folder with an environment file naming the demo server as ``base``."""
    (tmp_path / "http-client.env.json").write_text(json.dumps({"test": {"base": demo.url}}))
    return tmp_path


def test_all_passed_exits_0_and_prints_the_table(project, demo):
    (project / "api.http").write_text(API)
    done = nbfetch_run("api.http", "--env", "test", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["#", "request", "status", "time", "checks"]
    assert lines[1].split()[1:5] == ["first:", "POST", f"{demo.url}/post", "200"]
    assert lines[2].split()[1:5] == ["second:", "GET", f"{demo.url}/get", "200"]
    assert lines[-1] == "2 requests: 2 passed, 0 failed, 0 skipped; checks: 2 passed, 0 failed"
    assert "\x1b[" not in done.stdout and done.stderr == ""
    assert demo.stats["requests"] == 2


def test_a_failing_check_exits_1(project):
    (project / "api.http").write_text(API + "?? status == 201\n")
    done = nbfetch_run("api.http", "--env", "test", cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED status == 201: got 200" in done.stdout
    assert "tok-" not in done.stdout  # the bearer token is masked in the table


def test_an_undefined_variable_row_exits_1(project):
    (project / "api.http").write_text("GET {{base}}/get?q={{missing}}\n")
    done = nbfetch_run("api.http", "--env", "test", cwd=project)
    assert done.returncode == 1
    assert "error: InvalidRequest: {{missing}} is not defined" in done.stdout


def test_fail_fast_skips_the_rest(project):
    (project / "api.http").write_text("GET {{base}}/status/500\n\n###\nGET {{base}}/get\n")
    done = nbfetch_run("api.http", "--env", "test", "--fail-fast", cwd=project)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[2].strip() == "FAILED status 500 (no ?? checks: below 400 passes)"
    assert lines[3].split()[3:] == ["skipped", "-", "-"]
    assert done.stdout.splitlines()[-1].startswith("2 requests: 0 passed, 1 failed, 1 skipped")


def test_an_env_file_given_by_path(tmp_path, demo):
    env_file = tmp_path / "elsewhere.json"
    env_file.write_text(json.dumps({"ci": {"base": demo.url}}))
    (tmp_path / "api.http").write_text("GET {{base}}/get\n\n?? status == 200\n")
    done = nbfetch_run("api.http", "--env", "ci", "--env-file", str(env_file), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_relative_env_file_is_from_the_working_directory(tmp_path, demo):
    (tmp_path / "cwdenv.json").write_text(json.dumps({"dev": {"base": demo.url}}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.http").write_text("GET {{base}}/get\n\n?? status == 200\n")
    done = nbfetch_run("sub/a.http", "--env", "dev", "--env-file", "cwdenv.json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # Without it, the message names no file that does not exist.
    done = nbfetch_run("sub/a.http", "--env", "dev", cwd=tmp_path)
    assert done.returncode == 2 and "there is no http-client.env.json" in done.stderr


def test_a_device_as_the_env_file_is_said_so(tmp_path):
    # "/dev/zero is a dotenv file, which has no environments" sent the user looking.
    (tmp_path / "a.http").write_text("GET http://127.0.0.1:9/\n")
    done = nbfetch_run("--env-file", "/dev/zero", "--env", "dev", "a.http", cwd=tmp_path)
    assert done.returncode == 2 and "/dev/zero: not a regular file" in done.stderr, done.stderr


def test_a_fifo_as_the_dotenv_beside_is_said_so(tmp_path):
    # "there is no .env file beside the .http file" sent the user looking.
    (tmp_path / "a.http").write_text("GET http://127.0.0.1:9/{{$dotenv X}}\n")
    os.mkfifo(tmp_path / ".env")
    done = nbfetch_run("a.http", cwd=tmp_path)
    assert f"{tmp_path / '.env'} is not a regular file" in done.stdout + done.stderr, done


def test_no_such_file_exits_2(tmp_path):
    done = nbfetch_run("nope.http", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "nbfetch run: cannot read nope.http" in done.stderr


def test_a_syntax_error_exits_2(tmp_path):
    (tmp_path / "bad.http").write_text("GET http://127.0.0.1:1/\n\n?? status\n")
    done = nbfetch_run("bad.http", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "bad.http" in done.stderr and "line 3" in done.stderr
    assert done.stderr.splitlines()[0].endswith("no operator")  # no " [request]" tag


@pytest.mark.parametrize("content", ["", "# only a comment\n// and another\n\n", "@a = 1\n"])
def test_a_file_with_no_requests_exits_2(tmp_path, content):
    # Exit 0 would tell CI that every check passed when none ran.
    (tmp_path / "empty.http").write_text(content)
    done = nbfetch_run("empty.http", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "nbfetch run: no requests in empty.http\n"


def test_a_bad_option_exits_2(tmp_path):
    done = nbfetch_run("--no-such-option", cwd=tmp_path)
    assert done.returncode == 2 and "usage: nbfetch run" in done.stderr


def test_nbfetch_url_still_works(demo, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "nbfetch", "-q", demo.url + "/get"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=45,
    )
    assert done.returncode == 0 and done.stdout == b""


def test_an_unknown_environment_exits_2(project):
    (project / "api.http").write_text("GET {{base}}/get\n")
    done = nbfetch_run("api.http", "--env", "nope", cwd=project)
    assert done.returncode == 2 and done.stdout == ""
    assert "nope" in done.stderr


def test_a_private_value_is_masked_unless_show_secrets(project):
    (project / "http-client.private.env.json").write_text(
        json.dumps({"test": {"hook": "hook-7f3a9c"}})
    )
    (project / "api.http").write_text("GET {{base}}/anything/{{hook}}\n\n?? status == 999\n")
    done = nbfetch_run("api.http", "--env", "test", cwd=project)
    assert done.returncode == 1
    assert "/anything/***" in done.stdout and "hook-7f3a9c" not in done.stdout
    shown = nbfetch_run("api.http", "--env", "test", "--show-secrets", cwd=project)
    assert "/anything/hook-7f3a9c" in shown.stdout


def test_the_commands_help_names_the_run_form(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    shown = subprocess.run(
        [sys.executable, "-m", "nbfetch", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert shown.returncode == 0 and "nbfetch run FILE.http" in shown.stdout
