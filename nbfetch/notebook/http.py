"""``.http`` files in a notebook: ``nbfetch.run_http`` and what ``%fetch --file``
and ``%%fetch`` cells run.

>>> run = await nbfetch.run_http("api.http", env="dev")     # doctest: +SKIP
>>> run.passed, run["login"].response.status_code            # doctest: +SKIP

In a kernel the run shows a live table (``RunView``: request, status, time,
checks), a static snapshot when it ends; elsewhere it is
``nbfetch.httpfile.arun_http`` as it is. ``{{name}}`` finds the kernel's
variables after the file's ``@name = value`` lines and the environment's.
"""

from __future__ import annotations

import os
import re

from ..core.errors import InvalidRequest
from ..core.redact import Secrets
from ..httpfile.environments import load_environment
from ..httpfile.model import HttpFile
from ..httpfile.parse import read_http_file
from ..httpfile.run import arun_http
from .kernel import in_kernel


def load_http(source: str | os.PathLike | HttpFile) -> HttpFile:
    """A parsed file; a path that cannot be read is a short ``InvalidRequest``."""
    if isinstance(source, HttpFile):
        return source
    try:
        return read_http_file(source)
    except OSError as exc:
        raise InvalidRequest(
            f"cannot read {os.fspath(source)!r}: {exc.strerror or exc}",
            hint="the path is relative to the notebook's directory",
        ) from None


def environment_secrets(http: HttpFile, env: str | None, env_file) -> Secrets:
    """The values a view must mask before any request of the run is sent: those
    of the private env file and of the ``.env`` beside the file (the run's
    ``Scope`` adds the rest as it expands them)."""
    environment = load_environment(env, http.directory, env_file=env_file)
    secrets = Secrets()
    for name in environment.secret_names:
        secrets.add(str(environment.values.get(name, "")))
    for value in environment.dotenv.values():
        secrets.add(str(value))
    # {{$processEnv NAME}}: the live view shows the request before the run's
    # scope has told anyone it expanded the value (a view only sees the options).
    texts = [*http.variables.values(), *map(str, environment.values.values())]
    for block in http.requests:
        texts += [block.url, block.body or "", *block.variables.values()]
        texts += [f"{name}: {value}" for name, value in block.headers]
        texts += [a.expected or "" for a in block.assertions]
    for text in texts:
        for name in _PROCESS_ENV.findall(text):
            if name in os.environ:
                secrets.add(os.environ[name])
    return secrets


_PROCESS_ENV = re.compile(r"\{\{\s*\$processEnv\s+([\w.-]+)\s*\}\}")


def apply_options(base, options) -> None:
    """``%%fetch -H 'X: 1' --timeout 5 ...`` / ``%fetch --file F -H ...``: the
    line's fetch options go to each request (``FetchOptions``); what the request
    itself says wins. Not ``follow_redirects``: the line's parser sets it False
    without ``-L`` (curl's default), but a ``.http`` request follows redirects
    unless it says ``# @no-redirect`` (REST Client's default)."""
    for key, value in base.fetch_kwargs.items():
        if key == "follow_redirects":
            continue
        if key == "headers":
            have = {n.lower() for n, _ in options.fetch_kwargs.get("headers") or ()}
            extra = [(n, v) for n, v in value if n.lower() not in have]
            options.fetch_kwargs["headers"] = [*(options.fetch_kwargs.get("headers") or ()), *extra]
        else:
            options.fetch_kwargs.setdefault(key, value)


class WithOptions:
    """A ``RunObserver`` that gives each request the line's options (``apply_options``)
    before it is sent, then passes the run on to ``observer`` (a view, or None)."""

    def __init__(self, base, observer=None):
        self.base, self.observer = base, observer

    def started(self, index: int, block, options):
        if options is not None:
            apply_options(self.base, options)
        return self.observer.started(index, block, options) if self.observer else None

    def finished(self, index: int, result) -> None:
        if self.observer is not None:
            self.observer.finished(index, result)


def kernel_namespace() -> dict | None:
    """The kernel's variables (``{{name}}`` looks there last), or None outside one."""
    if not in_kernel():
        return None
    from IPython import get_ipython

    return get_ipython().user_ns


async def run_http(
    source: str | os.PathLike | HttpFile,
    *,
    env: str | None = None,
    env_file: str | os.PathLike | None = None,
    client=None,
    namespace: dict | None = None,
    show: bool | None = None,
    stop_on_failure: bool = False,
    show_secrets: bool = False,
    options=None,
):
    """Run every request of ``source`` (a ``.http`` path or an ``HttpFile``) in
    order; returns the ``RunResult``. ``show`` (default: in a kernel) displays
    the live table; ``namespace`` (default: the kernel's variables) is where
    ``{{name}}`` looks last; ``options`` (``FetchOptions``: ``%fetch --file``'s
    ``-H``, ``--timeout``, ...) go to every request, what a request says winning."""
    if show is None:
        show = in_kernel()
    if namespace is None:
        namespace = kernel_namespace()
    http = load_http(source)
    kwargs = dict(
        env=env,
        env_file=env_file,
        client=client,
        namespace=namespace,
        stop_on_failure=stop_on_failure,
        show_secrets=show_secrets,
    )
    if not show:
        observer = WithOptions(options) if options is not None else None
        return await arun_http(http, observer=observer, **kwargs)
    from IPython.display import display

    from .run_view import RunView

    view = RunView(
        http.requests,
        title=os.path.basename(http.source) if http.source != "cell" else "",
        secrets=environment_secrets(http, env, env_file),
        show_secrets=show_secrets,
    )
    display(view)
    try:
        observer = WithOptions(options, view) if options is not None else view
        run = await arun_http(http, observer=observer, **kwargs)
        view.secrets.update(run.secrets)  # every value the run's scope expanded
        return run
    finally:
        # Whatever happened (an Interrupt too), the output ends as a static table.
        view.settle()
