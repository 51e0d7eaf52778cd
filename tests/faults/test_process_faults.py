"""Faults in process workers: each gives the task concerned a defined outcome."""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

import pytest
from support import wait_until, worker_processes
from tasks import (
    announce_and_block,
    count_and_fail,
    exit_on,
    pid,
    raise_unpicklable,
    return_lock,
    segfault_on,
)

import poolwise
from poolwise.backends.base import Chunk, WorkerOptions
from poolwise.backends.processes import ProcessBackend

if TYPE_CHECKING:
    from pathlib import Path


def test_os_exit_gives_worker_crashed_with_exit_code(pool: poolwise.Pool) -> None:
    futures = [pool.submit(exit_on, x) for x in range(6)]
    with pytest.raises(poolwise.WorkerCrashed) as info:
        futures[3].result(timeout=60)
    assert info.value.exitcode == 7
    assert info.value.signal is None
    assert [f.result(timeout=60) for i, f in enumerate(futures) if i != 3] == [0, 1, 2, 4, 5]


def test_segfault_gives_worker_crashed_with_sigsegv(pool: poolwise.Pool) -> None:
    with pytest.raises(poolwise.WorkerCrashed, match="SIGSEGV") as info:
        pool.map(segfault_on, range(6), chunksize=1)
    assert info.value.signal == signal.SIGSEGV
    assert info.value.task_index == 3
    assert pool.map(pid, range(4))  # the pool still works


def test_sigkill_from_outside_names_the_signal_and_task(
    pool: poolwise.Pool, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    assert pool.submit(pid).result(timeout=60) > 0  # a worker is up before the kill
    future = pool.submit(announce_and_block, str(marker))
    wait_until(marker.exists, what="the task announced its pid")
    victim = int(marker.read_text())
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(poolwise.WorkerCrashed, match="killed by SIGKILL") as info:
        future.result(timeout=60)
    assert info.value.pid == victim
    after = {pool.submit(pid).result(timeout=60) for _ in range(4)}
    assert victim not in after
    assert pool.report().backend["workers_crashed"] == 1
    # The tasks after the crash ran on live workers the pool keeps (the victim's replacement).
    assert after <= {process.pid for process in worker_processes()}


def test_tasks_behind_a_crash_in_the_same_chunk_are_not_lost(sink: object) -> None:
    backend = ProcessBackend(1, WorkerOptions())
    try:
        tasks = [((x,), {}) for x in range(10)]
        sink.expected = 10  # type: ignore[attr-defined]
        backend.submit(Chunk(exit_on, tasks, 0, sink))  # type: ignore[arg-type]
        backend.submit(Chunk(exit_on, [((x,), {}) for x in range(10, 13)], 10, sink))  # type: ignore[arg-type]
        sink.expected = 13  # type: ignore[attr-defined]
        assert sink.done.wait(60)  # type: ignore[attr-defined]
    finally:
        backend.terminate()
    outcomes = sink.outcomes  # type: ignore[attr-defined]
    assert sorted(outcomes) == list(range(13))
    assert all(len(v) == 1 for v in outcomes.values()), "each task exactly one outcome"
    kind, error = outcomes[3][0]
    assert kind == "error"
    assert isinstance(error, poolwise.WorkerCrashed)
    assert error.task_index == 3
    # tasks after the crash were re-queued and ran once
    assert all(outcomes[x][0] == ("value", x) for x in range(4, 13))
    # tasks before it either reported in time or lost their result with the worker
    for x in range(3):
        kind, outcome = outcomes[x][0]
        assert (kind, outcome) == ("value", x) or (
            isinstance(outcome, poolwise.WorkerCrashed) and outcome.task_index == 3
        )


def test_unpicklable_function_is_refused_before_work(pool: poolwise.Pool) -> None:
    lock = threading.Lock()
    with pytest.raises(poolwise.NotPicklable, match=r"fn") as info:
        pool.map(lambda x: lock, [1, 2])
    assert "_thread.lock" in str(info.value)


def test_unpicklable_first_input_is_refused_before_work(pool: poolwise.Pool) -> None:
    with pytest.raises(poolwise.NotPicklable, match=r"input #0 args\[0\]\['lock'\]: _thread.lock"):
        pool.map(pid, [{"lock": threading.Lock()}, 2])


def test_unpicklable_later_input_is_that_task_outcome(pool: poolwise.Pool) -> None:
    inputs: list[object] = [1, 2, threading.Lock(), 4]
    results = pool.imap(pid, inputs, chunksize=4)
    assert next(results) > 0
    assert next(results) > 0
    with pytest.raises(poolwise.NotPicklable, match=r"input #2 args\[0\]: _thread.lock"):
        next(results)


def test_unpicklable_result_is_that_task_outcome(pool: poolwise.Pool) -> None:
    results = pool.imap(return_lock, range(4), chunksize=4)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(poolwise.NotPicklable, match=r"result of task #2"):
        next(results)


def test_exception_that_cannot_travel_back_keeps_type_message_and_traceback(
    pool: poolwise.Pool,
) -> None:
    with pytest.raises(poolwise.RemoteError) as info:
        pool.submit(raise_unpicklable, 1).result(timeout=60)
    assert info.value.type_name == "tasks.UnpicklableError"
    assert info.value.text == "this error holds a lock"
    assert "raise_unpicklable" in info.value.traceback_text


def test_failing_initializer_fails_once_without_respawning(tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    pool = poolwise.Pool("processes", 2, initializer=count_and_fail, initargs=(str(log),))
    try:
        with pytest.raises(poolwise.InitializerFailed, match="count_and_fail raised RuntimeError"):
            pool.map(pid, range(10))
        with pytest.raises(poolwise.InitializerFailed):
            pool.submit(pid)
    finally:
        pool.terminate()
    assert 1 <= log.read_text().count("init") <= 2  # one per worker started, no loop


def test_max_tasks_per_worker_replaces_workers() -> None:
    with poolwise.Pool("processes", 1, max_tasks_per_worker=3) as pool:
        pids = pool.map(pid, range(9))
        report = pool.report()
    assert max(pids.count(p) for p in pids) <= 3  # no worker ran more than 3 tasks
    assert len(set(pids)) >= 3
    assert report.backend["workers_started"] == len(set(pids))


def test_terminate_stops_running_tasks(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    pool = poolwise.Pool("processes", 1)
    future = pool.submit(announce_and_block, str(marker))
    wait_until(marker.exists, what="the task announced its pid")
    pool.terminate()
    with pytest.raises(poolwise.PoolClosed):
        future.result(timeout=60)


@pytest.mark.parametrize("mode", ["serial", "threads"])
def test_failing_initializer_in_this_process_fails_once(mode: str, tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    pool = poolwise.Pool(mode, 2, initializer=count_and_fail, initargs=(str(log),))  # type: ignore[arg-type]
    try:
        with pytest.raises(poolwise.InitializerFailed, match="no database here") as info:
            pool.map(pid, range(10))
        assert isinstance(info.value.__cause__, RuntimeError)
        with pytest.raises(poolwise.InitializerFailed):
            pool.submit(pid)
    finally:
        pool.terminate()
    assert 1 <= log.read_text().count("init") <= 2
