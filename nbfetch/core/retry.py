"""The retry policy: which failures are retried, how long to wait between
attempts (exponential backoff with jitter, or the server's ``Retry-After``).

Pure: no clock and no sleeping. The client passes the time in and does the
waiting with its driver.

>>> policy = Retry(total=3, backoff_factor=0.5, jitter=0)
>>> [policy.backoff(n) for n in (1, 2, 3)]
[0.5, 1.0, 2.0]
>>> policy.status_delay("GET", 503, "2", now=0.0, retries_done=0, replayable=True)
2.0
>>> policy.status_delay("POST", 503, None, now=0.0, retries_done=0, replayable=True) is None
True
"""

from __future__ import annotations

import math
import numbers
import random as _random
import re
from collections.abc import Callable, Iterable

from .errors import ConnectError, FetchError, FetchTimeout, InvalidRequest, TLSError
from .request import IDEMPOTENT_METHODS

#: Statuses that say "try again later" rather than "this is wrong": 429 (RFC
#: 6585 section 4), 502, 503, 504 (RFC 9110 15.6.3-15.6.5). Not 500: it is
#: usually a bug that the same request hits again (httpx-retries and
#: aiohttp-retry default to the same set, minus 500).
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def _real(value: object) -> float:
    """``value`` as a float if it is a real number (numpy's and Fraction too,
    not a bool), else NaN, which fails every range check below."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # 10**400 overflows
        return math.nan


def _seconds(name: str, value: object) -> float:
    """Finite seconds >= 0 (inf would wait for ever), or ``InvalidRequest``."""
    seconds = _real(value)
    if not 0 <= seconds < math.inf:
        raise InvalidRequest(f"Retry {name} must be a finite number >= 0, not {value!r}")
    return seconds


def _status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def _method(value: object) -> bool:
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2


def _members(value: object, name: str, what: str, valid: Callable[[object], bool]) -> tuple:
    """``value`` (a collection) as a tuple of its members, each ``valid``; a str
    is refused: it is iterable too, and methods="POST" would be {"P", "O", "S", "T"}."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidRequest(f"Retry {name} takes a collection of {what}, not {value!r}")
    members = tuple(value)
    for member in members:
        if not valid(member):
            raise InvalidRequest(f"Retry {name}: {member!r} is not one of the {what}")
    return members


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 section 10.2.3:
    delay-seconds or an HTTP-date, compared with ``now``, seconds since the
    epoch); None when absent or not one of the two forms. A date in the past
    means 0."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():  # 1*DIGIT: no sign, no fraction
        return float(value)
    # Imported here: an HTTP-date is rare, and email.utils costs ~8 ms to import.
    from datetime import timezone
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # asctime-date has no zone: HTTP-dates are GMT (5.6.7)
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # a year 99999999999 is no date: unparseable, as the RFC says to treat it
    return max(seconds - now, 0.0)


class Retry:
    """How a fetch is retried. ``retries=3`` is ``Retry(total=3)``.

    ``total``: attempts after the first. Before retry ``n`` (1, 2, ...) the wait
    is ``backoff_factor * 2 ** (n - 1)`` seconds, at most ``backoff_max``, then
    cut by up to ``jitter`` of itself at random (0: exact; 1: "full jitter",
    anywhere between 0 and the backoff) so that many clients do not come back
    at the same instant. A retried status with a ``Retry-After`` waits what the
    server asked instead (``respect_retry_after``), unless that is more than
    ``retry_after_max`` seconds: then the response is returned, not retried
    earlier than the server asked.

    Retried: a status in ``statuses`` for a method in ``methods`` (RFC 9110
    section 9.2.2's idempotent methods by default: add ``"POST"`` to retry a
    POST) whose body can be sent again; and, with ``connect_errors``, a failure
    to resolve or connect (or a connect_timeout), for any method: nothing was
    sent. A TLS certificate failure is not retried (it does not fix itself).
    """

    __slots__ = (
        "backoff_factor",
        "backoff_max",
        "connect_errors",
        "jitter",
        "methods",
        "random",
        "respect_retry_after",
        "retry_after_max",
        "statuses",
        "total",
    )

    def __init__(
        self,
        total: int = 3,
        *,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        jitter: float = 0.5,
        statuses: Iterable[int] = RETRY_STATUSES,
        connect_errors: bool = True,
        respect_retry_after: bool = True,
        retry_after_max: float = 60.0,
        methods: Iterable[str] = IDEMPOTENT_METHODS,
        random: Callable[[], float] = _random.random,
    ):
        if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total < 0:
            raise InvalidRequest(f"Retry total must be an int >= 0, not {total!r}")
        for name, flag in (
            ("connect_errors", connect_errors),
            ("respect_retry_after", respect_retry_after),
        ):
            if not isinstance(flag, bool):
                raise InvalidRequest(f"Retry {name} must be True or False, not {flag!r}")
        if not callable(random):
            raise InvalidRequest(
                f"Retry random must be a function returning [0, 1), not {random!r}"
            )
        statuses = _members(statuses, "statuses", "status codes (ints)", _status)
        methods = _members(methods, "methods", "method names", _method)
        self.total = int(total)
        self.backoff_factor = _seconds("backoff_factor", backoff_factor)
        self.backoff_max = _seconds("backoff_max", backoff_max)
        self.jitter = _real(jitter)
        if not 0 <= self.jitter <= 1:
            raise InvalidRequest(f"Retry jitter must be between 0 and 1, not {jitter!r}")
        self.statuses = frozenset(statuses)
        self.connect_errors = connect_errors
        self.respect_retry_after = respect_retry_after
        self.retry_after_max = _seconds("retry_after_max", retry_after_max)
        self.methods = frozenset(m.upper() for m in methods)
        self.random = random

    @classmethod
    def of(cls, value: int | Retry | None) -> Retry | None:
        """The policy for a ``retries=`` value: None or 0 is no retries."""
        if value is None or isinstance(value, Retry):
            return value if value is None or value.total else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(total=value) if value else None
        raise InvalidRequest(f"retries= takes an int >= 0 or a nbfetch.Retry, not {value!r}")

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first)."""
        # The exponent is capped: 2.0 ** 1024 overflows a float (Retry(total=1100)),
        # and 2 ** 62 times any factor is already past every backoff_max.
        base = min(self.backoff_factor * 2.0 ** min(retry - 1, 62), self.backoff_max)
        return base * (1 - self.jitter * self.random())

    def status_delay(
        self,
        method: str,
        status: int,
        retry_after: str | None,
        *,
        now: float,
        retries_done: int,
        replayable: bool,
    ) -> float | None:
        """The wait before retrying a response with ``status``, or None: return it.
        ``now`` is the wall clock (seconds since the epoch), for an HTTP-date."""
        if (
            retries_done >= self.total
            or status not in self.statuses
            or method not in self.methods
            or not replayable
        ):
            return None
        if self.respect_retry_after:
            asked = parse_retry_after(retry_after, now)
            if asked is not None:
                return asked if asked <= self.retry_after_max else None
        return self.backoff(retries_done + 1)

    def error_delay(self, exc: BaseException, *, retries_done: int) -> float | None:
        """The wait before retrying after ``exc`` (raised before anything was
        sent), or None: raise it."""
        if retries_done >= self.total or not self.connect_errors:
            return None
        if isinstance(exc, FetchTimeout):
            retried = exc.timeout == "connect_timeout"  # not the whole fetch's budget
        else:
            retried = isinstance(exc, ConnectError) and not isinstance(exc, TLSError)
            # A proxy that answered with a refusal (407, a CONNECT denied) would again.
            retried = retried and getattr(exc, "status", None) is None
        return self.backoff(retries_done + 1) if retried else None

    def __repr__(self) -> str:
        return (
            f"Retry(total={self.total}, backoff_factor={self.backoff_factor},"
            f" backoff_max={self.backoff_max}, jitter={self.jitter},"
            f" statuses={sorted(self.statuses)}, connect_errors={self.connect_errors},"
            f" respect_retry_after={self.respect_retry_after},"
            f" retry_after_max={self.retry_after_max}, methods={sorted(self.methods)})"
        )


#: The earlier attempts an error message lists at its start and at its end.
SHOWN_ATTEMPTS = 3


def attempts_error(exc: FetchError, reasons: list[str], note: str | None = None) -> FetchError:
    """``exc``, the last attempt's error, with the earlier attempts' failures
    in its message: "(after 3 attempts; attempt 1: ...; attempt 2: ...)" (the
    first and last ``SHOWN_ATTEMPTS`` of many, the others counted), and
    ``note`` (why there was no further attempt)."""
    parts = [f"after {len(reasons) + 1} attempts"] if reasons else []
    listed = [f"attempt {i}: {r}" for i, r in enumerate(reasons, 1)]
    if len(listed) > 2 * SHOWN_ATTEMPTS + 1:  # Retry(300): 25 KB of message, else
        hidden = len(listed) - 2 * SHOWN_ATTEMPTS
        listed[SHOWN_ATTEMPTS:-SHOWN_ATTEMPTS] = [f"{hidden} more attempts"]
    parts += listed
    parts += [note] if note else []
    exc.message = f"{exc.message} ({'; '.join(parts)})"
    exc.args = (exc.message, *exc.args[1:])
    return exc
