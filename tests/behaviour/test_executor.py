"""poolwise.Executor behaves as concurrent.futures documents, on threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent import futures
from typing import TYPE_CHECKING

import pytest
from tasks import fail_on, square

import poolwise

if TYPE_CHECKING:
    from collections.abc import Iterator

EXECUTOR_MODES = ["threads", "processes"]


@pytest.fixture(params=EXECUTOR_MODES)
def executor(request: pytest.FixtureRequest) -> Iterator[poolwise.Executor]:
    ex = poolwise.Executor(request.param, max_workers=2)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def test_is_a_concurrent_futures_executor(executor: poolwise.Executor) -> None:
    assert isinstance(executor, futures.Executor)


def test_submit_and_wait(executor: poolwise.Executor) -> None:
    fs = [executor.submit(square, x) for x in range(10)]
    done, not_done = futures.wait(fs, timeout=30)
    assert not not_done
    assert sorted(f.result() for f in done) == [x * x for x in range(10)]


def test_map_in_order_and_with_chunks(executor: poolwise.Executor) -> None:
    assert list(executor.map(square, range(20))) == [x * x for x in range(20)]
    assert list(executor.map(pow, range(10), [2] * 10, chunksize=3)) == [x**2 for x in range(10)]


def test_map_raises_the_task_error_when_reached(executor: poolwise.Executor) -> None:
    results = executor.map(fail_on, range(10))
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="input 5"):
        next(results)


def test_done_callbacks_run(executor: poolwise.Executor) -> None:
    called = threading.Event()
    seen: list[int] = []

    def callback(f: futures.Future[int]) -> None:
        seen.append(f.result())
        called.set()

    executor.submit(square, 6).add_done_callback(callback)
    assert called.wait(30)
    assert seen == [36]


def test_context_manager_shuts_down(executor: poolwise.Executor) -> None:
    with executor as ex:
        f = ex.submit(square, 3)
    assert f.result(timeout=0) == 9
    with pytest.raises(RuntimeError):
        executor.submit(square, 1)


def test_shutdown_cancel_futures_cancels_waiting_work() -> None:
    release = threading.Event()
    ex = poolwise.Executor("threads", max_workers=1)
    blocker = ex.submit(release.wait, 30)
    waiting = [ex.submit(square, x) for x in range(5)]
    ex.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert blocker.result(timeout=30) is True
    assert all(f.cancelled() for f in waiting)


def test_cancel_a_future_that_has_not_started() -> None:
    release = threading.Event()
    with poolwise.Executor("threads", max_workers=1) as ex:
        blocker = ex.submit(release.wait, 30)
        queued = ex.submit(square, 2)
        assert queued.cancel()
        release.set()
        assert blocker.result(timeout=30)
    assert queued.cancelled()


def test_map_timeout_counts_from_the_call() -> None:
    release = threading.Event()
    with poolwise.Executor("threads", max_workers=1) as ex:
        results = ex.map(release.wait, [30])
        with pytest.raises(TimeoutError):
            next(iter(ex.map(release.wait, [30], timeout=0.01)))
        release.set()
        assert list(results) == [True]


def test_stdlib_names_are_accepted() -> None:
    ctx = multiprocessing.get_context("spawn")
    with poolwise.Executor(
        "processes", max_workers=1, mp_context=ctx, max_tasks_per_child=10
    ) as ex:
        assert ex.submit(square, 5).result(timeout=60) == 25
        assert ex.pool.workers == 1


def test_unknown_arguments_are_named() -> None:
    with pytest.raises(TypeError, match=r"unsupported arguments to poolwise.Executor: \['turbo'\]"):
        poolwise.Executor("threads", turbo=True)
