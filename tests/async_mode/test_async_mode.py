"""mode="async": async def tasks on an event loop thread, bounded, cancellable."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

import poolwise

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def add(x: int, y: int) -> int:
    await asyncio.sleep(0)
    return x + y


async def fail_on_three(x: int) -> int:
    await asyncio.sleep(0)
    if x == 3:
        raise ValueError("three")
    return x


@pytest.fixture
def pool() -> Iterator[poolwise.Pool]:
    p = poolwise.Pool("async", 8)
    try:
        yield p
    finally:
        p.terminate()


def test_map_imap_and_starmap_keep_input_order(pool: poolwise.Pool) -> None:
    assert pool.map(double, range(100)) == [2 * x for x in range(100)]
    assert list(pool.imap(double, range(10))) == [2 * x for x in range(10)]
    assert sorted(pool.imap_unordered(double, range(10))) == [2 * x for x in range(10)]
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.submit(double, 21).result(timeout=30) == 42


def test_the_first_failure_is_raised_at_its_place(pool: poolwise.Pool) -> None:
    results = pool.imap(fail_on_three, range(6))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three") as info:
        next(results)
    assert any(frame.name == "fail_on_three" for frame in info.traceback)


def test_each_input_runs_once(pool: poolwise.Pool) -> None:
    seen: list[int] = []

    async def note(x: int) -> int:
        seen.append(x)  # the loop thread is the only writer
        await asyncio.sleep(0)
        return x

    assert pool.map(note, range(500), ordered=False) != []
    assert sorted(seen) == list(range(500))


def test_no_more_than_workers_tasks_are_in_flight() -> None:
    in_flight = 0
    most = 0
    full = asyncio.Event()  # binds to the pool's loop when first awaited

    async def hold(x: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == 5:
            full.set()
        await full.wait()
        await asyncio.sleep(0)
        in_flight -= 1
        return x

    with poolwise.Pool("async", 5) as pool:
        assert pool.map(hold, range(40)) == list(range(40))
    assert most == 5


def test_a_timeout_cancels_the_task(pool: poolwise.Pool) -> None:
    cancelled = threading.Event()

    async def stuck(x: int) -> int:
        if x == 1:
            try:
                await asyncio.Event().wait()  # never set
            finally:
                cancelled.set()
        return x

    results = pool.imap(stuck, range(3), timeout=0.2)
    assert next(results) == 0
    with pytest.raises(poolwise.TaskTimeout) as info:
        next(results)
    assert info.value.task_index == 1
    assert cancelled.wait(timeout=30)
    assert pool.report().tasks_timed_out == 1


def test_a_tasks_own_timeout_error_is_not_ours(pool: poolwise.Pool) -> None:
    async def raises_timeout(x: int) -> int:
        raise TimeoutError("the server was slow")

    with pytest.raises(TimeoutError, match="the server was slow") as info:
        pool.map(raises_timeout, [1], timeout=30)
    assert not isinstance(info.value, poolwise.TaskTimeout)


def test_retries_run_a_failed_task_again() -> None:
    tries: dict[int, int] = {}

    async def flaky(x: int) -> int:
        tries[x] = tries.get(x, 0) + 1
        if tries[x] < 3:
            raise ConnectionError("try again")
        return x

    with poolwise.Pool("async", 4, retries=2) as pool:
        assert pool.map(flaky, range(5)) == list(range(5))
        assert pool.report().tasks_retried == 10


def test_terminate_cancels_running_tasks() -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def forever(x: int) -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return x

    # Loop threads of other pools (a warm pool of an earlier test) are not this pool's.
    before = {t for t in threading.enumerate() if t.name == "poolwise-async"}
    pool = poolwise.Pool("async", 2)
    future = pool.submit(forever, 1)
    assert started.wait(timeout=30)
    pool.terminate()
    assert cancelled.wait(timeout=30)
    with pytest.raises(poolwise.PoolClosed):
        future.result(timeout=30)
    ours = [t for t in threading.enumerate() if t.name == "poolwise-async" and t not in before]
    assert not [t for t in ours if t.is_alive()]


def _loop_threads() -> set[threading.Thread]:
    """The async pools' loop threads alive now (other tests' warm pools have some too)."""
    return {t for t in threading.enumerate() if t.name == "poolwise-async"}


@pytest.mark.timeout(60)
def test_terminate_after_close_and_join_does_nothing() -> None:
    pool = poolwise.Pool("async", 4)
    assert pool.map(double, range(5)) == [0, 2, 4, 6, 8]
    pool.close()
    pool.join()
    pool.terminate()  # raised RuntimeError: Event loop is closed
    pool.terminate()
    pool.shutdown()
    with pytest.raises(poolwise.PoolClosed):
        pool.map(double, range(5))


@pytest.mark.timeout(60)
def test_terminate_after_the_loop_stopped_on_its_own_does_nothing() -> None:
    # The order of interpreter exit for a warm pool: the pool's finalizer shuts it down
    # without waiting, the loop thread closes the loop, then the warm pools are terminated.
    before = _loop_threads()
    pool = poolwise.Pool("async", 4)
    assert pool.map(double, range(5)) == [0, 2, 4, 6, 8]
    (loop_thread,) = _loop_threads() - before
    pool.shutdown(wait=False, cancel_futures=True)
    loop_thread.join(timeout=30)
    assert not loop_thread.is_alive()
    pool.terminate()


TWO_MAPS = """
import asyncio
import poolwise

async def double(x):
    await asyncio.sleep(0)
    return 2 * x

print(poolwise.map(double, range(10), mode="async"))
print(poolwise.map(double, range(10), mode="async"))
print(poolwise.map(double, range(10), mode="async", workers=4))
"""


@pytest.mark.timeout(60)
def test_a_script_of_async_maps_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "two_maps.py"
    script.write_text(TWO_MAPS)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.stderr == ""
    assert done.returncode == 0
    assert done.stdout.count(str([2 * x for x in range(10)])) == 3


def test_a_plain_function_is_refused_before_work() -> None:
    with poolwise.Pool("async") as pool:
        with pytest.raises(TypeError, match="mode='threads'"):
            pool.map(abs, [1, 2])
        with pytest.raises(TypeError, match="async def"):
            pool.submit(abs, 1)


def test_auto_sends_coroutine_functions_to_async() -> None:
    results, report = poolwise.map(double, range(20), report=True)
    assert results == [2 * x for x in range(20)]
    assert report.mode == "async"
    assert report.reasons[0] == "mode auto chose async:"
    with poolwise.Pool() as pool:
        assert pool.submit(double, 4).result(timeout=30) == 8


def test_amap_and_aimap_from_a_running_loop() -> None:
    async def main() -> tuple[list[int], list[int]]:
        with poolwise.Pool("async", 4) as pool:
            mapped = await pool.amap(double, range(10))
            streamed = [x async for x in pool.aimap(double, range(10))]
        return mapped, streamed

    mapped, streamed = asyncio.run(main())
    assert mapped == streamed == [2 * x for x in range(10)]


def test_aimap_works_for_plain_functions_on_other_modes() -> None:
    async def main() -> list[int]:
        with poolwise.Pool("threads", 2) as pool:
            return [x async for x in pool.aimap(abs, [-1, -2])]

    assert asyncio.run(main()) == [1, 2]


def test_initializers_sync_and_async_run_once_before_tasks() -> None:
    calls: list[str] = []

    async def setup(name: str) -> None:
        calls.append(name)

    async def seen(x: int) -> list[str]:
        return list(calls)

    with poolwise.Pool("async", 2, initializer=setup, initargs=("async",)) as pool:
        assert pool.map(seen, range(3)) == [["async"]] * 3
    with poolwise.Pool("async", 2, initializer=calls.append, initargs=("sync",)) as pool:
        assert pool.map(seen, range(1)) == [["async", "sync"]]


def test_a_failing_initializer_is_one_clear_error() -> None:
    async def broken() -> None:
        raise RuntimeError("no database")

    with (
        poolwise.Pool("async", initializer=broken) as pool,
        pytest.raises(poolwise.InitializerFailed, match="no database"),
    ):
        pool.map(double, range(3))


def test_progress_counts_done_and_failed(capsys: pytest.CaptureFixture[str]) -> None:
    with poolwise.Pool("async", 4) as pool, pytest.raises(ValueError, match="three"):
        pool.map(fail_on_three, range(6), progress="always")
    assert "fail_on_three" in capsys.readouterr().err


PROGRAM = """
import asyncio, sys, time
import poolwise

async def forever(x):
    print("ready", flush=True)
    await asyncio.Event().wait()

try:
    poolwise.map(forever, range(4), mode="async")
except KeyboardInterrupt:
    print(f"interrupted {time.monotonic()!r}", flush=True)
    raise
"""


def test_ctrl_c_stops_a_running_async_map(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(PROGRAM)
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in err
    interrupted = float(next(line for line in out.split("\n") if "interrupted" in line).split()[1])
    assert interrupted - sent < 1.0
