"""mode="auto" notices work that changes character, and reuses what it measured."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from support import pure_python_mode
from tasks import computes, nap, waits_then_computes

import poolwise
from poolwise import auto
from poolwise import pool as pool_module

if TYPE_CHECKING:
    import pytest


def test_work_that_turns_from_waiting_to_computing_is_measured_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "cpus", lambda: 2)
    inputs = list(range(200))  # 100 waiting tasks, then 100 computing ones
    switched_to = []
    for _ in range(3):  # the new probe's round on threads is timed: most of three
        with poolwise.Pool(workers=4) as pool:
            results, report = pool.map(waits_then_computes, inputs, report=True)
        assert results == inputs
        assert report.tasks_done == 200
        assert report.reasons[0] == "mode auto chose threads:"
        switched = report.reasons.index(next(r for r in report.reasons if r.startswith("then ")))
        assert "the work changed" in report.reasons[switched + 1]
        switched_to.append(report.reasons[switched])
    # The new probe found compute that holds the GIL: processes, with 2 CPUs (threads, on
    # all CPUs, on a build without a GIL).
    wanted = f"then switched to {pure_python_mode()}:"
    assert switched_to.count(wanted) >= 2, switched_to


def test_steady_work_is_decided_once() -> None:
    with poolwise.Pool(workers=2) as pool:
        _, report = pool.map(computes, range(120), report=True)
    assert not [r for r in report.reasons if r.startswith("then ")]


def test_each_input_runs_once_across_a_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    # A switch on every look: the run must still hand each input to exactly one mode.
    monkeypatch.setattr(auto, "DRIFT_FACTOR", 0.0)
    monkeypatch.setattr(auto, "DRIFT_FLOOR", 0.0)
    monkeypatch.setattr(auto, "DRIFT_SECONDS", 0.0)
    seen: list[int] = []
    lock = threading.Lock()

    def note(x: int) -> int:
        with lock:
            seen.append(x)
        return x * 2

    with poolwise.Pool("auto", workers=2) as pool:
        results, report = pool.map(note, range(20_000), report=True)
    assert results == [x * 2 for x in range(20_000)]
    assert sorted(seen) == list(range(20_000))
    switches = [r for r in report.reasons if r.startswith("then ")]
    assert len(switches) == auto.MAX_REPROBES


def test_a_later_map_of_the_same_function_skips_the_probe() -> None:
    where: list[str] = []

    def waits(x: int) -> int:
        where.append(threading.current_thread().name)
        nap(x)
        return x

    with poolwise.Pool() as pool:
        pool.map(waits, range(8))
        assert threading.main_thread().name in where  # the first map probed here
        where.clear()
        _, report = pool.map(waits, range(8), report=True)
    assert threading.main_thread().name not in where
    assert report.reasons[1] == "as measured in an earlier map of this function:"
