"""A watchdog for the event loop: a test fails when its loop was blocked.

A ticker task on the loop wakes every 10 ms. Between two ticks the loop thread
ran only callbacks and task steps, so the CPU time that thread spent in the gap
(``time.thread_time``) is the loop's own work; the wall-clock gap would also
count the OS preempting the thread on a loaded 2-core CI machine, which no code
on the loop can cause. A gap of more than ``LIMIT`` CPU seconds fails the test,
naming the worst gap (CPU and wall) and, when the monitor thread below could
sample it while the gap lasted, where the loop thread was. Garbage collections
in the loop thread are left out (their cost follows the whole test process's
heap, not the fetch) and shown in the message. Blocking the loop without CPU
(a blocking call, or waiting for the GIL another thread holds) is not counted:
to the watchdog it looks the same as preemption.

A loop that never yields (a busy loop) never lets the ticker run, and never
lets a timer fire: the monitor thread reads the loop thread's CPU clock and, after
``HANG_CPU`` CPU seconds without a tick, interrupts it with SIGUSR1, whose
handler raises ``LoopHang`` where the loop is spinning. The test then fails
with that error instead of hanging CI (Python runs signal handlers in the main
thread between bytecodes, so this needs the loop in the main thread, as in
pytest; a spin inside one C call is left to pytest-timeout's thread method).

    async with watch() as dog:       # asyncio: fails on leaving when blocked
        await client.fetch(url)
    run_trio(main)                   # trio.run(main) under the same watchdog

Tests in a module marked ``pytest.mark.loop_watchdog`` run under ``watch()``
(see conftest.py).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import asynccontextmanager

#: The most CPU the loop thread may spend without yielding to the loop, seconds.
LIMIT = 0.100
TICK = 0.010
#: CPU seconds without a tick after which the loop is taken as hung and interrupted.
HANG_CPU = 2.0


class LoopBlocked(AssertionError):
    """The loop thread spent more than ``LIMIT`` CPU seconds between two ticks."""


class LoopHang(AssertionError):
    """Raised inside a loop that spun for ``HANG_CPU`` CPU seconds without yielding."""


class Watchdog:
    def __init__(self, limit: float = LIMIT, hang_cpu: float = HANG_CPU):
        self.limit = limit
        self.hang_cpu = hang_cpu
        self.ticks = 0
        #: The worst gap: (CPU seconds without GC, wall seconds, GC CPU seconds).
        self.worst = (0.0, 0.0, 0.0)
        self.hung = False
        #: Where the loop thread was during the worst gap (sampled while it lasted).
        self.where: str | None = None
        self._sample: tuple[float, str] | None = None
        self._ident = threading.get_ident()
        self._clock = time.pthread_getcpuclockid(self._ident)
        self._gc_total = 0.0
        self._gc_started: float | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._old_handler = None

    # -- bookkeeping in the loop thread ------------------------------------------
    def _mark(self) -> None:
        self._cpu, self._wall, self._gc = time.thread_time(), time.perf_counter(), self._gc_total

    def tick(self) -> None:
        cpu, wall, gc_total = time.thread_time(), time.perf_counter(), self._gc_total
        gc_cpu = gc_total - self._gc
        own = cpu - self._cpu - gc_cpu
        if own > self.worst[0]:
            self.worst = (own, wall - self._wall, gc_cpu)
            sample = self._sample
            self.where = sample[1] if sample is not None and sample[0] == self._cpu else None
        self._cpu, self._wall, self._gc = cpu, wall, gc_total
        self.ticks += 1

    def _on_gc(self, phase: str, info: dict) -> None:
        if threading.get_ident() != self._ident:
            return
        if phase == "start":
            self._gc_started = time.thread_time()
        elif self._gc_started is not None:
            self._gc_total += time.thread_time() - self._gc_started
            self._gc_started = None

    # -- the monitor thread ------------------------------------------------------
    def _monitor_loop(self, interrupt: bool) -> None:
        last_tick, interrupts = None, 0
        while not self._stop.wait(0.02):
            tick_cpu = self._cpu
            if tick_cpu != last_tick:  # the loop ticked: not hung (any more)
                last_tick, interrupts = tick_cpu, 0
            spun = time.clock_gettime(self._clock) - tick_cpu - (self._gc_total - self._gc)
            if spun > self.limit and (self._sample is None or self._sample[0] != tick_cpu):
                # A gap past the limit, still going: note where, for the report.
                frame = sys._current_frames().get(self._ident)
                if frame is not None:
                    self._sample = (tick_cpu, "".join(traceback.format_stack(frame)[-8:]))
            # Again after each further hang_cpu: an exception raised where Python
            # ignores it (a GC callback, a __del__) does not stop the spin.
            if interrupt and spun > self.hang_cpu * (interrupts + 1):
                interrupts += 1
                self.hung = True
                signal.pthread_kill(self._ident, signal.SIGUSR1)

    def _raise_hang(self, signum, frame) -> None:
        raise LoopHang(
            f"the event loop ran {self.hang_cpu:g} s of CPU without yielding: hung, interrupted"
        )

    # -- start, stop, verdict ----------------------------------------------------
    def start(self) -> None:
        self._mark()
        gc.callbacks.append(self._on_gc)
        interrupt = threading.current_thread() is threading.main_thread()
        if interrupt:
            self._old_handler = signal.signal(signal.SIGUSR1, self._raise_hang)
        self._monitor = threading.Thread(target=self._monitor_loop, args=(interrupt,), daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        self.tick()  # the gap up to now counts too
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join()
        if self._old_handler is not None:
            signal.signal(signal.SIGUSR1, self._old_handler)
        gc.callbacks.remove(self._on_gc)

    def report(self) -> str:
        cpu, wall, gc_cpu = self.worst
        return (
            f"worst gap between loop ticks: {cpu * 1000:.0f} ms CPU in the loop thread"
            f" ({wall * 1000:.0f} ms wall, {gc_cpu * 1000:.0f} ms GC left out);"
            f" limit {self.limit * 1000:.0f} ms; {self.ticks} ticks"
            + (f"\nthe loop thread was at:\n{self.where}" if self.where else "")
        )

    def check(self) -> None:
        if self.worst[0] > self.limit:
            raise LoopBlocked("the event loop was blocked: " + self.report())


@asynccontextmanager
async def watch(limit: float = LIMIT, hang_cpu: float = HANG_CPU):
    """Run the block under a watchdog on the running asyncio loop."""
    import asyncio

    dog = Watchdog(limit, hang_cpu)

    async def ticker():
        while True:
            await asyncio.sleep(TICK)
            dog.tick()

    dog.start()
    task = asyncio.get_running_loop().create_task(ticker())
    try:
        yield dog
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        dog.stop()
    log = os.environ.get("NBFETCH_LOOPWATCH_LOG")
    if log:  # one line per watched test: its worst gap (to measure a whole suite)
        with open(log, "a") as f:
            f.write(f"{dog.worst[0] * 1000:.1f} {os.environ.get('PYTEST_CURRENT_TEST', '')}\n")
    dog.check()


def run_trio(fn, *args, limit: float = LIMIT):
    """``trio.run(fn, *args)`` with the watchdog's ticker beside ``fn``."""
    import trio

    dog = Watchdog(limit)

    async def main():
        async def ticker():
            while True:
                await trio.sleep(TICK)
                dog.tick()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            try:
                return await fn(*args)
            finally:
                nursery.cancel_scope.cancel()

    dog.start()
    try:
        result = trio.run(main)
    finally:
        dog.stop()
    dog.check()
    return result
