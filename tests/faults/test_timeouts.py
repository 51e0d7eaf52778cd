"""timeout= stops the task concerned, on every mode; the others carry on."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from support import wait_until
from tasks import pid, sleep_on, spin_on, started_then_spin, stubborn_sleep_on

import poolwise

if TYPE_CHECKING:
    from pathlib import Path

MODES = ["serial", "threads", "processes"]


@pytest.mark.parametrize("mode", MODES)
def test_runaway_python_loop_times_out_and_others_carry_on(mode: str) -> None:
    with poolwise.Pool(mode, 2, timeout=0.3) as pool:  # type: ignore[arg-type]
        futures = [pool.submit(spin_on, x) for x in range(6)]
        error = futures[3].exception(timeout=60)
        assert isinstance(error, poolwise.TaskTimeout)
        assert error.timeout == 0.3
        assert [f.result(timeout=60) for i, f in enumerate(futures) if i != 3] == [0, 1, 2, 4, 5]
        assert pool.report().backend["tasks_timed_out"] == 1
        assert pool.report().tasks_timed_out == 1


@pytest.mark.parametrize("mode", MODES)
def test_map_with_timeout_raises_task_timeout_at_its_place(mode: str) -> None:
    with poolwise.Pool(mode, 2) as pool:  # type: ignore[arg-type]
        results = pool.imap(spin_on, range(6), timeout=0.3, chunksize=3)
        assert [next(results) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(poolwise.TaskTimeout) as info:
            next(results)
        assert info.value.task_index == 3
        # the rest of its chunk was not lost
        results, report = pool.map(spin_on, [4, 5], timeout=5, report=True)
        assert results == [4, 5]
        assert report.tasks_timed_out == 0
        assert pool.report().tasks_timed_out == 1


def test_process_blocked_in_c_is_killed_and_replaced() -> None:
    with poolwise.Pool("processes", 1, timeout=0.3) as pool:
        before = pool.submit(pid).result(timeout=60)
        with pytest.raises(poolwise.TaskTimeout):
            pool.submit(sleep_on, 3).result(timeout=60)
        after = pool.submit(pid).result(timeout=60)
        assert after != before
        assert not psutil.pid_exists(before) or psutil.Process(before).status() == "zombie"


def test_process_ignoring_sigterm_gets_sigkill() -> None:
    with poolwise.Pool("processes", 1, timeout=0.3) as pool:
        with pytest.raises(poolwise.TaskTimeout):
            pool.submit(stubborn_sleep_on, 3).result(timeout=60)
        assert pool.submit(stubborn_sleep_on, 1).result(timeout=60) == 1


@pytest.mark.slow
def test_process_timeout_kills_within_timeout_plus_half_a_second(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    timeout = 0.5
    with poolwise.Pool("processes", 1, timeout=timeout) as pool:
        victim = pool.submit(pid).result(timeout=60)
        future = pool.submit(started_then_spin, str(marker))
        with pytest.raises(poolwise.TaskTimeout):
            future.result(timeout=60)
        ended = time.monotonic()
        started = float(marker.read_text())
        wait_until(lambda: not psutil.pid_exists(victim), what="the worker is gone")
    # the contract bound, generous only by the reaping of the process
    assert ended - started <= timeout + 0.5


def test_thread_blocked_in_c_is_reported_until_it_returns() -> None:
    release = threading.Event()
    pool = poolwise.Pool("threads", 1, timeout=0.2)
    try:
        future = pool.submit(release.wait, 60)
        with pytest.raises(poolwise.TaskTimeout):
            future.result(timeout=60)  # at once, while the thread is still blocked
        # capacity stays: a replacement thread takes new work
        assert pool.submit(pid).result(timeout=60) > 0
        stats = pool.report().backend
        assert stats["threads_still_running"] == 1
        release.set()  # the wait returns; StopTask lands; the old thread ends
        wait_until(lambda: pool.report().backend["threads_still_running"] == 0)
        assert pool.report().backend["threads_stopped"] == 1
    finally:
        release.set()
        pool.terminate()


def test_serial_timeout_stops_the_callers_own_task() -> None:
    results = poolwise.imap(spin_on, range(5), mode="serial", timeout=0.2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(poolwise.TaskTimeout):
        next(results)


def test_timeout_on_a_fast_task_changes_nothing() -> None:
    inputs = list(range(4, 54))  # spin_on only spins for 3
    for mode in MODES:
        assert poolwise.map(spin_on, inputs, mode=mode, timeout=30) == inputs  # type: ignore[arg-type]


def test_terminate_stops_threads_running_python_code() -> None:
    pool = poolwise.Pool("threads", 2)
    futures = [pool.submit(spin_on, 3) for _ in range(2)]
    wait_until(lambda: all(f.running() for f in futures), what="both tasks running")
    threads = [t for t in threading.enumerate() if t.name.startswith("poolwise-threads-")]
    pool.terminate()
    wait_until(lambda: not any(t.is_alive() for t in threads), what="worker threads ended")
    for future in futures:  # each task still has its one outcome
        assert isinstance(future.exception(timeout=10), poolwise.PoolClosed)


def test_a_chunk_is_published_with_its_own_start_time() -> None:
    # A worker's slot still holds its previous task (or zeros): a new chunk's id must never
    # pair with that old start time, or the parent kills a task that just began.
    from poolwise.backends.child import process_worker as _worker
    from poolwise.backends.processes.handle import WorkerHandle

    state = memoryview(bytearray(8 * _worker.STATE_SIZE)).cast("d")
    state[_worker.STATE_CHUNK], state[_worker.STATE_POSITION] = -1, 7
    state[_worker.STATE_STARTED] = 0.0  # the previous task began at boot
    before = time.monotonic()
    _worker.begin_chunk(state, 42, 3)
    handle = WorkerHandle.__new__(WorkerHandle)  # only its view of the slot is needed
    handle.state = state
    task = handle.running_task()
    assert task is not None
    chunk_id, position, started = task
    assert (chunk_id, position) == (42, 3)
    assert started >= before
