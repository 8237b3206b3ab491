"""Load runs: many fetches of one request, summarised as percentiles per phase.

>>> result = await load("http://127.0.0.1:8000/get", n=1000, concurrency=32)  # doctest: +SKIP
>>> result.percentile("p95", "total")                                           # doctest: +SKIP
0.0123

Only against servers you own: a target outside loopback is refused, before
anything is sent, unless ``allow_remote=True`` (exactly ``True``: ``"false"`` or
``1`` is an ``InvalidRequest``). Loopback means an IP literal in 127.0.0.0/8 or
``::1``, ``localhost`` and ``*.localhost`` (RFC 6761 section 6.3), or a name the
client's ``hostname_mapping`` maps to one of those. Any other name is refused
without asking DNS; map it (``client_options={"hostname_mapping": {name:
"127.0.0.1"}}``) or say ``allow_remote=True``. A name is only a first check: a
``resolver=``, DNS or a rebinding answer could still send ``localhost`` elsewhere,
so the run's workers tell the connector to reach loopback only, and every
address is checked right before its connect; one outside loopback stops the run
with an ``InvalidRequest`` naming it, before a packet is sent to it. A proxy that
is not on loopback is refused the same way, and redirects are not followed (a
3xx is counted as such) unless ``allow_remote=True``: a redirect could lead
anywhere.

With ``compare=`` each configuration has its own ``concurrency`` workers (and
its own client, unless ``client=`` is given), and the starts alternate A, B, A,
B: neither holds more than ``concurrency`` requests in flight, and the faster
one keeps to the slower one's pace, so both meet the same server over time.

Error messages kept (``error_messages``, the view) are scrubbed of what the
request sent as a secret (``core.redact``): a server may echo a token in its
reason phrase.

Memory is bounded whatever ``n`` or ``duration``: each configuration keeps one
``Histogram`` per timing phase (2,048 counters), the status and error counts,
and the first message of each kind of error; every Response is dropped as soon
as it is counted.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import FetchError, InvalidRequest
from ..core.events import PHASES
from ..core.proxies import as_proxy, is_loopback, is_loopback_address
from ..core.redact import Secrets, redact_url
from ..core.urls import URL
from .async_client import AsyncClient
from .connect import LOOPBACK_ONLY

#: A request that starts this many seconds after its intended time (``rate=``)
#: is late: the client did not keep up with the arrival rate. 10 ms is well
#: above a loaded loop's timer jitter.
LATE = 0.010
#: The most workers (and so connections) one configuration runs: each holds a
#: socket, and 1,000 is below the usual 1,024 file descriptors of a process.
MAX_CONCURRENCY = 1000
#: The percentiles shown and kept in ``as_dict()``.
PERCENTILES = (50, 95, 99)
#: The longest a worker runs before it yields to the loop: a fetch that
#: answers without suspending (a replayed answer, a miss, a refused option)
#: would otherwise run request after request and freeze the notebook.
SLICE = 0.005


class Histogram:
    """Counts of values (seconds) in log-linear buckets, as HdrHistogram does:
    each power of two from 2**-20 s (~1 µs) to 2**12 s is cut into 64 equal
    buckets, so a bucket is at most 1/64 of its lower bound wide and its
    midpoint is within ``RELATIVE_ERROR`` (1/128, 0.78 %) of any value in it.
    ``add`` is O(1) (``math.frexp``, one list index); the memory is 2,048 ints
    whatever the count. Values outside the range land in the first or last
    bucket; ``min`` and ``max`` are exact, and percentiles are clamped to them.

    Hand-written rather than a dependency (hdrhistogram, ddsketch): ~50 lines,
    pure Python (no compiled wheel to find in Pyodide or on a new Python),
    exactly the error bound stated here."""

    SUB = 64
    EMIN = -19  # math.frexp(2**-20) == (0.5, -19)
    EMAX = 12  # values below 2**12 s
    BUCKETS = (EMAX - EMIN + 1) * SUB
    RELATIVE_ERROR = 1 / (2 * SUB)

    __slots__ = ("counts", "count", "sum", "min", "max")

    def __init__(self) -> None:
        self.counts = [0] * self.BUCKETS
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @classmethod
    def index(cls, value: float) -> int:
        if value <= 0:
            return 0
        mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= m < 1
        if exponent < cls.EMIN:
            return 0
        if exponent > cls.EMAX:
            return cls.BUCKETS - 1
        return (exponent - cls.EMIN) * cls.SUB + int((mantissa - 0.5) * 2 * cls.SUB)

    @classmethod
    def midpoint(cls, index: int) -> float:
        exponent, sub = divmod(index, cls.SUB)
        return math.ldexp(0.5 + (sub + 0.5) / (2 * cls.SUB), exponent + cls.EMIN)

    def add(self, value: float) -> None:
        self.counts[self.index(value)] += 1
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def percentiles(self, qs: tuple[float, ...]) -> list[float | None]:
        """The nearest-rank percentiles ``qs`` (each in (0, 100]) in one pass:
        the value of rank ceil(q/100 * count), within RELATIVE_ERROR."""
        if not self.count:
            return [None] * len(qs)
        ranks = sorted((max(1, math.ceil(q / 100 * self.count)), i) for i, q in enumerate(qs))
        out: list[float | None] = [None] * len(qs)
        seen, r = 0, 0
        for index, n in enumerate(self.counts):
            if not n:
                continue
            seen += n
            while r < len(ranks) and ranks[r][0] <= seen:
                rank, i = ranks[r]
                # The top rank is the maximum, known exactly.
                value = self.max if rank >= self.count else self.midpoint(index)
                out[i] = min(max(value, self.min), self.max)
                r += 1
            if r == len(ranks):
                break
        return out

    def bins(
        self, count: int = 40, low: float | None = None, high: float | None = None
    ) -> list[tuple[float, float, int]]:
        """``count`` log-spaced (low, high, n) bins from ``low`` to ``high`` (default:
        min to max; two charts share a scale with the same bounds), for a chart."""
        if not self.count:
            return []
        low = max(self.min if low is None else low, 2.0**-20)
        high = max(self.max if high is None else high, low)
        if high <= low * (1 + self.RELATIVE_ERROR):
            return [(low, high, self.count)]
        step = math.log(high / low) / count
        out = [[low * math.exp(step * i), low * math.exp(step * (i + 1)), 0] for i in range(count)]
        for index, n in enumerate(self.counts):
            if n:
                mid = min(max(self.midpoint(index), low), high)
                out[min(count - 1, int(math.log(mid / low) / step))][2] += n
        return [(a, b, n) for a, b, n in out]


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from a number (seconds) or text: ``"200ms"``, ``"1.5s"``, ``"300us"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|m)?\s*", str(value))
        if match is None:
            raise InvalidRequest(f"{what}: {value!r} is not a duration such as '200ms' or 1.5")
        unit = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}
        seconds = float(match.group(1)) * unit[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidRequest(f"{what}: {value!r} must be a finite duration >= 0")
    return seconds


# -- service levels -------------------------------------------------------------------
class SLOCheck:
    """One service-level objective: ``name`` (``"p95.total"``, ``"errors"``,
    ``"rps"``), its ``limit``, the ``actual`` value (None: no samples) and
    ``passed``."""

    __slots__ = ("name", "limit", "actual", "passed")

    def __init__(self, name: str, limit: float, actual: float | None, passed: bool):
        self.name, self.limit, self.actual, self.passed = name, limit, actual, passed

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "limit": self.limit,
            "actual": self.actual,
            "passed": self.passed,
        }

    def describe(self) -> str:
        unit = _unit(self.name)
        actual = "no samples" if self.actual is None else unit(self.actual)
        op = ">=" if self.name == "rps" else "<="
        return f"{self.name} {actual} {'✓' if self.passed else '✗'} ({op} {unit(self.limit)})"

    def __repr__(self) -> str:
        return f"<SLOCheck {self.describe()}>"


def _unit(name: str) -> Callable[[float], str]:
    if name == "rps":
        return lambda v: f"{v:.1f}/s"
    if name == "errors":
        return lambda v: f"{v:g}"
    if name == "error_rate":
        return lambda v: f"{v * 100:.2f}%"
    return format_seconds


def format_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f}µs"
    if value < 1:
        return f"{value * 1e3:.3g}ms"
    return f"{value:.3g}s"


_SLO_KEY = re.compile(r"(p\d+(?:\.\d+)?|mean|max)\.([a-z]+)")


def _number(key: str, value: object) -> float:
    """A finite limit >= 0 from a number or its text (``"1%"`` for error_rate)."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        percent = key == "error_rate" and text.endswith("%")
        try:
            number = float(text[:-1] if percent else text) / (100 if percent else 1)
        except ValueError:
            pass
    if number is None or not math.isfinite(number) or number < 0:
        example = "'1%' or 0.01" if key == "error_rate" else "500"
        raise InvalidRequest(f"slo[{key!r}] is a finite number >= 0 ({example}), not {value!r}")
    return number


def parse_slo(
    slo: Mapping[str, object] | None, rate: float | None = None
) -> list[tuple[str, float]]:
    """``{"p95.total": "200ms", "errors": 0, "error_rate": "1%", "rps": 500}`` as
    (name, limit) pairs, checked before anything is sent: a limit that could only
    fail after the whole run (``p0``, ``nan``, ``p95.lag`` without ``rate=``:
    there is no lag without a schedule) is an ``InvalidRequest`` now."""
    out: list[tuple[str, float]] = []
    for key, value in (slo or {}).items():
        if key == "errors":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidRequest(f"slo['errors'] is a count >= 0, not {value!r}")
            out.append((key, float(value)))
        elif key in ("error_rate", "rps"):
            out.append((key, _number(key, value)))
        else:
            match = _SLO_KEY.fullmatch(key) if isinstance(key, str) else None
            if match is None or match.group(2) not in (*PHASES, "total", "lag"):
                raise InvalidRequest(
                    f"slo key {key!r}: use 'p95.total' (pNN, mean or max, then a phase:"
                    f" {', '.join((*PHASES, 'total'))}), 'errors', 'error_rate' or 'rps'"
                )
            stat, phase = match.groups()
            if stat.startswith("p") and not 0 < float(stat[1:]) <= 100:
                raise InvalidRequest(f"slo key {key!r}: a percentile is in (0, 100]")
            if phase == "lag" and rate is None:
                raise InvalidRequest(
                    f"slo key {key!r}: lag is how late a request started on the rate="
                    " schedule; without rate= there is none, so it could never pass"
                )
            out.append((key, parse_duration(value, f"slo[{key!r}]")))
    return out


# -- what one configuration measured ----------------------------------------------------
def _same(text: str, response=None) -> str:
    return text


class Stats:
    """The running counts of one configuration: cheap to update (O(1) per response)."""

    def __init__(self) -> None:
        self.phases: dict[str, Histogram] = {}
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.messages: dict[str, str] = {}  # the first message of each kind of error
        self.started = 0
        self.completed = 0
        self.late = 0
        self.max_lag = 0.0

    def _add(self, phase: str, value: float) -> None:
        hist = self.phases.get(phase)
        if hist is None:
            hist = self.phases[phase] = Histogram()
        hist.add(value)

    def record(self, response, lag: float | None, scrub: Callable[..., str] = _same) -> None:
        self.completed += 1
        timing = response.timing
        for phase in PHASES:
            value = getattr(timing, phase)
            if value is not None:
                self._add(phase, value)
        total = timing.total or 0.0
        if lag is not None:
            # Coordinated omission: latency counts from the intended start,
            # so a client that fell behind does not hide the wait it caused.
            self._add("lag", lag)
            total += lag
        self._add("total", total)
        code = response.status_code
        self.statuses[code] += 1
        if code >= 400:
            kind = f"{code // 100}xx"
            self.errors[kind] += 1
            if kind not in self.messages:
                # A server may echo what it was sent (a token) in its reason phrase.
                self.messages[kind] = scrub(f"{code} {response.reason}", response)[:300]

    def fail(self, exc: FetchError, scrub: Callable[..., str] = _same) -> None:
        self.completed += 1
        kind = type(exc).__name__
        self.errors[kind] += 1
        if kind not in self.messages:
            self.messages[kind] = scrub(str(exc))[:300]

    def started_one(self, lag: float | None) -> None:
        self.started += 1
        if lag is not None:
            self.max_lag = max(self.max_lag, lag)
            if lag > LATE:
                self.late += 1


class PhaseStats:
    """One phase's summary: ``count``, ``min``, ``mean``, ``max`` and ``p50``,
    ``p95``, ``p99`` (seconds, within ``Histogram.RELATIVE_ERROR``)."""

    __slots__ = ("phase", "count", "min", "mean", "max", "p50", "p95", "p99", "_hist")

    def __init__(self, phase: str, hist: Histogram):
        self.phase, self._hist = phase, hist
        self.count, self.mean = hist.count, hist.mean
        self.min, self.max = hist.min, hist.max
        self.p50, self.p95, self.p99 = hist.percentiles(PERCENTILES)

    def percentile(self, q: float) -> float | None:
        return self._hist.percentiles((q,))[0]

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("count", "min", "mean", "max", "p50", "p95", "p99")}

    def __repr__(self) -> str:
        return (
            f"<PhaseStats {self.phase} n={self.count} p50={format_seconds(self.p50)}"
            f" p95={format_seconds(self.p95)} p99={format_seconds(self.p99)}>"
        )


def _quantile(p: str | float) -> float:
    if isinstance(p, str):
        if not re.fullmatch(r"p\d+(\.\d+)?", p):
            raise ValueError(f"a percentile is 'p95' or a number in (0, 100], not {p!r}")
        p = float(p[1:])
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is in (0, 100], not {p!r}")
    return float(p)


class LoadResult:
    """What one configuration of a load run measured; usable in assertions::

        assert result.passed                          # every slo= objective held
        assert result.percentile("p95", "total") < 0.2
        assert result.errors == {} and result.error_count == 0

    ``phases`` maps each phase seen (queue, dns, connect, tls, send, wait,
    download, total; ``lag`` with ``rate=``) to its ``PhaseStats``. A phase
    counts only the requests that had it: ``connect`` and ``tls`` only those
    that opened a connection (a reused one has none). Latencies are of the
    responses received, whatever their status; a failed fetch counts in
    ``errors`` only. With ``rate=``, ``total`` counts from each request's
    *intended* start (``lag`` is how late it started), so a client that falls
    behind shows it in the percentiles instead of hiding it (coordinated
    omission); ``late`` counts the requests that started more than 10 ms late.

    ``errors`` counts failures by kind: the FetchError class (``ConnectError``,
    ``FetchTimeout``, ``NetworkError``, ...) or the status class of a response
    >= 400 (``4xx``, ``5xx``); ``statuses`` counts every response by its code.
    ``passed`` is None without ``slo=``, else whether every objective held (and
    the run was not cancelled: a partial run has not passed).
    """

    def __init__(
        self,
        label: str,
        url: str,
        method: str,
        stats: Stats,
        *,
        planned: int | None,
        rate: float | None,
        slo: list[tuple[str, float]],
        elapsed: float,
        cancelled: bool = False,
        finished: bool = True,
    ):
        self.label, self.url, self.method = label, url, method
        self.planned, self.rate = planned, rate
        self.completed, self.started = stats.completed, stats.started
        self.elapsed = elapsed
        self.statuses = dict(stats.statuses)
        self.errors = dict(stats.errors)
        self.error_messages = dict(stats.messages)
        self.late, self.max_lag = stats.late, stats.max_lag
        self.cancelled, self.finished = cancelled, finished
        self.phases = {
            phase: PhaseStats(phase, stats.phases[phase])
            for phase in (*PHASES, "lag", "total")
            if phase in stats.phases
        }
        self.slo = [self._check(name, limit) for name, limit in slo]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Completed requests per second over the run."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def behind(self) -> bool:
        """``rate=``: whether the client failed to start requests on time."""
        return self.late > 0

    @property
    def passed(self) -> bool | None:
        if not self.slo:
            return None
        return not self.cancelled and all(check.passed for check in self.slo)

    def percentile(self, p: str | float, phase: str = "total") -> float | None:
        """The percentile ``p`` (``"p95"`` or 95) of ``phase``, in seconds (None: no
        samples), within ``Histogram.RELATIVE_ERROR`` of the exact nearest rank."""
        stats = self.phases.get(phase)
        return None if stats is None else stats.percentile(_quantile(p))

    def _check(self, name: str, limit: float) -> SLOCheck:
        if name == "errors":
            actual: float | None = float(self.error_count)
        elif name == "error_rate":
            actual = self.error_count / self.completed if self.completed else None
        elif name == "rps":
            return SLOCheck(name, limit, self.throughput, self.throughput >= limit)
        else:
            stat, phase = name.split(".")
            stats = self.phases.get(phase)
            if stats is None:
                actual = None
            elif stat == "mean":
                actual = stats.mean
            elif stat == "max":
                actual = stats.max
            else:
                actual = stats.percentile(_quantile(stat))
        return SLOCheck(name, limit, actual, actual is not None and actual <= limit)

    def as_dict(self) -> dict:
        """Plain data (JSON-ready): numbers in seconds."""
        return {
            "label": self.label,
            "url": self.url,
            "method": self.method,
            "planned": self.planned,
            "started": self.started,
            "completed": self.completed,
            "elapsed": self.elapsed,
            "throughput": self.throughput,
            "rate": self.rate,
            "late": self.late,
            "max_lag": self.max_lag,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "error_count": self.error_count,
            "phases": {name: stats.as_dict() for name, stats in self.phases.items()},
            "slo": [check.as_dict() for check in self.slo],
            "passed": self.passed,
            "cancelled": self.cancelled,
            "relative_error": Histogram.RELATIVE_ERROR,
        }

    def dataframe(self):
        """A pandas DataFrame, a row per phase (seconds); needs pandas."""
        import pandas as pd

        return pd.DataFrame.from_dict(
            {name: stats.as_dict() for name, stats in self.phases.items()}, orient="index"
        )

    def text(self) -> str:
        """A few lines of plain text: what a script prints."""
        head = (
            f"{self.label}: {self.method} {self.url}" if self.label else f"{self.method} {self.url}"
        )
        of = f"/{self.planned}" if self.planned else ""
        lines = [
            head,
            f"  {self.completed}{of} requests in {self.elapsed:.2f}s ({self.throughput:.1f}/s),"
            f" {self.error_count} errors"
            + (f": {', '.join(f'{k} {v}' for k, v in self.errors.items())}" if self.errors else "")
            + (" (cancelled)" if self.cancelled else ""),
        ]
        for name, stats in self.phases.items():
            lines.append(
                f"  {name:<9} p50 {format_seconds(stats.p50):>8}  p95 {format_seconds(stats.p95):>8}"
                f"  p99 {format_seconds(stats.p99):>8}  (n={stats.count})"
            )
        if self.behind:
            lines.append(
                f"  behind the rate: {self.late} requests started > 10 ms late (at most"
                f" {format_seconds(self.max_lag)}); total counts from the intended start"
            )
        if self.slo:
            verdict = "PASS" if self.passed else "FAIL"
            lines.append(f"  SLO {verdict}: " + "; ".join(c.describe() for c in self.slo))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


class LoadComparison:
    """Two configurations run interleaved: ``a`` and ``b`` (``LoadResult``), and
    ``ratio(p, phase)`` = b / a. ``passed``: both passed their ``slo=``."""

    def __init__(self, a: LoadResult, b: LoadResult):
        self.a, self.b = a, b

    @property
    def results(self) -> tuple[LoadResult, LoadResult]:
        return (self.a, self.b)

    @property
    def passed(self) -> bool | None:
        if self.a.passed is None:
            return None
        return bool(self.a.passed and self.b.passed)

    @property
    def cancelled(self) -> bool:
        return self.a.cancelled

    def ratio(self, p: str | float = "p50", phase: str = "total") -> float | None:
        a, b = self.a.percentile(p, phase), self.b.percentile(p, phase)
        return None if not a or b is None else b / a

    def as_dict(self) -> dict:
        ratios = {
            phase: {f"p{q}": self.ratio(q, phase) for q in PERCENTILES}
            for phase in self.a.phases
            if phase in self.b.phases
        }
        return {
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "ratio": ratios,
            "passed": self.passed,
        }

    def dataframe(self):
        """A pandas DataFrame: a row per (phase, percentile), the columns a, b, ratio."""
        import pandas as pd

        rows = [
            (phase, f"p{q}", self.a.percentile(q, phase), self.b.percentile(q, phase))
            for phase in self.a.phases
            if phase in self.b.phases
            for q in PERCENTILES
        ]
        frame = pd.DataFrame(rows, columns=["phase", "stat", self.a.label, self.b.label])
        frame["ratio"] = [b / a if a else None for _p, _s, a, b in rows]
        return frame.set_index(["phase", "stat"])

    def text(self) -> str:
        lines = [self.a.text(), self.b.text()]
        for q in PERCENTILES:
            ratio = self.ratio(q)
            if ratio is not None:
                lines.append(f"  p{q} total {self.b.label}/{self.a.label}: {ratio:.2f}x")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


# -- the run ------------------------------------------------------------------------
class Target:
    """One configuration: a URL, method, fetch options and the client to use;
    ``index`` its place in the run (A: 0, B: 1), ``issued`` its requests so far."""

    def __init__(
        self,
        label: str,
        url: str,
        method: str,
        client: AsyncClient,
        own: bool,
        options,
        index: int = 0,
    ):
        self.label, self.url, self.method = label, url, method
        self.client, self.own, self.options = client, own, options
        self.index, self.issued = index, 0
        self.shown_url = redact_url(url)
        self.stats = Stats()
        # What the messages kept must not spell: the URL's and the headers'
        # secrets (a failed fetch has no Request to ask).
        self.secrets = Secrets()
        self.secrets.add_url(url)
        headers = options.get("headers")
        if headers:
            items = headers.items() if hasattr(headers, "items") else headers
            self.secrets.add_headers([(str(k), str(v)) for k, v in items])

    def scrub(self, text: str, response=None) -> str:
        """``text`` without the secrets this configuration sends (and, given the
        ``response``, those its request and redirects sent). Called once per kind
        of error, not per request."""
        secrets = self.secrets
        if response is not None:
            secrets = Secrets()
            secrets.update(self.secrets)
            secrets.add_hops(response)
        return secrets.scrub(text)


def check_loopback(url: str, client: AsyncClient, options: Mapping[str, Any]) -> None:
    """Refuse a target (or a proxy) outside loopback: see the module docstring.
    The names are checked here; the addresses they resolve to, by the connector
    before each connect (``LOOPBACK_ONLY``), and those of the connections a
    given client already holds to the target, here: the run would reuse them."""
    parsed = URL.parse(url)
    for conn in list(client._pool.conns.get(parsed.origin, ())):
        address = conn.remote[0] if isinstance(conn.remote, tuple) else conn.remote
        if address is not None and not is_loopback_address(str(address)):
            raise InvalidRequest(
                f"load() refuses {parsed.hostname}: the client already has a connection"
                f" to it at {address}, not loopback; say allow_remote=True to load it",
                url=url,
            )
    host, _port = client._connector.mapping.apply(parsed.hostname, parsed.port)
    if not is_loopback(host):
        where = parsed.hostname if host == parsed.hostname else f"{parsed.hostname} (→ {host})"
        raise InvalidRequest(
            f"load() refuses {where}: not loopback. Load only servers you own; say"
            " allow_remote=True to load it (a name is not resolved to check it: map it"
            " with hostname_mapping, or use 127.0.0.1)",
            url=url,
        )
    if "proxy" in options:
        proxy = as_proxy(options["proxy"])
    else:
        proxy = client._proxies(parsed) if client._proxies else None
    if proxy is not None and not is_loopback(proxy.url.hostname):
        raise InvalidRequest(
            f"load() refuses to go through the proxy {proxy.url.hostname}: not loopback;"
            " say allow_remote=True, or proxy=None",
            url=url,
        )
    if proxy is not None and not is_loopback_address(parsed.hostname):
        # The proxy resolves the name itself (hostname_mapping is not sent to
        # it): a mapped or *.localhost name may be anywhere from there.
        raise InvalidRequest(
            f"load() refuses {parsed.hostname} through a proxy: the proxy resolves the"
            " name itself; use a loopback address (127.0.0.1), proxy=None, or"
            " allow_remote=True",
            url=url,
        )
    if options.get("follow_redirects"):
        raise InvalidRequest(
            "load() follows no redirect unless allow_remote=True: a redirect may leave loopback",
            url=url,
        )


class LoadRun:
    """A bounded load run (``load()`` builds one and runs it). The notebook view
    reads ``snapshot()`` while it runs; ``on_change`` is called after each
    request ends (keep it cheap: the view only asks for a throttled render)."""

    def __init__(
        self,
        url: str,
        n: int | None = 1000,
        concurrency: int = 32,
        duration: float | str | None = None,
        rate: float | None = None,
        method: str = "GET",
        *,
        client: AsyncClient | None = None,
        client_options: Mapping[str, Any] | None = None,
        compare: str | Mapping[str, Any] | None = None,
        slo: Mapping[str, object] | None = None,
        allow_remote: bool = False,
        label: str | None = None,
        on_change: Callable[[], None] | None = None,
        **options: Any,
    ):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise InvalidRequest(f"n must be a count >= 1 (or None with duration=), not {n!r}")
        if (
            not isinstance(concurrency, int)
            or isinstance(concurrency, bool)
            or not 1 <= concurrency <= MAX_CONCURRENCY
        ):
            raise InvalidRequest(
                f"concurrency must be an int from 1 to {MAX_CONCURRENCY:,}, not {concurrency!r}"
            )
        self.duration = None if duration is None else parse_duration(duration, "duration")
        if n is None and not self.duration:
            raise InvalidRequest("a load run needs n= or duration= (or both): it must end")
        if rate is not None and not (isinstance(rate, (int, float)) and 0 < rate < math.inf):
            raise InvalidRequest(f"rate must be requests per second > 0, not {rate!r}")
        if allow_remote is not True and allow_remote is not False:
            # "false" or 0.5 is not a yes: a guess either way could load a stranger's server.
            raise InvalidRequest(f"allow_remote is True or False, not {allow_remote!r}")
        self.n, self.concurrency, self.rate = n, concurrency, rate
        self.allow_remote = allow_remote
        self.slo = parse_slo(slo, rate)
        self.on_change = on_change
        options.setdefault("follow_redirects", False)
        self._owned: list[AsyncClient] = []

        def make(label, url, method, client, client_options, options) -> Target:
            own = client is None
            if own:
                # As many connections as workers: the load measures the server,
                # not a queue in front of it (each configuration has its own).
                kwargs = {"max_clients": concurrency}
                client = AsyncClient(**{**kwargs, **(client_options or {})})
                self._owned.append(client)
            if not allow_remote:
                check_loopback(url, client, options)
            return Target(label, url, method, client, own, options, len(self.targets))

        self.targets: list[Target] = []

        try:
            self.targets.append(
                make(
                    label or ("A" if compare is not None else ""),
                    url,
                    method,
                    client,
                    client_options,
                    options,
                )
            )
            if compare is not None:
                other = {"url": compare} if isinstance(compare, str) else dict(compare)
                b_url = other.pop("url", url)
                b_label = other.pop("label", "B")
                b_method = other.pop("method", method)
                b_client = other.pop("client", None)
                b_client_options = other.pop("client_options", None)
                if b_client is None and b_client_options is None:
                    b_client = client  # the same given client, or one of its own alike
                    b_client_options = client_options
                self.targets.append(
                    make(b_label, b_url, b_method, b_client, b_client_options, {**options, **other})
                )
            self._check_slo_phases()
        except BaseException:
            self._close_owned()
            raise
        self.driver = self.targets[0].client.driver
        self._started = 0  # requests started, all configurations: the next to start
        self._turns: dict[int, Any] = {}  # request number -> the Signal its worker waits on
        self._over = False
        self._slice = 0.0
        self._t0: float | None = None
        self._end: float | None = None
        self._fatal: BaseException | None = None
        self.finished = False
        self.cancelled = False

    def _check_slo_phases(self) -> None:
        """A phase no target can have would fail the SLO after the whole run
        with nothing measured: refuse it now."""
        never = {}
        if not any(t.options.get("follow_redirects") for t in self.targets):
            never["redirect"] = "load runs follow no redirect (follow_redirects=False)"
        if not any(URL.parse(t.url).scheme == "https" for t in self.targets):
            never["tls"] = "no target is https://"
        for key, _limit in self.slo:
            phase = key.partition(".")[2]
            if phase in never:
                raise InvalidRequest(f"slo key {key!r} can never be measured: {never[phase]}")

    @property
    def planned(self) -> int | None:
        """Requests planned per configuration (None: until the duration ends)."""
        return self.n

    def _close_owned(self) -> None:
        for client in self._owned:
            client.close()

    def _stop(self) -> None:
        """No request starts any more: wake every worker waiting for its turn."""
        self._over = True
        for signal in self._turns.values():
            signal.set()
        self._turns.clear()

    async def _next(self, target: Target) -> float | bool | None:
        """Start ``target``'s next request: its intended start (``rate=``; None
        without), or False when its part of the run is over.

        Request i of the run is configuration i % 2's (compare): the starts
        alternate A, B, A, B through the whole run, so both see the same server
        over time. Each configuration has its own ``concurrency`` workers, so
        neither holds more requests in flight than that, however slow; a
        request waits for the other configuration's previous one to start."""
        count = len(self.targets)
        if self.n is not None and target.issued >= self.n:
            return False
        number = target.issued * count + target.index
        target.issued += 1
        while number != self._started and not self._over and self._fatal is None:
            signal = self._turns[number] = self.driver.signal()
            await signal.wait(None)
        if self._over or self._fatal is not None:
            return False
        intended = None
        if self.rate is not None:
            intended = self._t0 + number / (self.rate * count)
        if self.duration is not None:
            when = self.driver.monotonic() if intended is None else intended
            if when >= self._t0 + self.duration:
                self._stop()  # the other configuration's next one must not wait forever
                return False
        self._started += 1
        following = self._turns.pop(self._started, None)
        if following is not None:
            following.set()
        return intended

    async def _worker(self, target: Target) -> None:
        if not self.allow_remote:
            # This worker's task only (each runs in a task of its own): the
            # connector then checks every address before it connects.
            LOOPBACK_ONLY.set(True)
        try:
            await self._requests(target)
        except BaseException:
            # Cancelled, or an error no fetch should raise: the workers waiting
            # for their turn must not wait for this one's next request forever.
            self._stop()
            raise

    async def _requests(self, target: Target) -> None:
        driver = self.driver
        while True:
            intended = await self._next(target)
            if intended is False:
                return
            if intended is not None:
                delay = intended - driver.monotonic()
                if delay > 0:
                    await driver.sleep(delay)
            now = driver.monotonic()
            lag = None if intended is None else max(0.0, now - intended)
            target.stats.started_one(lag)
            failed = False
            try:
                response = await target.client.fetch(target.url, target.method, **target.options)
            except InvalidRequest as exc:
                # The same for every request (a bad option, an address outside
                # loopback): stop, do not count it 1,000 times.
                self._fatal = exc
                self._stop()
                return
            except FetchError as exc:
                target.stats.fail(exc, target.scrub)
                failed = True
            else:
                target.stats.record(response, lag, target.scrub)
                del response  # its body goes now, not when the next one comes
            self._end = now = driver.monotonic()
            if self.on_change is not None:
                self.on_change()
            # A fetch may end without ever suspending (a refused replay, a
            # replayed answer): yield after a failure, and at least every
            # SLICE seconds of the run's own time, so the loop (the notebook,
            # a watchdog) runs on.
            if failed or now - self._slice > SLICE:
                self._slice = now
                await driver.sleep(0)

    async def run(self) -> LoadResult | LoadComparison:
        """Run to the end and return the result; cancelled (the task, a Cancel
        button), every fetch in flight is cancelled and the clients it opened are
        closed before the cancellation goes on."""
        try:
            self._t0 = self._slice = self.driver.monotonic()
            workers = self.concurrency if self.n is None else min(self.concurrency, self.n)
            # Created alternately (A, B, A, B...): the first starts interleave too.
            await self.driver.gather(
                [self._worker(target) for _ in range(workers) for target in self.targets]
            )
        except BaseException:
            self.cancelled = True
            raise
        finally:
            self.finished = True
            for client in self._owned:
                await client.aclose()
        if self._fatal is not None:
            raise self._fatal
        return self.snapshot()

    def elapsed(self) -> float:
        if self._t0 is None:
            return 0.0
        end = self._end if self.finished and self._end is not None else self.driver.monotonic()
        return max(0.0, end - self._t0)

    def snapshot(self) -> LoadResult | LoadComparison:
        """The result so far (the final one once the run ended)."""
        elapsed = self.elapsed()
        results = [
            LoadResult(
                t.label,
                t.shown_url,
                t.method,
                t.stats,
                planned=self.n,
                rate=self.rate,
                slo=self.slo,
                elapsed=elapsed,
                cancelled=self.cancelled,
                finished=self.finished,
            )
            for t in self.targets
        ]
        return results[0] if len(results) == 1 else LoadComparison(*results)


async def load(url: str, n: int | None = 1000, concurrency: int = 32, **kwargs: Any):
    """Run a bounded load against ``url`` (a server you own) and return its
    ``LoadResult`` (a ``LoadComparison`` with ``compare=``). See ``LoadRun`` and the
    module docstring; ``nbfetch.load`` adds the live view in a notebook."""
    return await LoadRun(url, n, concurrency, **kwargs).run()
