"""The loop watchdog itself: it fails a blocked loop, stops a hung one, and does
not blame the loop for time the OS took away from it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import loopwatch
import pytest

from nbfetch import AsyncClient

pytestmark = pytest.mark.anyio


def burn(seconds: float) -> None:
    """Busy CPU in this thread for ``seconds`` of its own CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_a_fetch_callback_burning_400_ms_of_cpu_is_reported(demo):
    # 400 ms: the monitor thread samples every 20 ms and, on a loaded machine,
    # may not get the GIL for the first few samples.
    with pytest.raises(loopwatch.LoopBlocked) as exc:
        async with loopwatch.watch() as dog, AsyncClient() as c:
            r = await c.fetch(demo.url + "/get", on_headers=lambda r: burn(0.4))
    assert r.status_code == 200
    cpu, wall, _ = dog.worst
    assert cpu >= 0.4 and wall >= cpu
    assert "ms CPU in the loop thread" in str(exc.value) and "limit 100 ms" in str(exc.value)
    assert "in burn" in str(exc.value)  # where the loop thread was, sampled during the gap


async def test_an_ordinary_fetch_passes_and_the_ticker_really_ran(demo):
    async with loopwatch.watch() as dog, AsyncClient() as c:
        await c.fetch(demo.url + "/drip?numbytes=5&duration=0.2&chunks=5")
    assert dog.ticks >= 5  # ~20 in 0.2 s; a dead ticker would pass every test
    assert dog.worst[0] < loopwatch.LIMIT


async def test_a_loop_that_never_yields_is_interrupted(demo):
    def spin(response):
        while True:  # the shape of a parser walking backwards forever
            pass

    start = time.monotonic()
    with pytest.raises(loopwatch.LoopHang):
        async with loopwatch.watch(hang_cpu=0.3), AsyncClient() as c:
            await c.fetch(demo.url + "/get", on_headers=spin)
    assert time.monotonic() - start < 30  # interrupted, not left to pytest-timeout


CHILD = """
import asyncio, sys
sys.path.insert(0, {tests!r})
import loopwatch

async def main():
    loop = asyncio.get_running_loop()
    go = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: go.done() or go.set_result(None))
    async with loopwatch.watch() as dog:
        print("ready", flush=True)
        await go  # the loop ticks on until the parent writes a line
    print(dog.worst[0], dog.worst[1], flush=True)

asyncio.run(main())
"""


def test_time_the_os_takes_from_the_loop_thread_is_not_blamed_on_it():
    # SIGSTOP freezes the whole process, as a loaded machine preempting the
    # loop thread would: a long wall-clock gap with no CPU spent in it.
    code = CHILD.format(tests=str(Path(__file__).parent))
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(0.3)  # the stall under test, not a wait for a condition
        os.kill(child.pid, signal.SIGCONT)
        out, _ = child.communicate("go\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, out
    cpu, wall = map(float, out.split())
    assert wall >= 0.3 and cpu < loopwatch.LIMIT
