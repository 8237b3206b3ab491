"""Running a whole ``.http`` file: its requests in order on one client, each
named result visible to the requests after it, each ``??`` checked.

    run = await arun_http("api.http", env="dev")
    print(run)                       # the table: request, status, time, checks
    run["login"].response.json()     # a named request's result
    run.passed                       # every request answered and every check passed

A request that cannot be expanded (an undefined ``{{name}}``) or whose fetch
fails is a failed row holding its error, not an exception out of the run; the
requests after it still run unless ``stop_on_failure``. Cancelling the run
cancels the fetch under way and closes the client the run opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..client import AsyncClient
from ..client.response import Response
from ..core.errors import FetchError, FetchTimeout
from ..core.events import Event
from ..core.redact import SENSITIVE_HEADERS, Secrets, is_secret_name
from ..text.options import FetchOptions
from .checks import AssertionResult, check
from .environments import load_environment
from .model import HttpFile, HttpRequestBlock
from .parse import read_http_file
from .requests import to_options
from .variables import Scope

# The .http setting of each timeout a request sets (requests.to_options): a
# FetchTimeout's hint names it rather than %fetch's option.
_TIMEOUT_SETTINGS = {"request_timeout": "# @timeout", "connect_timeout": "# @connection-timeout"}


@dataclass
class RequestResult:
    """One request of a run: what was sent, what came back, what was checked.

    ``options`` is None when its templates could not be expanded; ``error`` is
    the ``FetchError`` (``InvalidRequest`` for an expansion) when there is no
    response; ``skipped`` when an earlier failure stopped the run
    (``stop_on_failure``)."""

    block: HttpRequestBlock
    options: FetchOptions | None = None
    response: Response | None = None
    error: BaseException | None = None
    assertions: list[AssertionResult] = field(default_factory=list)
    skipped: bool = False
    #: The run's secret values (shared by its results): every display scrubs them.
    secrets: Secrets = field(default_factory=Secrets, repr=False)

    @property
    def name(self) -> str | None:
        return self.block.name

    @property
    def passed(self) -> bool:
        """Answered, and every check passed; with no checks, a status below 400
        (as ``nbfetch URL`` exits non-zero for a 4xx or 5xx)."""
        if self.response is None or self.error is not None or self.skipped:
            return False
        if self.assertions:
            return all(a.passed for a in self.assertions)
        return self.response.status_code < 400

    @property
    def duration(self) -> float | None:
        """The fetch's total time in seconds (None without a response)."""
        return None if self.response is None else self.response.timing.total

    @property
    def failed_assertions(self) -> list[AssertionResult]:
        return [a for a in self.assertions if not a.passed]

    def __getattr__(self, name: str):
        # Reads as its Response too (result.status_code, result.json()): a
        # %%fetch cell bound the Response itself before it had checks, and
        # notebooks use it so.
        if name.startswith("_"):
            raise AttributeError(name)
        response = self.__dict__.get("response")
        if response is None:
            why = "it failed" if self.__dict__.get("error") is not None else "none came"
            raise AttributeError(f"RequestResult has no {name!r}, and no response ({why})")
        return getattr(response, name)

    def __repr__(self) -> str:
        from .report import describe

        return f"<RequestResult {self.secrets.scrub(describe(self))}>"


@dataclass
class RunResult:
    """The results of a run, in file order; ``run["login"]`` by name."""

    results: list[RequestResult] = field(default_factory=list)
    secrets: Secrets = field(default_factory=Secrets, repr=False)
    show_secrets: bool = False

    def __iter__(self) -> Iterator[RequestResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, key: int | str) -> RequestResult:
        if isinstance(key, str):
            try:
                return self.named[key]
            except KeyError:
                raise KeyError(f"no request named {key!r}") from None
        return self.results[key]

    @property
    def named(self) -> dict[str, RequestResult]:
        return {r.name: r for r in self.results if r.name}

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[RequestResult]:
        """The requests that ran and failed (an error, a failed check)."""
        return [r for r in self.results if not r.passed and not r.skipped]

    def to_frame(self):
        """One row per request: name, method, url (redacted), status, seconds,
        checks passed and failed, error; a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_frame() needs pandas: pip install pandas") from None
        from .report import rows

        return pd.DataFrame(rows(self, show_secrets=self.show_secrets))

    def __repr__(self) -> str:
        from .report import render_table

        return render_table(self, show_secrets=self.show_secrets)


class RunObserver(Protocol):
    """How a view watches a run: ``started`` before each request is sent (its
    ``options`` None when expansion failed) may return a ``trace`` for that
    fetch's events; ``finished`` gets each result, skipped ones too."""

    def started(
        self, index: int, block: HttpRequestBlock, options: FetchOptions | None
    ) -> Callable[[Event], None] | None: ...

    def finished(self, index: int, result: RequestResult) -> None: ...


async def arun_http(
    source: str | os.PathLike | HttpFile,
    *,
    env: str | None = None,
    env_file: str | os.PathLike | None = None,
    client: AsyncClient | None = None,
    namespace: dict[str, Any] | None = None,
    observer: RunObserver | None = None,
    stop_on_failure: bool = False,
    show_secrets: bool = False,
) -> RunResult:
    """Run every request of ``source`` (a path or a parsed ``HttpFile``) in
    order and check its ``??`` lines.

    ``env`` names the environment of ``http-client.env.json`` (and its private
    file) beside the file, ``env_file`` another one; ``namespace`` supplies
    ``{{name}}`` after those (a notebook passes its variables). One client for
    the whole run, so its cookie jar carries a login from one request to the
    next (``# @no-cookie-jar``: that request sends and stores none): ``client``,
    or one the run opens and closes. A file that cannot be read or parsed
    raises (``OSError``, ``InvalidRequest``) before anything is sent."""
    http = source if isinstance(source, HttpFile) else read_http_file(source)
    environment = load_environment(env, http.directory, env_file=env_file)
    scope = Scope(
        file_variables=http.variables,
        environment=environment,
        namespace=namespace,
        results={},
        directory=http.directory,
    )
    run = RunResult(secrets=scope.secrets, show_secrets=show_secrets)
    if client is None:
        async with AsyncClient() as own:
            await _run(http, scope, own, run, namespace, observer, stop_on_failure)
    else:
        await _run(http, scope, client, run, namespace, observer, stop_on_failure)
    return run


async def _run(http, scope, client, run, namespace, observer, stop_on_failure) -> None:
    for index, block in enumerate(http.requests):
        if stop_on_failure and run.failures:
            result = RequestResult(block, skipped=True, secrets=scope.secrets)
        else:
            result = await _one(index, block, scope, client, namespace, observer, run.show_secrets)
        run.results.append(result)
        if block.name:
            # Before the next request expands: {{login.response.body.$.token}}.
            scope.results[block.name] = result
        if observer is not None:
            observer.finished(index, result)
    if not run.show_secrets:
        # A value may become a secret only after a check quoted it (a token a
        # later request sends as its Bearer): each result scrubbed with them all.
        for result in run.results:
            for a in result.assertions:
                a.actual, a.message = scope.secrets.scrub(a.actual), scope.secrets.scrub(a.message)
            if isinstance(result.error, FetchError):
                result.error.scrub(scope.secrets)


async def _one(index, block, scope, client, namespace, observer, show_secrets) -> RequestResult:
    result = RequestResult(block, secrets=scope.secrets)
    request_scope = scope.for_request(block)
    try:
        result.options = to_options(block, request_scope)
    except FetchError as exc:  # an undefined {{name}}, a body file missing: nothing sent
        result.error = exc.scrub(scope.secrets)
    trace = observer.started(index, block, result.options) if observer is not None else None
    if result.options is None:
        return result
    opts = result.options
    kwargs = dict(opts.fetch_kwargs)
    if trace is not None:
        kwargs["trace"] = trace
    if "no-cookie-jar" in block.settings:
        kwargs["cookies"] = False  # this request neither sends nor stores cookies
    try:
        result.response = await client.fetch(opts.url, opts.method, **kwargs)
    except FetchError as exc:
        setting = _TIMEOUT_SETTINGS.get(getattr(exc, "timeout", None) or "")
        if isinstance(exc, FetchTimeout) and setting:
            exc.with_hint(
                f"{exc.timeout} is {exc.seconds} s: if the server is just slow, raise it"
                f" with '{setting} SECONDS' above the request line"
            )
        result.error = exc.scrub(scope.secrets)
        return result
    # What it sent may come back in a body (an echo): scrubbed from every check;
    # so are the credentials it was given (a Set-Cookie session), which a check
    # would quote ("?? header set-cookie contains ...: got ..."), a secret-named
    # field's too ("X-Auth-Token: ..." handed out by a login).
    # A redirected request's URL is the server's Location: bounded as its.
    scope.secrets.add_request(result.response.request, served=bool(result.response.history))
    for response in (*result.response.history, result.response):
        scope.secrets.add_headers(
            [
                (name, value)
                for name, value in response.headers.items()
                if name.lower() in SENSITIVE_HEADERS or is_secret_name(name)
            ],
            served=True,  # the server's: bounded, never crowding out the user's own
        )
    result.assertions = [
        check(
            a,
            result.response,
            request_scope,
            namespace,
            show_secrets=show_secrets,
            source=block.source,
        )
        for a in block.assertions
    ]
    return result
