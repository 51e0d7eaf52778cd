"""poolwise.Executor as a drop-in, held to what CPython's own executor tests check
(Lib/test/test_concurrent_futures), each on threads and processes (#15)."""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import subprocess
import sys
import threading
import time
import weakref
from concurrent import futures
from typing import TYPE_CHECKING

import pytest
from support import wait_until
from tasks import MyObject, make_dummy_object, square

import poolwise

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

EXECUTOR_MODES = ["threads", "processes"]


@pytest.fixture(params=EXECUTOR_MODES)
def executor(request: pytest.FixtureRequest) -> Iterator[poolwise.Executor]:
    ex = poolwise.Executor(request.param, max_workers=2)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def test_free_reference(executor: poolwise.Executor) -> None:
    # CPython issue #14406: the result iterator keeps no reference to a yielded result. The
    # thread that delivered it may still be returning from the delivery for a moment (on a
    # free-threaded build it runs beside the caller), so wait for the last reference to go,
    # as CPython's own test does; a reference the executor kept would never go.
    for obj in executor.map(make_dummy_object, range(10)):
        ref = weakref.ref(obj)
        del obj
        wait_until(lambda: gc.collect() >= 0 and ref() is None, 10, "a yielded result is kept")  # noqa: B023


@pytest.mark.parametrize("mode", EXECUTOR_MODES)
def test_no_stale_references(mode: str) -> None:
    # CPython issue #16284: a submitted callable is dropped once its future is done
    collected = threading.Event()
    with poolwise.Executor(mode, max_workers=2) as executor:  # type: ignore[arg-type]
        target = MyObject()
        watch = weakref.ref(target, lambda _: collected.set())
        executor.submit(target.my_method).result(timeout=60)
        del target
        gc.collect()
        assert collected.wait(timeout=30), "the executor still holds the submitted callable"
        assert watch() is None


def test_pool_maps_drop_inputs_results_and_functions(executor: poolwise.Executor) -> None:
    target = MyObject()
    watch = weakref.ref(target)
    assert executor.pool.map(square, range(10)) == [x * x for x in range(10)]
    results = executor.pool.map(make_dummy_object, range(3))
    result_watch = weakref.ref(results[0])
    executor.pool.map(target.my_method.__func__, [target])  # type: ignore[attr-defined]
    del target, results
    gc.collect()
    assert watch() is None
    assert result_watch() is None


@pytest.mark.parametrize("mode", EXECUTOR_MODES)
def test_cancel_futures_on_shutdown(mode: str) -> None:
    # CPython's test_cancel_futures: of 50 queued sleeps on few workers, most are cancelled
    executor = poolwise.Executor(mode, max_workers=2)  # type: ignore[arg-type]
    fs = [executor.submit(time.sleep, 0.1) for _ in range(50)]
    executor.shutdown(cancel_futures=True)
    cancelled = [f for f in fs if f.cancelled()]
    assert len(cancelled) > 20, f"{len(cancelled)} of 50 cancelled"


@pytest.mark.parametrize("mode", EXECUTOR_MODES)
def test_a_queued_future_stays_cancellable_until_a_worker_starts_it(mode: str) -> None:
    release = threading.Event() if mode == "threads" else None
    with poolwise.Executor(mode, max_workers=1) as executor:  # type: ignore[arg-type]
        running = executor.submit(time.sleep, 1.0)
        queued = [executor.submit(square, x) for x in range(5)]
        # the stdlib's ProcessPoolExecutor can cancel 3 of these 5; all should be
        cancelled = sum(f.cancel() for f in queued)
        running.result(timeout=60)
    assert release is None or not release.is_set()
    assert cancelled >= 4, f"only {cancelled} of 5 queued futures could be cancelled"


def test_executor_map_current_future_cancel() -> None:
    # CPython's test: the result that timed out is cancelled, and the ones after it
    stop_event = threading.Event()
    log: list[str] = []

    def log_n_wait(ident: str) -> None:
        log.append(f"{ident=} started")
        try:
            stop_event.wait()
        finally:
            log.append(f"{ident=} stopped")

    with poolwise.Executor("threads", max_workers=1) as pool:
        fut = pool.submit(log_n_wait, ident="first")  # saturates the pool
        try:
            gen = pool.map(log_n_wait, ["second", "third"], timeout=0)
            with contextlib.closing(gen), pytest.raises(TimeoutError):  # type: ignore[arg-type]
                next(gen)
        finally:
            stop_event.set()
        fut.result()
    assert log == ["ident='first' started", "ident='first' stopped"]


def test_max_workers_must_be_positive_in_the_stdlib_words() -> None:
    for number in (0, -1):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            poolwise.Executor("threads", max_workers=number)


def test_map_iterator_close_cancels_the_rest() -> None:
    release = threading.Event()
    with poolwise.Executor("threads", max_workers=1) as executor:
        results = executor.map(release.wait, [30, 30, 30])
        blocker_started = time.monotonic()
        results.close()  # type: ignore[attr-defined]
        release.set()
    assert time.monotonic() - blocker_started < 30


def test_as_completed_and_wait_see_every_future(executor: poolwise.Executor) -> None:
    fs = [executor.submit(square, x) for x in range(20)]
    assert sorted(f.result() for f in futures.as_completed(fs, timeout=60)) == [
        x * x for x in range(20)
    ]
    done, not_done = futures.wait(fs, timeout=60)
    assert (len(done), len(not_done)) == (20, 0)


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: poolwise.Executor(4), TypeError, r"first argument is the mode.*max_workers=4"),
        (
            lambda: poolwise.Executor("processes", mp_context="fork"),
            TypeError,
            r"must be a multiprocessing context.*start_method='spawn'",
        ),
        (
            lambda: poolwise.Executor("processes", initializer=print, initargs=1),
            TypeError,
            "initargs=1 must be an iterable",
        ),
        (
            lambda: poolwise.Executor(
                "processes", mp_context=multiprocessing.get_context("fork"), start_method="spawn"
            ),
            ValueError,
            "give one of them",
        ),
        (lambda: poolwise.Pool("threads", start_method="spawn"), ValueError, "starts no processes"),
        (lambda: poolwise.Pool("serial", max_tasks_per_worker=3), ValueError, "none to replace"),
        (lambda: poolwise.Pool("threads", max_tasks_per_worker=3), ValueError, "none to replace"),
    ],
)
def test_arguments_ported_from_the_stdlib_get_clear_errors(
    make: Callable[[], object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        make()


@pytest.mark.parametrize("chunksize", [1, 3])
def test_map_buffersize_submits_a_bounded_number_ahead(chunksize: int) -> None:
    # Python 3.14's Executor.map(buffersize=): an endless input works, bounded ahead
    taken: list[int] = []

    def counting() -> Iterator[int]:
        for x in itertools.count():
            taken.append(x)
            yield x

    with poolwise.Executor("threads", max_workers=2) as executor:
        results = executor.map(square, counting(), buffersize=4, chunksize=chunksize)
        assert [next(results) for _ in range(10)] == [x * x for x in range(10)]
        # 10 taken, at most 4 submissions (of chunksize inputs) ahead, one more in flight
        assert len(taken) <= 10 + (4 + 1) * chunksize
        results.close()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="buffersize"):
        executor.map(square, [1], buffersize=0)


def test_terminate_and_kill_workers_stop_a_stuck_pool() -> None:
    for stop in ("terminate_workers", "kill_workers"):
        executor = poolwise.Executor("processes", max_workers=1)
        stuck = executor.submit(time.sleep, 60)
        queued = executor.submit(square, 3)
        getattr(executor, stop)()
        with pytest.raises((poolwise.PoolClosed, poolwise.WorkerCrashed, futures.CancelledError)):
            stuck.result(timeout=30)
        assert queued.done()


EXIT_SCRIPT = """
import sys, time
import poolwise

def sleep_and_print(seconds, message):
    time.sleep(seconds)
    print(message, flush=True)

if __name__ == "__main__":
    executor = poolwise.Executor(sys.argv[1], max_workers=3)
    executor.submit(sleep_and_print, 0.5, "apple")
    if sys.argv[2] == "no-wait":
        executor.shutdown(wait=False)
"""


@pytest.mark.slow
@pytest.mark.parametrize("shutdown", ["none", "no-wait"])
@pytest.mark.parametrize("mode", EXECUTOR_MODES)
def test_submitted_work_finishes_before_the_interpreter_exits(
    tmp_path: Path, mode: str, shutdown: str
) -> None:
    # CPython's test_interpreter_shutdown and test_hang_gh83386: pending futures run
    # before the interpreter exits, even after shutdown(wait=False)
    script = tmp_path / "fire_and_forget.py"
    script.write_text(EXIT_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), mode, shutdown], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "apple", "")


def _init_fail() -> None:
    raise ValueError("error in initializer")


@pytest.mark.parametrize("mode", EXECUTOR_MODES)
def test_a_failing_initializer_breaks_it(mode: str) -> None:
    # CPython's FailingInitializer test, without its internals: BrokenExecutor, at once
    with poolwise.Executor(mode, max_workers=2, initializer=_init_fail) as executor:  # type: ignore[arg-type]
        with pytest.raises(futures.BrokenExecutor, match="error in initializer"):
            executor.submit(square, 2).result(timeout=60)
        with pytest.raises(futures.BrokenExecutor):
            executor.submit(square, 2).result(timeout=60)
