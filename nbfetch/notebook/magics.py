"""``%fetch`` and ``%%fetch``: fetches that run on the kernel's own loop.

A cleanup input transformer sees ``%fetch ...`` before IPython turns it into a
magic call and rewrites the line into an ``await``: the cell awaits the fetch,
the loop stays free (the live view updates, a Cancel click is handled, Kernel →
Interrupt cancels it), and ``r = %fetch URL`` binds the Response. A line that
cannot await (indented: inside a ``def``) is left to IPython and runs through the
sync path (nest-asyncio2 on the same loop). ``%fetch --bg`` returns a
``FetchHandle`` at once.

``%%fetch`` cells hold requests in the ``.http`` format of the VS Code REST
Client, JetBrains HTTP Client and httpyac (``nbfetch.httpfile``): ``{{name}}``
from the cell's ``@name = value`` lines, the ``--env`` environment, then the
kernel's variables; ``# @name`` binds a request's result to a kernel variable;
``??`` lines are checks, shown in the view's Checks tab::

    %%fetch --env dev
    # @name login
    POST {{base}}/token
    Content-Type: application/json

    {"user": "ada", "password": "{{password}}"}
    ?? status == 200
    ###
    GET {{base}}/me
    Authorization: Bearer {{login.response.body.$.access_token}}

``%fetch --file api.http [--env dev]`` runs a whole file with a live table
(``RunView``); ``%fetch curl ...`` (or a ``%%fetch`` cell holding one) runs a
pasted curl command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
import threading
import types

from ..client import AsyncClient
from ..client.api import default_client
from ..core.errors import FetchCancelled, FetchError, InvalidRequest
from ..core.redact import Secrets
from ..text.curl import parse_curl
from ..text.options import FetchOptions, HelpShown, parse_options
from ..text.render import render_text
from .tracebacks import mark_shown

HELPER = "__nbfetch_magics__"
_LINE = re.compile(r"^(?P<target>[A-Za-z_][\w.]*\s*=\s*)?%fetch(?P<args>(\s.*)?)$")


# -- the transformer ----------------------------------------------------------------------
def transform_cell(lines: list[str]) -> list[str]:
    """IPython cleanup transformer: ``%fetch`` lines and ``%%fetch`` cells become awaits."""
    if lines and lines[0].startswith("%%fetch"):
        options = lines[0][len("%%fetch") :].strip()
        body = "".join(lines[1:])
        return [f"await {HELPER}.fetch_cell({body!r}, {options!r});\n"]
    out = []
    lines = iter(lines)
    for line in lines:
        match = _LINE.match(line.rstrip("\n"))
        if match is None:
            out.append(line)
            continue
        target = match.group("target") or ""
        args = match.group("args").strip()
        # A pasted multi-line curl command: "\" at a line's end continues it,
        # as in a POSIX shell (the backslash and the newline go).
        while args.endswith("\\"):
            args = args[:-1] + " " + next(lines, "").strip()
        args = args.strip()
        # Bare "%fetch URL": the live view is the output; ";" keeps IPython from
        # printing the Response a second time.
        end = "" if target else ";"
        out.append(f"{target}await {HELPER}.fetch_line({args!r}){end}\n")
    return out


# -- running -------------------------------------------------------------------------------
def _ipython():
    from IPython import get_ipython

    return get_ipython()


def _expand(text: str) -> list[str]:
    """IPython's ``{var}`` / ``$var`` expansion, one shell word at a time: a word
    that is not a valid template (JSON such as ``{"a": 1}``) stays as written,
    instead of making the whole line fall back to no expansion at all. A template
    naming an undefined variable is an error before anything is sent (IPython
    would leave ``{nosuchvar}`` in the URL)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidRequest(f"%fetch: {exc}") from None
    ip = _ipython()
    if ip is None:
        return words
    expanded = [ip.var_expand(word) for word in words]
    for word, out in zip(words, expanded, strict=True):
        if out == word and _TEMPLATE_NAME.search(word):
            _check_template(word, ip.user_ns)
    return expanded


# "{name...}" or "$name": what IPython's var_expand tries to fill in.
_TEMPLATE_NAME = re.compile(r"\{[A-Za-z_]|(?<!\$)\$[A-Za-z_]")


def _check_template(word: str, namespace: dict) -> None:
    """Why IPython left ``word`` unexpanded, if it names a variable that is not
    there; other failures (JSON braces, a format spec) leave the word as written."""
    from IPython.utils.text import DollarFormatter

    try:
        DollarFormatter().vformat(word, [], namespace)
    except (KeyError, NameError) as exc:
        # "{name}" is a NameError from DollarFormatter's eval, "$name" a KeyError.
        name = str(getattr(exc, "name", None) or (exc.args[0] if exc.args else ""))
        if name.isidentifier():
            raise InvalidRequest(
                f"%fetch: name {name!r} is not defined",
                hint=f"define {name} first, or write {{{{{name}}}}} for a literal {{{name}}}",
            ) from None
    except AttributeError as exc:
        raise InvalidRequest(f"%fetch: {exc}") from None
    except Exception:  # not a template (JSON, a format spec): keep the word
        pass


def _client_for(opts: FetchOptions) -> tuple[AsyncClient, bool]:
    if opts.client_kwargs:
        return AsyncClient(**opts.client_kwargs), True
    return default_client(), False


def _display(obj) -> None:
    from IPython.display import display

    display(obj)


async def run_fetch(opts: FetchOptions):
    """Start one fetch on the running loop with a live view; returns the Response,
    or a ``FetchHandle`` at once with ``--bg``. The view always ends in a final
    state: done, or the error (invalid URL included), cancelled or interrupted."""
    from .live import FetchHandle, ResponseView

    view = (
        None if opts.quiet else ResponseView(opts.method, opts.url, show_secrets=opts.show_secrets)
    )
    if view is not None:
        if opts.stream:
            view.show_tab("Chunks")  # --stream: watch the chunks come in
        _display(view)
    try:
        task = _start(opts, view)
    except BaseException as exc:
        _fail(view, exc)
        raise
    if opts.background:
        return FetchHandle(task, view)
    with _watch_interrupt() as interrupted:
        try:
            return await task
        except asyncio.CancelledError:
            cancel = _our_cancellation(opts, view, interrupted())
            if cancel is None:
                raise  # someone else's: propagate it untouched
            _fail(view, cancel)
            raise cancel from None
        except KeyboardInterrupt:  # SIGINT with Python's own handler (no asyncio kernel)
            task.cancel()
            cancel = FetchCancelled("interrupted", url=opts.url, phase=_phase(view))
            _fail(view, cancel)
            raise cancel from None
        except BaseException as exc:
            _fail(view, exc)
            raise


def _start(opts: FetchOptions, view) -> asyncio.Future:
    client, own_client = _client_for(opts)
    kwargs = dict(opts.fetch_kwargs)
    if view is not None:
        kwargs["trace"] = view.trace
        if opts.stream or opts.output:  # a streaming view: Pause and a rate control
            kwargs["on_headers"] = view.attach_stream

    async def go():
        try:
            if opts.output:  # -o FILE: streamed to disk, never held in memory
                response = await client.download(opts.url, opts.output, opts.method, **kwargs)
            else:
                response = await client.fetch(opts.url, opts.method, **kwargs)
        except BaseException as exc:
            _fail(view, exc)  # a --bg view finishes too, awaited or not
            raise
        finally:
            if own_client:
                await client.aclose()
        if view is not None:
            view.attach_response(response)
        if opts.include or opts.timing or opts.output:
            print(_printed(response, opts))
        return response

    task = asyncio.ensure_future(go())
    if view is not None:
        view.bind(task)
    return task


def _printed(response, opts: FetchOptions, *more: Secrets) -> str:
    """What ``-i`` / ``--timing`` print (a cell's saved output): ``render_text``
    scrubbed of ``more`` secrets too, and of the secret-named fields of a JSON
    body (a login's ``access_token``), as the views are."""
    from .snapshot import add_body_secrets

    text = render_text(response, opts, head=opts.include)
    if opts.show_secrets:
        return text
    secrets = Secrets()
    for other in more:
        secrets.update(other)
    add_body_secrets(secrets, response)
    return secrets.scrub(text)


def _fail(view, exc: BaseException) -> None:
    """Drive the view to its final state; an error it shows is then one line in the cell."""
    if view is None:
        return
    view.fail(exc)
    if isinstance(exc, FetchError):
        mark_shown(exc)


def _phase(view) -> str | None:
    return (view.error or {}).get("phase") if view is not None else None


def _our_cancellation(opts: FetchOptions, view, interrupted: bool) -> FetchCancelled | None:
    """The FetchCancelled a CancelledError of the awaiting cell stands for, or None
    when the cancellation is not ours to turn into an error."""
    task = asyncio.current_task()
    if interrupted:
        # ipykernel turns Kernel → Interrupt (SIGINT) into cancelling the cell's
        # task: the cell ends here, as the Cancel button would end it.
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()  # the cancellation is consumed (Python 3.11+ bookkeeping)
        return FetchCancelled("interrupted", url=opts.url, phase=_phase(view))
    if view is not None and view.cancel_requested and not _current_task_cancelling():
        # The Cancel button: the fetch stopped, the cell did not fail on its own.
        return FetchCancelled("cancelled by the Cancel button", url=opts.url, phase=_phase(view))
    return None


@contextlib.contextmanager
def _watch_interrupt():
    """Notes a SIGINT (Kernel → Interrupt) while the cell awaits, passing it on to
    the handler in place (ipykernel's, which cancels the cell's task): only then
    is a CancelledError an interrupt rather than someone else's cancellation
    (an ``asyncio.timeout`` around the cell, a task group)."""
    seen = [False]
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield lambda: False  # signals reach the main thread only; SIG_DFL/SIG_IGN: nothing to chain
        return

    loop = asyncio.get_running_loop()

    def on_sigint(signum, frame):
        seen[0] = True
        previous(signum, frame)
        # ipykernel's handler cancels the cell's task from the signal handler,
        # but a loop asleep in select() (a fetch queued, connecting or waiting
        # for the head) would not see it until its next timer or byte: wake it.
        loop.call_soon_threadsafe(lambda: None)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: seen[0]
    finally:
        if signal.getsignal(signal.SIGINT) is on_sigint:
            signal.signal(signal.SIGINT, previous)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and getattr(task, "cancelling", lambda: 0)())


async def fetch_line(args: str):
    """What ``%fetch ARGS`` runs (awaited by the transformed cell): a URL with
    curl-like options, ``--file api.http [--env NAME]``, or a pasted ``curl ...``
    command. An argument error shows no view: it is the error, in two lines."""
    if _is_curl(args):
        return await run_fetch(parse_curl(args))
    try:
        opts = parse_options(_expand(args), need_url=False)
    except HelpShown:
        return None
    if opts.file is not None:
        return await fetch_file(opts)
    if not opts.url:
        raise InvalidRequest(
            "%fetch: a URL is needed", hint="%fetch URL, %fetch --file FILE.http or %fetch curl ..."
        )
    _no_env(opts, "%fetch URL")
    return await run_fetch(opts)


def _no_env(opts: FetchOptions, where: str) -> None:
    """``--env`` fills ``{{name}}`` templates: a plain URL has none to fill."""
    if opts.env is not None or opts.env_file is not None:
        raise InvalidRequest(
            f"{where}: --env and --env-file are for .http requests",
            hint="%fetch --file FILE.http --env NAME, or a %%fetch --env NAME cell",
        )


def _is_curl(text: str) -> bool:
    """A pasted curl command line (``curl`` as its first word)."""
    first = text.split(None, 1)
    return bool(first) and first[0] == "curl"


async def fetch_file(opts: FetchOptions):
    """``%fetch --file api.http``: every request of the file, in the live table;
    returns the ``RunResult`` and binds each named request's ``RequestResult``."""
    from .http import kernel_namespace, load_http, run_http

    http = load_http(opts.file)
    _check_run_options(opts, "%fetch --file", len(http.requests))
    if opts.stream or opts.include or opts.timing:
        raise InvalidRequest(
            "%fetch --file: --stream, -i and --timing cannot apply to the run's table",
            hint="a %%fetch cell of the requests shows each one's view",
        )
    namespace = kernel_namespace()
    client, own_client = _client_for(opts)
    try:
        run = await run_http(
            http,
            options=opts,
            env=opts.env,
            env_file=opts.env_file,
            client=client,
            namespace=namespace,
            show=not opts.quiet,
            show_secrets=opts.show_secrets,
        )
    finally:
        if own_client:
            await client.aclose()
    _bind_named(run, namespace)
    return run


def _bind_named(run, namespace: dict | None) -> None:
    """``# @name login``: the kernel variable ``login`` is its ``RequestResult``
    (a later cell's ``{{login.response.body.$.token}}`` and Python's
    ``login.response.json()``), as REST Client names a request. Replacing a
    variable that held something else says so in one line; a module
    (``# @name json``) is not replaced: ``run["json"]`` holds the result."""
    if namespace is None:
        return
    from ..httpfile.run import RequestResult

    for result in run:
        name = result.name
        if not (name and name.isidentifier()):
            continue
        held = namespace.get(name)
        if isinstance(held, types.ModuleType):
            print(
                f"# @name {name}: not bound, {name} is the module {held.__name__}"
                " (rename the request)",
                file=sys.stderr,
            )
            continue
        if name in namespace and not isinstance(held, RequestResult):
            print(
                f"# @name {name}: replaced the kernel variable {name} (a {type(held).__name__})",
                file=sys.stderr,
            )
        namespace[name] = result


class _CellViews:
    """The ``RunObserver`` of a ``%%fetch`` cell: a live ``ResponseView`` per
    request, with its Checks tab; the cell's options apply to every request."""

    def __init__(self, base: FetchOptions, secrets):
        self.base = base
        self.secrets = secrets
        self.views: dict = {}

    def started(self, index: int, block, options):
        if options is None:  # not expanded (an undefined {{name}}): the cell says why
            return None
        from .http import apply_options

        apply_options(self.base, options)
        if self.base.quiet:
            return None
        from .live import ResponseView

        view = ResponseView(
            options.method,
            options.url,
            show_secrets=self.base.show_secrets,
            assertions=block.assertions,
            secrets=self.secrets,
            options=options,
            cancellable=False,
        )
        if self.base.stream:
            view.show_tab("Chunks")
        _display(view)
        self.views[index] = view
        return view.trace

    def finished(self, index: int, result) -> None:
        view = self.views.get(index)
        response = result.response
        if view is not None:
            view.state.secrets.update(result.secrets)  # the run's, expanded so far
            if response is not None:
                view.attach_response(response)
            if result.error is not None:
                _fail(view, result.error)
            if result.assertions or view.state.assertions:
                view.attach_checks(result.assertions)
        if response is not None and (self.base.include or self.base.timing):
            # render_text knows the fetch's own secrets only: the private env
            # file's and .env's values, {{$processEnv}}, are the run's.
            print(_printed(response, self.base, self.secrets, result.secrets))

    def settle(self, run) -> None:
        """The run is over: its secrets (every value its scope expanded, from
        the private env file too) are masked in each view's saved output."""
        for view in self.views.values():
            view.scrub_also(run.secrets)

    def interrupted(self, exc: BaseException) -> None:
        """The run ended early (Kernel → Interrupt): no view stays live."""
        for view in self.views.values():
            if not view.finished:
                _fail(view, exc)


def _check_run_options(opts: FetchOptions, where: str, requests: int) -> None:
    """The line options a run of ``.http`` requests cannot apply are errors, not
    silently dropped: the run is awaited as a whole, and each request names its
    method and holds its own body."""
    one_cell_request = where == "%%fetch" and requests == 1
    if opts.fetch_kwargs.keys() & {"body", "json", "files", "data"} and not one_cell_request:
        # Given to every request, it would go with each GET and be refused by
        # each request with a body of its own: no run could use it. A cell of
        # one request takes it (%%fetch -F file=@data.csv: an upload).
        raise InvalidRequest(
            f"{where}: -d/--data, --json and -F/--form cannot apply to a run of .http"
            " requests: a request's body goes in the cell/file, under its headers",
            hint="POST URL, headers, a blank line, then the body; or %fetch URL -d ...",
        )
    refused = []
    if opts.background:
        refused.append("--bg")
    if opts.output:
        refused.append("-o/--output")
    implied = "POST" if opts.fetch_kwargs.keys() & {"body", "json", "files"} else "GET"
    if opts.method != implied:
        refused.append("-X/--request (each request names its method)")
    if opts.stream and requests > 1:
        refused.append("--stream with several requests")
    if refused:
        raise InvalidRequest(
            f"{where}: {', '.join(refused)} cannot apply to a run of .http requests",
            hint="run one request with %fetch URL for these; -H, --timeout, -u, -k ... apply",
        )


async def fetch_cell(cell: str, options: str = ""):
    """What a ``%%fetch [options] [NAME]`` cell runs: its requests (the ``.http``
    format: variables, ``# @name``, ``??`` checks), or a pasted curl command.

    Each request shows its live view. A named request (``# @name login``) binds
    its ``RequestResult`` to that kernel variable; the cell's result (its one
    ``RequestResult``, or the ``RunResult`` of several) is bound to NAME, as
    ``%%capture NAME`` does. A request that failed ends the cell with its
    error in one line (the view shows it); a failed check does not: it is
    shown failed, and ``NAME.passed`` says so."""
    ip = _ipython()
    namespace = ip.user_ns if ip is not None else {}
    base = (
        parse_options(_expand(options), prog="%%fetch", need_url=False)
        if options
        else FetchOptions(url="")
    )
    name = base.url
    if name and not name.isidentifier():
        raise InvalidRequest(f"%%fetch: {name!r} is not a variable name")
    if base.file is not None:
        raise InvalidRequest("%%fetch: --file is for %fetch (a cell holds its own requests)")
    if _is_curl(cell.strip()):
        _no_env(base, "%%fetch with a curl command")
        opts = parse_curl(cell.strip())
        opts.quiet, opts.include, opts.timing = base.quiet, base.include, base.timing
        opts.show_secrets = opts.show_secrets or base.show_secrets
        result = await run_fetch(opts)
    else:
        result = await _run_cell(cell, base, namespace)
    if name:
        namespace[name] = result
    return result


async def _run_cell(cell: str, base: FetchOptions, namespace: dict):
    from ..httpfile.parse import parse_http
    from ..httpfile.run import arun_http
    from .http import environment_secrets

    http = parse_http(cell, source="cell", directory=os.getcwd())
    if not http.requests:
        raise InvalidRequest("%%fetch: no request in the cell")
    _check_run_options(base, "%%fetch", len(http.requests))
    views = _CellViews(base, environment_secrets(http, base.env, base.env_file))
    client, own_client = _client_for(base)
    try:
        run = await arun_http(
            http,
            env=base.env,
            env_file=base.env_file,
            client=client,
            namespace=namespace,
            observer=views,
            show_secrets=base.show_secrets,
        )
    except BaseException as exc:
        views.interrupted(exc)
        raise
    finally:
        if own_client:
            await client.aclose()
    views.settle(run)
    _bind_named(run, namespace)
    for result in run:
        if result.error is not None:
            raise result.error
    return run[0] if len(run) == 1 else run


def fetch_magic(line: str, cell: str | None = None):
    """The magic as IPython calls it where the transformer could not turn it into
    an await (inside a ``def``): it runs on the kernel's loop through the sync path."""
    from ..client.api import run_sync

    if cell is not None:
        return run_sync(fetch_cell(cell, line))
    try:
        opts = parse_curl(line) if _is_curl(line) else parse_options(line, need_url=False)
    except HelpShown:
        return None
    if opts.file is not None:
        return run_sync(fetch_file(opts))
    if not opts.url:
        raise InvalidRequest("%fetch: a URL is needed")
    _no_env(opts, "%fetch URL")
    # With --bg, run_fetch returns the handle at once: nothing blocks.
    try:
        return run_sync(run_fetch(opts))
    except KeyboardInterrupt:  # run_sync cancelled the fetch: one line, as in a cell
        raise FetchCancelled("interrupted", url=opts.url) from None


def load(ip) -> None:
    ip.user_ns[HELPER] = sys.modules[__name__]
    if transform_cell not in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.append(transform_cell)
    ip.register_magic_function(fetch_magic, magic_kind="line_cell", magic_name="fetch")


def unload(ip) -> None:
    if transform_cell in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.remove(transform_cell)
    ip.user_ns.pop(HELPER, None)
