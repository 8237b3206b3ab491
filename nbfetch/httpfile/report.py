"""A run as plain text: one row per request (request, status, time, checks), and
under a failed one what failed. The ``nbfetch run`` command prints it; it is
the ``repr`` of a ``RunResult``.

    #  request                                 status  time  checks
    1  first: POST http://127.0.0.1:8000/post     200  9 ms  2 passed
    2  GET http://127.0.0.1:8000/get              200  1 ms  1 failed
       FAILED status == 201: got 200
    3  GET {{host}}/get?n={{count}}             error     -  -
       error: InvalidRequest: {{count}} is not defined (in api.http line 17 (URL)) [request]
       hint: define it with '@count = value' in the file or cell, ...
    3 requests: 1 passed, 2 failed, 0 skipped; checks: 2 passed, 1 failed
"""

from __future__ import annotations

from ..core.redact import redact_url

#: A request column wider than this is cut (a long URL is in the result itself).
MAX_REQUEST_WIDTH = 72
_GREEN, _RED, _DIM, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"


def _request(result) -> str:
    opts, block = result.options, result.block
    # The URL as sent when it was expanded, else as written (templates and all).
    method, url = (opts.method, opts.url) if opts is not None else (block.method, block.url)
    text = f"{method} {redact_url(url)}"
    return f"{block.name}: {text}" if block.name else text


def _status(result) -> str:
    if result.skipped:
        return "skipped"
    if result.response is None:
        return "error"
    return str(result.response.status_code)


def _time(result) -> str:
    seconds = result.duration
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _checks(result) -> str:
    good = sum(a.passed for a in result.assertions)
    bad = len(result.assertions) - good
    parts = [f"{good} passed"] * bool(good) + [f"{bad} failed"] * bool(bad)
    return ", ".join(parts) or "-"


def _notes(result) -> list[str]:
    """What failed, one line each: the error, each failed check, a bad status;
    and what of the block was not run (a JetBrains response handler)."""
    ignored = result.block.settings.get("ignored")
    return ([f"note: {ignored}"] if ignored else []) + _failures(result)


def _failures(result) -> list[str]:
    if result.error is not None:
        error = result.error
        lines = [f"error: {type(error).__name__}: {error}"]
        hint = getattr(error, "hint", None)
        return lines + ([f"hint: {hint}"] if hint else [])
    lines = [f"FAILED {a.message}" for a in result.assertions if not a.passed]
    if result.response is not None and not result.assertions and result.response.status_code >= 400:
        lines.append(
            f"FAILED status {result.response.status_code} (no ?? checks: below 400 passes)"
        )
    return lines


def describe(result) -> str:
    """One line: request, status, time, checks."""
    return f"{_request(result)} {_status(result)} {_time(result)} checks: {_checks(result)}"


def rows(run, *, show_secrets: bool = False) -> list[dict]:
    """One dict per request, the columns of ``RunResult.to_frame``."""
    scrub = (lambda t: t) if show_secrets else run.secrets.scrub
    out = []
    for r in run.results:
        response = r.response
        out.append(
            {
                "name": r.name,
                "method": r.options.method if r.options else r.block.method,
                "url": scrub(redact_url(r.options.url if r.options else r.block.url)),
                "status": None if response is None else response.status_code,
                "seconds": r.duration,
                "passed": sum(a.passed for a in r.assertions),
                "failed": sum(not a.passed for a in r.assertions),
                "ok": r.passed,
                "skipped": r.skipped,
                "error": None if r.error is None else scrub(f"{type(r.error).__name__}: {r.error}"),
            }
        )
    return out


def render_table(run, *, show_secrets: bool = False, colour: bool = False) -> str:
    """The run as a text table; ``colour``: ANSI colours (a terminal only).
    Secrets the run saw are scrubbed from every cell unless ``show_secrets``."""
    scrub = (lambda t: t) if show_secrets else run.secrets.scrub
    table = [("#", "request", "status", "time", "checks")]
    for i, r in enumerate(run.results, 1):
        request = scrub(_request(r))
        if len(request) > MAX_REQUEST_WIDTH:
            request = request[: MAX_REQUEST_WIDTH - 1] + "…"
        table.append((str(i), request, _status(r), _time(r), _checks(r)))
    widths = [max(len(row[c]) for row in table) for c in range(5)]

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    lines = []
    for i, row in enumerate(table):
        cells = [
            row[0].rjust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].rjust(widths[3]),
            row[4],
        ]
        line = "  ".join(cells).rstrip()
        if i == 0:
            lines.append(paint(line, _DIM))
            continue
        result = run.results[i - 1]
        lines.append(paint(line, _GREEN if result.passed else _DIM if result.skipped else _RED))
        indent = " " * (widths[0] + 2)
        lines.extend(paint(indent + scrub(note), _RED) for note in _notes(result))
    lines.append(summary(run))
    return "\n".join(lines)


def summary(run) -> str:
    """The last line: "3 requests: 2 passed, 1 failed, 0 skipped; checks: 4 passed, 1 failed"."""
    skipped = sum(r.skipped for r in run.results)
    failed = len(run.failures)
    passed = len(run.results) - failed - skipped
    checks = [a for r in run.results for a in r.assertions]
    good = sum(a.passed for a in checks)
    noun = "request" if len(run.results) == 1 else "requests"
    return (
        f"{len(run.results)} {noun}: {passed} passed, {failed} failed, {skipped} skipped;"
        f" checks: {good} passed, {len(checks) - good} failed"
    )
