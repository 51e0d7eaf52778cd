"""What is particular to interpreter workers: each is a subinterpreter of this process,
with its own modules, set up once, replaced when asked, destroyed when done."""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

import pytest
from interp_tasks import (
    bump,
    counted,
    greeting,
    log_then_fail,
    remember,
    size_and_type,
    starts_a_thread,
    where,
    write_first,
)

import poolwise

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 13), reason="mode='interpreters' needs Python 3.13+"
)


def test_a_task_runs_in_another_interpreter_on_another_thread_of_this_process() -> None:
    with poolwise.Pool("interpreters", 1) as pool:
        pid, thread, interpreter = pool.submit(where).result(timeout=60)
    assert pid == os.getpid()
    assert thread != threading.get_ident()
    assert interpreter != 0  # 0 is the main interpreter


def test_module_globals_are_the_interpreters_own() -> None:
    import interp_tasks

    with poolwise.Pool("interpreters", 1) as pool:
        assert pool.map(bump, range(4)) == [1, 2, 3, 4]  # one interpreter, one module copy
        assert pool.submit(bump).result(timeout=60) == 5
    assert interp_tasks.COUNTER == 0  # the caller's module never changed


def test_each_worker_has_its_own_copy_of_a_module() -> None:
    with poolwise.Pool("interpreters", 2) as pool:
        outcomes = pool.map(counted, range(40), chunksize=1)
    by_interpreter: dict[int, list[int]] = {}
    for interpreter, count in outcomes:
        by_interpreter.setdefault(interpreter, []).append(count)
    # However the tasks were shared out, each interpreter counted from 1 on its own.
    for counts in by_interpreter.values():
        assert sorted(counts) == list(range(1, len(counts) + 1))


def test_tasks_may_start_threads_inside_their_interpreter() -> None:
    with poolwise.Pool("interpreters", 1) as pool:
        assert pool.submit(starts_a_thread).result(timeout=60) == "ran"


def test_big_bytes_arguments_arrive_whole_and_keep_their_type() -> None:
    big = b"x" * (3 << 20) + b"!"
    with poolwise.Pool("interpreters", 1) as pool:
        assert pool.map(size_and_type, [big, bytearray(big)]) == [
            (len(big), "bytes", ord("!")),
            (len(big), "bytearray", ord("!")),
        ]


def test_a_shared_buffer_is_mapped_in_the_interpreter_and_writes_reach_the_parent() -> None:
    with (
        poolwise.share(bytearray(8), writable=True) as shared,
        poolwise.Pool("interpreters", 1) as pool,
    ):
        assert pool.submit(size_and_type, shared).result(timeout=60) == (8, "memoryview", 0)
        pool.submit(write_first, shared).result(timeout=60)
        assert bytes(shared.value) == b"\x07" + bytes(7)


def test_the_initializer_runs_once_in_each_interpreter() -> None:
    with poolwise.Pool("interpreters", 2, initializer=remember, initargs=("hello",)) as pool:
        assert pool.map(greeting, range(6)) == ["hello"] * 6


def test_a_failing_initializer_fails_the_pool_once_without_respawning(tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    pool = poolwise.Pool("interpreters", 2, initializer=log_then_fail, initargs=(str(log),))
    try:
        with pytest.raises(poolwise.InitializerFailed, match="no database here") as info:
            pool.map(where, range(10))
        assert isinstance(info.value.__cause__, RuntimeError)
        with pytest.raises(poolwise.InitializerFailed):
            pool.submit(where)
    finally:
        pool.terminate()
    assert 1 <= log.read_text().count("init") <= 2  # one per interpreter started, no loop


def test_max_tasks_per_worker_replaces_interpreters() -> None:
    with poolwise.Pool("interpreters", 1, max_tasks_per_worker=3) as pool:
        ids = [interpreter for _, _, interpreter in pool.map(where, range(9))]
        report = pool.report()
    assert max(ids.count(i) for i in ids) <= 3  # no interpreter ran more than 3 tasks
    assert len(set(ids)) >= 3
    assert report.backend["interpreters_started"] == len(set(ids))
    assert report.backend["interpreters_retired"] == len(set(ids)) - 1


def test_workers_are_counted_in_the_report() -> None:
    with poolwise.Pool("interpreters", 2) as pool:
        pool.map(where, range(4), chunksize=1)
        backend = pool.report().backend
    assert 1 <= backend["interpreters_started"] <= 2
    assert backend["tasks_timed_out"] == backend["interpreters_abandoned"] == 0


def test_closing_and_terminating_destroy_idle_interpreters() -> None:
    import _interpreters  # type: ignore[import-not-found]

    before = len(_interpreters.list_all())
    pool = poolwise.Pool("interpreters", 2)
    pool.map(where, range(4), chunksize=1)
    assert len(_interpreters.list_all()) > before
    pool.close()
    pool.join()
    assert len(_interpreters.list_all()) == before  # join waits for the destruction
    other = poolwise.Pool("interpreters", 1)
    other.submit(where).result(timeout=60)
    other.terminate()  # does not wait; the leak check after the test does
