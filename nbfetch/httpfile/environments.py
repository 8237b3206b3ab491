"""Environments: JetBrains' ``http-client.env.json`` with the private
``http-client.private.env.json`` beside it, and ``.env`` files.

An environment file maps environment names to variables::

    {"$shared": {"host": "127.0.0.1:8000"},
     "dev": {"user": "ada"},
     "prod": {"host": "api.example.com"}}

``$shared`` applies to every environment (REST Client's ``$shared``, JetBrains'
too); the private file overrides the shared one name by name, and its values
are secrets (JetBrains keeps the private file out of version control for
that reason). A ``.env`` beside the ``.http`` file feeds ``{{$dotenv NAME}}``
(REST Client); it is read with python-dotenv's ``dotenv_values``, which never
touches ``os.environ``.
"""

from __future__ import annotations

import io
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InvalidRequest

ENV_FILE = "http-client.env.json"
PRIVATE_ENV_FILE = "http-client.private.env.json"
DOTENV_FILE = ".env"
SHARED = "$shared"
#: An environment file larger than this is refused: it is written by hand.
MAX_ENV_FILE = 1024 * 1024


@dataclass
class Environment:
    """The variables of the chosen environment."""

    name: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    secret_names: set[str] = field(default_factory=set)
    dotenv: dict[str, str] = field(default_factory=dict)
    dotenv_path: str | None = None  # where dotenv came from, for messages
    shared: dict[str, str] = field(default_factory=dict)  # "$shared", for {{$shared NAME}}
    objects: dict[str, str] = field(default_factory=dict)  # name -> file: no variable

    def __repr__(self) -> str:  # the names only: the values may be secrets
        return f"Environment({self.name!r}, names={sorted(self.values)})"


def read_text_file(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of the regular file ``path`` (an editor's BOM dropped),
    at most ``limit`` bytes; ``InvalidRequest`` otherwise. Opened without
    blocking and checked on the open file: a FIFO would block the open and the
    read, a device (``/dev/zero``) never end, and both stat as 0 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InvalidRequest(f"{path}: not a regular file (a FIFO or a device?)")
            data = file.read(limit + 1)  # it may have grown since it was opened
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        size = max(info.st_size, len(data))
        raise InvalidRequest(f"{path}: {size:,} bytes; {what} may have {limit:,}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _read(path: Path) -> str:
    return read_text_file(path, MAX_ENV_FILE, "an environment file")


def _scalar(value) -> str | None:
    """A JSON value as the text a template puts in (JSON's spelling: true, null)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return json.dumps(value)
    return None  # an object or array (JetBrains' SSLConfiguration, security): no variable


def _load_json(path: Path) -> dict[str, dict]:
    """The environments of ``path``, their values as JSON gave them."""
    text = _read(path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        where = f" line {line}" if line else ""
        raise InvalidRequest(
            f"{path}{where}: not valid JSON ({getattr(exc, 'msg', exc)})"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidRequest(
            f'{path}: must be an object of environments, {{"dev": {{"name": "value"}}}}'
        )
    return data


def _private_beside(path: Path) -> Path:
    """``x.env.json`` -> ``x.private.env.json`` (JetBrains' naming)."""
    name = path.name
    stem = name[: -len(".env.json")] if name.endswith(".env.json") else path.stem
    return path.with_name(f"{stem}.private.env.json")


def load_dotenv_file(path: str | os.PathLike) -> dict[str, str]:
    """The ``NAME=value`` pairs of a ``.env`` file (``os.environ`` untouched)."""
    from dotenv import dotenv_values

    # Read here, bounded, and parsed from the text: python-dotenv opening the
    # path itself would read a FIFO or a device without end.
    text = _read(Path(path))
    # interpolate=False: "${HOME}" in a value stays as written; expanding it
    # would read os.environ behind the user's back.
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {k: v for k, v in values.items() if v is not None}


def load_environment(
    name: str | None,
    directory: str | os.PathLike | None,
    *,
    env_file: str | os.PathLike | None = None,
) -> Environment:
    """The environment ``name`` (None: ``$shared`` only) from the files in
    ``directory`` (the ``.http`` file's folder; None: the working directory),
    or from ``env_file`` (a relative path from the working directory): an
    ``*.env.json`` file (its ``*.private.env.json``
    beside it is read too) or a dotenv file, whose values are then all
    variables, all secret. ``InvalidRequest`` when ``name`` is in no file."""
    folder = Path(directory) if directory is not None else Path.cwd()
    env = Environment(name=name)
    shared_file = folder / ENV_FILE
    if env_file is not None:
        # A relative path is the caller's, from the working directory (as a
        # shell user means "--env-file ci.env.json"), not the .http file's folder.
        given = Path(env_file).expanduser().absolute()
        if not given.exists():
            raise InvalidRequest(f"environment file {given} does not exist")
        if not given.is_file():  # a stat, no open: "/dev/zero is a dotenv file" misled
            raise InvalidRequest(f"{given}: not a regular file (a FIFO or a device?)")
        if not given.name.endswith(".json"):
            if name is not None:
                raise InvalidRequest(
                    f"--env {name}: {given} is a dotenv file, which has no environments"
                )
            env.dotenv = load_dotenv_file(given)
            env.values, env.dotenv_path = dict(env.dotenv), str(given)
            env.secret_names = set(env.values)
            return env
        shared_file, folder = given, given.parent
    private_file = _private_beside(shared_file)
    public = _load_json(shared_file) if shared_file.exists() else {}
    private = _load_json(private_file) if private_file.exists() else {}
    if name is not None and name not in public and name not in private:
        known = sorted((public.keys() | private.keys()) - {SHARED})
        files = " or ".join(str(f) for f in (shared_file, private_file) if f.exists())
        raise InvalidRequest(
            # Only files that exist are named: "not defined in X" of a missing X
            # sends the user looking for a typo in a file that is not there.
            f"environment {name!r} is not defined in {files}"
            if files
            else f"environment {name!r}: there is no {shared_file.name} or"
            f" {private_file.name} in {folder}",
            hint=f"the environments there: {', '.join(known)}" if known else None,
        )
    # Later wins: the shared values, then the named environment's; in each, the
    # private file's over the public one's. A name the private file gives a value
    # is secret, whichever value wins (over-masking is the safe error).
    for key in (SHARED, name) if name is not None else (SHARED,):
        for source, path in ((public, shared_file), (private, private_file)):
            raw = source.get(key, {})
            values = {k: text for k, v in raw.items() if (text := _scalar(v)) is not None}
            for k in raw.keys() - values.keys():  # said so when a template names one
                env.objects[k] = str(path)
            for k in values:
                env.objects.pop(k, None)
            env.values.update(values)
            if key == SHARED:
                env.shared.update(values)
            if source is private:
                env.secret_names |= set(values)
    dotenv = folder / DOTENV_FILE
    if dotenv.is_file():
        env.dotenv = load_dotenv_file(dotenv)
        env.dotenv_path = str(dotenv)
    return env
