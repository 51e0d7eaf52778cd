"""PoolFuture waits in slices but behaves as a concurrent.futures.Future."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from poolwise import TaskTimeout
from poolwise.futures import PoolFuture


def test_result_and_exception_of_a_finished_future() -> None:
    done: PoolFuture[int] = PoolFuture()
    done.set_result(4)
    assert isinstance(done, Future)
    assert done.result() == 4
    assert done.exception() is None


def test_a_task_timeout_is_the_outcome_not_a_wait_timeout() -> None:
    future: PoolFuture[int] = PoolFuture()
    future.set_exception(TaskTimeout(1.0, 3))
    with pytest.raises(TaskTimeout):
        future.result()
    assert isinstance(future.exception(), TaskTimeout)


def test_waiting_past_the_timeout_raises_timeout_error() -> None:
    future: PoolFuture[int] = PoolFuture()
    with pytest.raises(TimeoutError) as info:
        future.result(timeout=0.25)  # longer than one slice
    assert not isinstance(info.value, TaskTimeout)
    with pytest.raises(TimeoutError):
        future.exception(timeout=0.01)


def test_result_set_from_another_thread_is_seen() -> None:
    future: PoolFuture[str] = PoolFuture()
    ready = threading.Event()

    def finish() -> None:
        ready.wait(10)
        future.set_result("done")

    thread = threading.Thread(target=finish)
    thread.start()
    ready.set()
    assert future.result(timeout=10) == "done"
    thread.join()
