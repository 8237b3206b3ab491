"""fetch_many across a real Dask LocalCluster: 2 worker processes on 127.0.0.1."""

import asyncio
import gc
import json
import os
import signal
import sys
import threading
import time
import traceback
import weakref

import pytest

import nbfetch
from nbfetch.demo import DemoServer

distributed = pytest.importorskip("distributed")
from nbfetch.dask import Progress, percentile  # noqa: E402  (needs distributed)

pytestmark = [pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def dask_client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def servers():
    a, b = DemoServer().start(), DemoServer().start()
    yield a, b
    a.stop()
    b.stop()


def test_ten_thousand_urls_all_present_in_order(dask_client, servers):
    a, _ = servers
    urls = [f"{a.url}/get?i={i}" for i in range(10_000)]
    results = asyncio.run(
        nbfetch.fetch_many(urls, cluster=dask_client, max_clients=16, batch_size=500, show=False)
    )
    assert [r.url for r in results] == urls
    assert all(r.ok for r in results)
    assert len({r.worker for r in results}) == 2  # both workers took part
    assert results[1234].timing["total"] > 0 and results[1234].body is None


def test_per_host_limit_holds_across_the_cluster(dask_client, servers):
    a, b = servers
    a.reset_stats()
    b.reset_stats()
    urls = [f"{s.url}/delay/0.005?i={i}" for i in range(600) for s in (a, b)]
    results = asyncio.run(
        nbfetch.fetch_many(
            urls, cluster=dask_client, max_clients=32, per_host=3, batch_size=100, show=False
        )
    )
    assert all(r.ok for r in results) and [r.url for r in results] == urls
    # counted by each server: never more than 3 of its requests at once
    assert a.stats["max_in_flight"] == 3 and b.stats["max_in_flight"] == 3


def test_failures_are_recorded_not_retried(dask_client, servers):
    a, _ = servers
    urls = [a.url + "/get", "http://127.0.0.1:1/refused", a.url + "/status/503"]
    results = asyncio.run(nbfetch.fetch_many(urls, cluster=dask_client, show=False))
    assert results[0].ok and results[2].status_code == 503
    assert results[1].error_type == "ConnectError" and "refused" in results[1].error.lower()


def test_a_worker_killed_mid_job_loses_nothing(dask_client, servers):
    a, _ = servers
    a.reset_stats()
    pids = dask_client.run(os.getpid)
    urls = [f"{a.url}/delay/0.002?i={i}" for i in range(4000)]

    async def main():
        job = asyncio.ensure_future(
            nbfetch.fetch_many(urls, cluster=dask_client, max_clients=8, batch_size=200, show=False)
        )
        while a.stats["requests"] < 800:
            await asyncio.sleep(0.02)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)  # by its PID; the nanny starts a new one
        return await job, victim

    results, victim = asyncio.run(main())
    assert [r.url for r in results] == urls and all(r.ok for r in results)
    assert victim not in dask_client.run(os.getpid).values()


def test_results_to_files_keep_the_notebook_small(dask_client, servers, tmp_path):
    import tracemalloc

    a, _ = servers
    urls = [f"{a.url}/bytes/2000?i={i}" for i in range(10_000)]
    tracemalloc.start()
    try:
        summaries = asyncio.run(
            nbfetch.fetch_many(
                urls,
                cluster=dask_client,
                max_clients=16,
                batch_size=1000,
                keep_body=True,
                output=str(tmp_path),
                show=False,
            )
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(s["count"] for s in summaries) == 10_000 and all(s["failed"] == 0 for s in summaries)
    rows = [json.loads(line) for f in sorted(tmp_path.glob("*.jsonl")) for line in f.open()]
    assert len(rows) == 10_000 and {r["body_size"] for r in rows} == {2000}
    # 10,000 bodies of 2 KB are 20 MB; the notebook process holds none of them
    assert peak < 8 * 1024 * 1024, peak


def test_progress_is_aggregated_while_the_job_runs(dask_client, servers):
    a, _ = servers
    seen = []
    original = Progress.handle

    def spy(self, event):
        seen.append(event[1].get("final"))
        original(self, event)

    Progress.handle = spy
    try:
        results = asyncio.run(
            nbfetch.fetch_many(
                [f"{a.url}/delay/0.01?i={i}" for i in range(400)],
                cluster=dask_client,
                max_clients=4,
                batch_size=100,
                show=False,
                progress_interval=0.1,
            )
        )
    finally:
        Progress.handle = original
    assert all(r.ok for r in results)
    assert seen.count(True) == 4  # one final snapshot per batch
    assert 4 < seen.count(False) < 400  # snapshots while running, never one per fetch


def test_cluster_view_shows_totals_workers_and_percentiles():
    from nbfetch.notebook.dask_view import ClusterView

    p = Progress("job", 10)
    hist = [0] * 70
    hist[30] = 9  # ~10 ms
    p.handle(
        (
            0,
            {
                "job": "job",
                "batch": 0,
                "worker": "tcp://127.0.0.1:1",
                "size": 10,
                "done": 9,
                "failed": 1,
                "in_flight": 0,
                "bytes": 900,
                "histograms": {"total": hist},
                "final": True,
                "time": 0,
            },
        )
    )
    view = ClusterView(p)
    assert "9 done" in view.summary.value and "1 failed" in view.summary.value
    assert "tcp://127.0.0.1:1" in view.workers.value
    assert "<td>total</td><td>11.2</td>" in view.latency.value
    assert 0.0099 < percentile(hist, 0.5) < 0.0126


def test_two_jobs_at_once_each_see_only_their_own_progress(dask_client, servers, monkeypatch):
    from nbfetch.dask import cluster as nbdask
    from nbfetch.notebook.dask_view import ClusterView

    a, _ = servers
    made = []

    class Recorded(Progress):
        def __init__(self, job, total):
            super().__init__(job, total)
            made.append(self)

    monkeypatch.setattr(nbdask, "Progress", Recorded)
    long = [f"{a.url}/delay/0.01?long={i}" for i in range(400)]
    short = [f"{a.url}/delay/0.01?short={i}" for i in range(100)]

    async def main():
        # the short job subscribes second and finishes first
        return await asyncio.gather(
            *(
                nbfetch.fetch_many(
                    urls, cluster=dask_client, max_clients=4, batch_size=50, show=False
                )
                for urls in (long, short)
            )
        )

    results = asyncio.run(main())
    assert [[r.url for r in rs] for rs in results] == [long, short]
    # The jobs register their worker plugin off the loop, so which one makes its
    # Progress first is not fixed: pair each with its job by its size.
    made.sort(key=lambda p: -p.total)
    assert [p.total for p in made] == [400, 100]
    for progress, urls in zip(made, (long, short), strict=True):
        summary = progress.summary()
        assert (summary["done"], summary["failed"]) == (len(urls), 0), summary
        assert len(progress.batches) == len(urls) // 50
        assert all(b["final"] for b in progress.batches.values())
        assert f"{len(urls):,} done" in ClusterView(progress).summary.value


def _executing(dask_worker) -> int:
    """Tasks running on this worker, including those Dask has marked cancelled."""
    return len(dask_worker.state.executing) + len(dask_worker.state.long_running)


def test_cancelling_the_job_stops_its_requests_on_the_workers(dask_client, servers):
    a, _ = servers
    # 2 workers x max_clients=8: 16 requests of 0.5 s at a time, ~32 new ones a second
    urls = [f"{a.url}/delay/0.5?i={i}" for i in range(2000)]
    deadline = time.monotonic() + 15
    while a.stats["in_flight"] and time.monotonic() < deadline:  # idle after earlier tests
        time.sleep(0.01)
    a.reset_stats()

    async def main():
        job = asyncio.ensure_future(
            nbfetch.fetch_many(urls, cluster=dask_client, max_clients=8, batch_size=50, show=False)
        )
        while a.stats["requests"] < 40:  # both workers are under way
            await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        cancelled = time.monotonic()
        at_cancel, in_flight = a.stats["requests"], a.stats["in_flight"]
        await asyncio.sleep(1)  # a window to count in, not a synchronisation
        after_1s = a.stats["requests"]
        await asyncio.sleep(1)
        return cancelled, at_cancel, in_flight, after_1s, a.stats["requests"]

    cancelled, at_cancel, in_flight, after_1s, after_2s = asyncio.run(main())
    # Only requests that replaced ones already in flight as the cancel travelled may
    # start, and none once a second has passed.
    assert after_1s - at_cancel <= in_flight
    assert after_2s == after_1s
    # nothing of the job is left running on the workers (Dask keeps a cancelled
    # task "executing" until it returns)
    while any(dask_client.run(_executing).values()) and time.monotonic() < cancelled + 10:
        time.sleep(0.05)
    assert not any(dask_client.run(_executing).values())
    assert not any(dask_client.processing().values())


async def _stalls(job):
    """Await ``job``; return its result, the most CPU the loop thread spent
    between two ticks of a 5 ms ticker (garbage collection left out: its cost
    follows the whole test process's heap), and where the loop thread was
    waiting during any gap of more than 100 ms.

    A sync Dask call blocks the loop without CPU (it sleeps until the client's
    own thread has the answer), so CPU time alone would not see it; the wall
    clock alone also counts the OS preempting the loop thread, or another
    thread holding the GIL, on a loaded 2-core machine. A monitor thread samples
    the loop thread's stack while a gap lasts: a sample inside Dask's ``sync``
    (or any threading wait) is a blocked loop, whatever the machine's load.
    """
    loop_thread = threading.get_ident()
    last_tick = [time.monotonic()]
    gc_cpu = [0.0, None]
    worst_cpu = 0.0
    waits: list[str] = []
    ticked = asyncio.Event()
    done = threading.Event()

    def on_gc(phase, info):
        if threading.get_ident() != loop_thread:
            return
        if phase == "start":
            gc_cpu[1] = time.thread_time()
        elif gc_cpu[1] is not None:
            gc_cpu[0] += time.thread_time() - gc_cpu[1]
            gc_cpu[1] = None

    def monitor():
        while not done.wait(0.01):
            if time.monotonic() - last_tick[0] <= 0.1:
                continue
            frame = sys._current_frames().get(loop_thread)
            stack = traceback.format_stack(frame) if frame is not None else []
            blocking = [
                line
                for line in stack
                if ("distributed" in line and "in sync" in line)
                or (
                    "threading.py" in line
                    and ("in wait" in line or "in acquire" in line or "in join" in line)
                )
            ]
            if blocking:
                waits.append("".join(stack[-8:]))

    async def ticker():
        nonlocal worst_cpu
        cpu, gc_before = time.thread_time(), gc_cpu[0]
        while True:
            await asyncio.sleep(0.005)
            now_cpu, now_gc = time.thread_time(), gc_cpu[0]
            worst_cpu = max(worst_cpu, (now_cpu - cpu) - (now_gc - gc_before))
            cpu, gc_before = now_cpu, now_gc
            last_tick[0] = time.monotonic()
            ticked.set()

    gc.callbacks.append(on_gc)
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    tick = asyncio.ensure_future(ticker())
    try:
        await ticked.wait()
        result = await job
        ticked.clear()
        await ticked.wait()  # a stall at the job's very end ends with this tick
    finally:
        tick.cancel()
        done.set()
        watcher.join()
        gc.callbacks.remove(on_gc)
    return result, worst_cpu, waits


def test_a_first_job_on_a_fresh_cluster_does_not_block_the_loop(servers):
    a, _ = servers
    # Fresh workers: the first job registers the plugin, and each worker imports
    # nbfetch to unpickle it; the module's cluster did that long ago. Many small
    # batches: collecting each batch's results is a round trip to a worker.
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        assert not any(client.run(lambda: "nbfetch" in sys.modules).values())
        urls = [f"{a.url}/get?i={i}" for i in range(120)]
        job = nbfetch.fetch_many(urls, cluster=client, batch_size=2, show=False)
        results, cpu, waits = asyncio.run(_stalls(job))
    assert [r.url for r in results] == urls and all(r.ok for r in results)
    assert cpu < 0.1, f"the loop ran {cpu * 1000:.0f} ms of CPU without yielding"
    assert not waits, "the loop waited on a thread or a Dask round trip:\n" + waits[0]


def test_a_client_is_collected_after_its_jobs(dask_client, servers):
    a, _ = servers
    client = distributed.Client(dask_client.scheduler.address, set_as_default=False)
    results = asyncio.run(nbfetch.fetch_many([a.url + "/get"], cluster=client, show=False))
    assert results[0].ok
    client.close()
    collected = weakref.ref(client)
    del client
    gc.collect()
    assert collected() is None
