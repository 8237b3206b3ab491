"""Scale out: ``fetch_many`` across a Dask cluster, watched from the notebook.

    from dask.distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=2))
    results = await nbfetch.fetch_many(urls, cluster=client, max_clients=32)
    summary = await nbfetch.fetch_many(urls, cluster=client, output="crawl/")  # files, not bodies

The URLs are split into batches. Each Dask worker runs one nbfetch
``AsyncClient`` on its own event loop (reused across batches: one keep-alive
pool and one ``max_clients`` queue per worker). Results come back in input
order, each a ``FetchResult`` (status, headers, timing, sizes, and the body if
``keep_body``) or the error; with ``output=DIR`` the workers write one JSONL
file per batch instead and only small summaries come back.

Progress is aggregated, never shipped event by event: each batch keeps counters
and mergeable latency histograms per timing phase and publishes a snapshot at
most every ``progress_interval`` seconds through Dask's event topics. Jobs
running at once on one client share its subscription; each snapshot goes to its
own job's aggregate.

Politeness: ``per_host=N`` sends every URL of a host to one chain of batches
(one batch of a host runs at a time, anywhere in the cluster), and that batch's
client allows N connections to the host: the limit holds cluster-wide. A batch
lost with a dying worker is recomputed by Dask; a URL that fails is recorded
with its error, never retried forever; cancelling the awaiting cell (Cancel,
Kernel → Interrupt) cancels every batch and stops the requests already running
on the workers.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from distributed import WorkerPlugin

from ..core.errors import FetchError
from ..core.events import PHASES
from ..core.redact import redact_url

TOPIC = "nbfetch-progress"
# Latency histograms: log-spaced buckets from 10 us to ~100 s (mergeable sums).
BUCKETS = 70
_LOW = 1e-5


def _bucket(seconds: float) -> int:
    if seconds <= _LOW:
        return 0
    return min(BUCKETS - 1, int(math.log10(seconds / _LOW) * 10))


def _bucket_value(index: int) -> float:
    return _LOW * 10 ** ((index + 0.5) / 10)


def percentile(histogram: list[int], q: float) -> float | None:
    """The q-quantile (0..1) of a bucket histogram, to within a bucket (~12%)."""
    total = sum(histogram)
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen > rank:
            return _bucket_value(index)
    return _bucket_value(len(histogram) - 1)


@dataclass
class FetchResult:
    """What comes back from a worker for one URL (a Response does not travel)."""

    url: str
    status_code: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    timing: dict[str, float | None] = field(default_factory=dict)
    wire_bytes: int = 0
    body_size: int = 0
    body: bytes | None = None
    error: str | None = None
    error_type: str | None = None
    worker: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and self.status_code < 400

    def __repr__(self) -> str:
        # The dataclass repr, but ``url`` is the caller's string: redact its userinfo.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["url"] = redact_url(self.url)
        return f"FetchResult({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


# -- worker side ------------------------------------------------------------------------------
_worker_clients: dict[Any, Any] = {}


def _client_on_this_worker(max_clients: int, per_host: int | None):
    """One AsyncClient per worker loop and settings, reused by every batch."""
    from ..client import AsyncClient

    loop = asyncio.get_running_loop()
    key = (id(loop), max_clients, per_host)
    client = _worker_clients.get(key)
    if client is None or client.closed:
        client = AsyncClient(max_clients=max_clients, max_connections_per_host=per_host)
        _worker_clients[key] = client
    return client


def _batch_key(job: str, batch: int) -> str:
    return f"nbfetch-{job}-{batch}"


class _StopReleasedBatches(WorkerPlugin):
    """Cancels a running batch when the scheduler releases its key.

    Dask does not interrupt a running task whose key is released (cancelled, or
    its client gone): the worker marks it "cancelled" and lets it run to its end,
    so a batch would go on fetching for minutes. The worker tells its plugins of
    every task transition; this one cancels the batch's asyncio task then, which
    cancels its fetches (their connections are closed, no new request starts).
    """

    name = "nbfetch-stop-released-batches"
    idempotent = True  # registered by every job; the first registration stays

    def setup(self, worker) -> None:
        self.worker = worker
        self.running: dict[str, asyncio.Task] = {}

    def transition(self, key, start, finish, **kwargs) -> None:
        task = self.running.get(key)
        if task is not None and self._released(key):
            task.cancel()  # plugins run on the worker's event loop

    def _released(self, key: str) -> bool:
        ts = self.worker.state.tasks.get(key)
        return ts is None or ts.state in ("cancelled", "released", "forgotten")

    async def run(self, key: str, batch) -> Any:
        """Run the coroutine ``batch`` as the task of ``key``, cancellable by release."""
        if self._released(key):  # released between the worker's start and here
            batch.close()
            raise asyncio.CancelledError(f"{key} was released before it started")
        task = asyncio.ensure_future(batch)
        self.running[key] = task
        try:
            return await task
        finally:
            del self.running[key]


class _BatchStats:
    def __init__(self, job: str, batch: int, worker: str, size: int):
        self.job, self.batch, self.worker, self.size = job, batch, worker, size
        self.done = self.failed = self.in_flight = self.bytes = 0
        self.histograms = {p: [0] * BUCKETS for p in (*PHASES, "total")}
        self.last_sent = 0.0

    def record(self, result: FetchResult) -> None:
        if result.error is None:
            self.done += 1
            self.bytes += result.wire_bytes
            for phase, value in result.timing.items():
                if value is not None and phase in self.histograms:
                    self.histograms[phase][_bucket(value)] += 1
        else:
            self.failed += 1

    def snapshot(self, final: bool) -> dict:
        return {
            "job": self.job,
            "batch": self.batch,
            "worker": self.worker,
            "size": self.size,
            "done": self.done,
            "failed": self.failed,
            "in_flight": self.in_flight,
            "bytes": self.bytes,
            "histograms": self.histograms,
            "final": final,
            "time": time.time(),
        }


def _result(url: str, outcome, keep_body: bool, worker: str) -> FetchResult:
    if isinstance(outcome, FetchError):
        return FetchResult(
            url=url, error=str(outcome), error_type=type(outcome).__name__, worker=worker
        )
    r = outcome
    return FetchResult(
        url=url,
        status_code=r.status_code,
        reason=r.reason,
        headers=r.headers.items(),
        timing=r.timing.as_dict(),
        wire_bytes=r.wire_bytes,
        body_size=len(r.body),
        body=r.body if keep_body else None,
        worker=worker,
    )


async def run_batch(job: str, batch: int, *args: Any, after: Any = None):
    """Fetch one batch on the worker this task runs on (a coroutine: Dask runs it
    on the worker's event loop), until done or until the scheduler releases it.
    ``args`` are those of ``_fetch_batch``; ``after`` is the previous batch of the
    same host (per_host chains), only waited for."""
    from distributed import get_worker

    worker = get_worker()
    stopper = worker.plugins[_StopReleasedBatches.name]
    return await stopper.run(_batch_key(job, batch), _fetch_batch(worker, job, batch, *args))


async def _fetch_batch(
    worker,
    job: str,
    batch: int,
    urls: list[str],
    max_clients: int,
    per_host: int | None,
    rate_per_host: float | None,
    keep_body: bool,
    output: str | None,
    options: dict,
    progress_interval: float,
):
    client = _client_on_this_worker(max_clients, per_host)
    stats = _BatchStats(job, batch, worker.address, len(urls))
    pacers: dict[str, _Pacer] = {}

    def publish(final: bool = False) -> None:
        now = time.monotonic()
        if final or now - stats.last_sent >= progress_interval:
            stats.last_sent = now
            worker.log_event(TOPIC, stats.snapshot(final))

    async def one(url: str) -> FetchResult:
        if rate_per_host:
            host = urlsplit(url).netloc
            pacer = pacers.setdefault(host, _Pacer(rate_per_host))
            await pacer.wait()
        stats.in_flight += 1
        try:
            outcome = await client.fetch(url, **options)
        except FetchError as exc:
            outcome = exc
        finally:
            stats.in_flight -= 1
        result = _result(url, outcome, keep_body, worker.address)
        stats.record(result)
        publish()
        return result

    publish(final=False)
    results = await asyncio.gather(*[one(u) for u in urls])
    publish(final=True)
    if output is None:
        return results
    path = os.path.join(output, f"{job}-{batch:06d}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in results:
            row = r.__dict__.copy()
            row["body"] = None if r.body is None else r.body.decode("utf-8", errors="replace")
            f.write(json.dumps(row) + "\n")
    return {"file": path, "count": len(results), "failed": stats.failed}


class _Pacer:
    """At most ``rate`` requests a second to one host (within one batch chain)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _token(_result) -> None:
    """A tiny task that depends on a batch: the next batch of the same host waits
    for it without having the batch's results shipped to its worker."""
    return None


# -- notebook side ----------------------------------------------------------------------------
class Progress:
    """Aggregates the snapshots of every batch of one job (latest per batch)."""

    def __init__(self, job: str, total: int):
        self.job = job
        self.total = total
        self.batches: dict[int, dict] = {}
        self.started = time.monotonic()

    def handle(self, event) -> None:
        _, msg = event
        if isinstance(msg, dict) and msg.get("job") == self.job:
            self.batches[msg["batch"]] = msg

    def summary(self) -> dict:
        # A copy: a sync Client calls handle() on its own thread while the kernel reads.
        batches = list(self.batches.values())
        done = sum(b["done"] for b in batches)
        failed = sum(b["failed"] for b in batches)
        in_flight = sum(b["in_flight"] for b in batches if not b["final"])
        elapsed = max(time.monotonic() - self.started, 1e-6)
        workers: dict[str, dict] = {}
        for b in batches:
            w = workers.setdefault(
                b["worker"], {"done": 0, "failed": 0, "in_flight": 0, "batches": 0}
            )
            w["done"] += b["done"]
            w["failed"] += b["failed"]
            w["in_flight"] += 0 if b["final"] else b["in_flight"]
            w["batches"] += 1
        merged = {p: [0] * BUCKETS for p in (*PHASES, "total")}
        for b in batches:
            for phase, hist in b["histograms"].items():
                merged[phase] = [x + y for x, y in zip(merged[phase], hist, strict=True)]
        latency = {
            phase: {q: percentile(hist, q / 100) for q in (50, 95, 99)}
            for phase, hist in merged.items()
            if sum(hist)
        }
        return {
            "total": self.total,
            "done": done,
            "failed": failed,
            "in_flight": in_flight,
            "per_second": (done + failed) / elapsed,
            "elapsed": elapsed,
            "workers": workers,
            "latency": latency,
        }


class _Subscription:
    """The progress of every job running on one Dask client.

    A client holds one handler per topic (subscribing again replaces it, and
    unsubscribing ends it for every job), so the jobs share one subscription:
    each snapshot goes to its own job's Progress, and the last job to finish
    unsubscribes. The client is passed in, never held: a value of the weak-keyed
    ``_subscriptions`` that referenced its client would keep it alive forever.
    """

    def __init__(self):
        self.jobs: dict[str, Progress] = {}

    def __call__(self, event) -> None:
        _, msg = event
        progress = self.jobs.get(msg.get("job")) if isinstance(msg, dict) else None
        if progress is not None:
            progress.handle(event)

    def add(self, cluster, progress: Progress) -> None:
        if not self.jobs:
            cluster.subscribe_topic(TOPIC, self)
        self.jobs[progress.job] = progress

    def remove(self, cluster, job: str) -> None:
        del self.jobs[job]
        if not self.jobs:
            try:
                cluster.unsubscribe_topic(TOPIC)
            except Exception:  # the client may be closing
                pass


# Client -> its subscription; an entry goes with its client.
_subscriptions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _subscription(cluster) -> _Subscription:
    subscription = _subscriptions.get(cluster)
    if subscription is None:
        subscription = _subscriptions[cluster] = _Subscription()
    return subscription


def _shard(
    urls: list[str], batch_size: int, per_host: int | None
) -> list[tuple[str | None, list[int]]]:
    """(host or None, input indexes) batches. With per_host, each host's URLs
    form their own batches (chained later); otherwise plain slices."""
    if per_host is None:
        return [
            (None, list(range(i, min(i + batch_size, len(urls)))))
            for i in range(0, len(urls), batch_size)
        ]
    by_host: dict[str, list[int]] = {}
    for i, url in enumerate(urls):
        by_host.setdefault(urlsplit(url).netloc.lower(), []).append(i)
    out = []
    for host, indexes in by_host.items():
        for i in range(0, len(indexes), batch_size):
            out.append((host, indexes[i : i + batch_size]))
    return out


async def fetch_many_distributed(
    urls: Iterable[str],
    *,
    cluster,
    max_clients: int = 10,
    batch_size: int = 500,
    per_host: int | None = None,
    rate_per_host: float | None = None,
    keep_body: bool = False,
    output: str | None = None,
    watch: Callable[[Progress], Any] | None = None,
    progress_interval: float = 0.25,
    **options: Any,
):
    """See the module docstring. Returns the results in input order (a list of
    ``FetchResult``), or with ``output`` a list of per-batch file summaries.
    ``watch(progress)``, when given, returns a view whose ``refresh(final=...)``
    is called while the batches run (``nbfetch.fetch_many`` passes the live
    ``ClusterView`` in a notebook)."""
    urls = [str(u) for u in urls]
    job = uuid.uuid4().hex[:12]
    if output is not None:
        os.makedirs(output, exist_ok=True)
    # A sync client's calls that wait for a round trip (to the scheduler, the
    # workers, and here every worker importing nbfetch the first time) run in a
    # thread: the kernel's loop stays free for the view, Cancel clicks and other
    # cells' tasks. submit() and the topic calls only queue a message.
    await asyncio.to_thread(
        cluster.register_plugin, _StopReleasedBatches(), name=_StopReleasedBatches.name
    )
    progress = Progress(job, len(urls))
    subscription = _subscription(cluster)
    subscription.add(cluster, progress)
    # The view comes from above (the notebook layer passes ``watch``): this
    # adapter builds no widget.
    view = watch(progress) if watch is not None else None

    shards = _shard(urls, batch_size, per_host)
    futures = []
    last_of_host: dict[str, Any] = {}
    try:
        for number, (host, indexes) in enumerate(shards):
            after = last_of_host.get(host) if host is not None else None
            future = cluster.submit(
                run_batch,
                job,
                number,
                [urls[i] for i in indexes],
                max_clients,
                per_host,
                rate_per_host,
                keep_body,
                output,
                options,
                progress_interval,
                after=after,
                key=_batch_key(job, number),
                pure=False,
            )
            if host is not None:
                last_of_host[host] = cluster.submit(
                    _token, future, key=_batch_key(job, number) + "-done", pure=False
                )
            futures.append(future)
            await asyncio.sleep(0)  # each submit pickles a batch: yield between them
        while not all(f.done() for f in futures):
            if view is not None:
                view.refresh()
            await asyncio.sleep(0.1)
        batches = await asyncio.to_thread(cluster.gather, futures)
    except BaseException:
        # The scheduler releases the keys; the workers' plugin stops running batches.
        # In the executor at once and shielded: a second cancel of this task (a
        # second Interrupt) while it waits must not skip the cancel.
        cancelling = asyncio.get_running_loop().run_in_executor(
            None, cluster.cancel, futures + list(last_of_host.values())
        )
        await asyncio.shield(cancelling)
        raise
    finally:
        subscription.remove(cluster, job)
        if view is not None:
            view.refresh(final=True)
    if output is not None:
        return batches
    results: list = [None] * len(urls)
    for (_, indexes), batch in zip(shards, batches, strict=True):
        for i, result in zip(indexes, batch, strict=True):
            results[i] = result
    return results
