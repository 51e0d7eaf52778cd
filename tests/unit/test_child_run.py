"""run_tasks: every outcome flushed once, in order, and at least every FLUSH_SECONDS."""

from __future__ import annotations

import itertools
import time
import types
from typing import Any

import pytest

from poolwise.backends.child import run as _run


class FakeClock:
    """perf_counter that moves only when a task says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    patched = types.SimpleNamespace(
        perf_counter=fake.perf_counter, monotonic=time.monotonic, thread_time=time.thread_time
    )
    monkeypatch.setattr(_run, "time", patched)
    return fake


def run(tasks: list[Any], fn: Any) -> list[tuple[int, list[Any], float]]:
    flushes: list[tuple[int, list[Any], float]] = []
    _run.run_tasks(
        fn,
        tasks,
        lambda out: flushes.append((out.offset, list(out.values), out.seconds)),
        unary=True,
    )
    return flushes


def test_tiny_tasks_are_flushed_about_every_flush_seconds(clock: FakeClock) -> None:
    def tiny(x: int) -> int:
        clock.now += 1e-6
        return x

    flushes = run(list(range(35_000)), tiny)  # 35 ms of tasks
    assert [v for _, values, _ in flushes for v in values] == list(range(35_000))
    for (offset, values, _), (following, _, _) in itertools.pairwise(flushes):
        assert following == offset + len(values)  # contiguous: each outcome once, in order
    assert len(flushes) == 4  # at ~10, 20, 30 ms and the end
    # looked at in strides: never later than MAX_STRIDE tasks past the mark
    for _, _, seconds in flushes[:-1]:
        assert _run.FLUSH_SECONDS <= seconds <= _run.FLUSH_SECONDS + _run.MAX_STRIDE * 1e-6


def test_a_slow_task_after_tiny_ones_sets_the_stride_back(clock: FakeClock) -> None:
    def task(x: int) -> int:
        clock.now += 0.02 if x == 1000 else 1e-6
        return x

    flushes = run(list(range(1100)), task)
    # the slow task is looked at within a stride; the next look comes at the next task
    first_flush_end = flushes[0][0] + len(flushes[0][1])
    assert 1000 < first_flush_end <= 1000 + _run.MAX_STRIDE
    assert sum(len(v) for _, v, _ in flushes) == 1100
