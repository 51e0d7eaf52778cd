"""The memory-footprint row: memory per worker is measured, nothing is left, the verdict rule."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

import pytest
from support import wait_until, worker_processes

from poolwise.lab import footprint, footprint_sweeps
from poolwise.lab.base import (
    DEPENDS,
    HOLDS,
    NOT_HERE,
    LabSettings,
    Measurement,
    interpreters_unavailable,
)
from poolwise.system import default_start_method

if TYPE_CHECKING:
    import psutil


def _noworker_processes() -> None:
    wait_until(lambda: not worker_processes(), what=f"workers left: {worker_processes()}")


def test_memory_per_worker_is_measured_for_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(footprint, "QUICK_MAX_WORKERS", 2)
    threads_before = set(threading.enumerate())

    measurement = footprint.EXPERIMENT.run(LabSettings(full=False, cpus=2))

    figures = measurement.figures
    assert figures["workers (most)"] == 2
    kinds = [s.name for s in measurement.series]
    assert "thread" in kinds
    assert "poolwise threads pool" in kinds
    processes = [kind for kind in kinds if "process" in kind and "interpreter" not in kind]
    assert any(kind.startswith("process (") for kind in processes), kinds
    for kind in processes:
        assert float(figures[f"{kind}: MB per worker (USS)"]) > 0, kind
    for kind in ("thread", "poolwise threads pool"):
        # A thread's stack page can hide in heap noise, so only "measured, and small".
        assert -1 < float(figures[f"{kind}: MB per worker (USS)"]) < 1, kind
    if interpreters_unavailable() is None:
        # An interpreter has its own modules and objects in this process: some MB.
        for kind in ("interpreter", "poolwise interpreters pool"):
            assert float(figures[f"{kind}: MB per worker (USS)"]) > 0.1, kind
        assert measurement.notes == []
    else:
        assert not [kind for kind in kinds if "interpreter" in kind]
        assert len(measurement.notes) == 1
        assert "interpreters were not measured" in measurement.notes[0]
    for series in measurement.series:
        assert series.x == [1.0, 2.0], series
        assert len(series.y) == len(series.x)
    reason = footprint.EXPERIMENT.judge(measurement).reason
    assert "a thread added" in reason, reason  # judged from this measurement's figures
    assert re.search(r"\d (KB|MB)", reason), reason
    _noworker_processes()
    assert set(threading.enumerate()) <= threads_before | {
        t for t in threading.enumerate() if t.name == "poolwise-warm-reaper"
    }


def test_raw_processes_are_stopped_when_measuring_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_pids: object) -> tuple[float, float | None]:
        raise RuntimeError("measuring failed")

    monkeypatch.setattr(footprint_sweeps, "total_mb", fail)
    with pytest.raises(RuntimeError, match="measuring failed"):
        footprint_sweeps.processes_sweep(default_start_method(), [1, 2])
    _noworker_processes()


def test_raw_threads_are_stopped_when_measuring_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = footprint_sweeps.memory_mb
    calls = []

    def fail_after_baseline(process: psutil.Process) -> tuple[float, float | None]:
        calls.append(process)
        if len(calls) > 1:
            raise RuntimeError("measuring failed")
        return real(process)

    threads_before = threading.active_count()
    monkeypatch.setattr(footprint_sweeps, "memory_mb", fail_after_baseline)
    with pytest.raises(RuntimeError, match="measuring failed"):
        footprint_sweeps.threads_sweep([1, 2])
    assert threading.active_count() == threads_before


def test_worker_counts_are_capped_small_in_the_quick_lab() -> None:
    assert footprint.counts_for(LabSettings(full=False, cpus=64)) == [1, 2, 4]
    assert footprint.counts_for(LabSettings(full=False, cpus=2)) == [1, 2]
    assert footprint.counts_for(LabSettings(full=True, cpus=2)) == [1, 2, 4, 8]
    assert footprint.counts_for(LabSettings(full=True, cpus=64)) == [1, 2, 4, 8]


# The verdict rule, from synthetic figures on both sides of each threshold.


def _measured(thread: float, fork: float, spawn: float = 8.0) -> Measurement[footprint.Footprint]:
    kinds = (
        footprint.WorkerMemory("thread", "thread", thread),
        footprint.WorkerMemory("process (fork)", "process", fork, fork + 5),
        footprint.WorkerMemory("process (spawn)", "process", spawn, spawn + 2),
        # Pools must not count: the verdict is on the primitives.
        footprint.WorkerMemory("poolwise threads pool", "pool", thread),
        footprint.WorkerMemory("poolwise processes pool (spawn)", "pool", spawn + 3),
    )
    return Measurement(footprint.Footprint(kinds, most_workers=2))


def _judge(measurement: Measurement[footprint.Footprint]) -> tuple[str, str]:
    verdict = footprint.EXPERIMENT.judge(measurement)
    return verdict.status, verdict.reason


def test_holds_when_the_lightest_process_costs_the_factor_or_more() -> None:
    thread = 0.1
    status, reason = _judge(_measured(thread, fork=thread * footprint.HEAVIER_FACTOR))
    assert status == HOLDS
    assert "a thread added 102 KB" in reason
    assert "process (fork), added 0.50 MB (5x)" in reason
    assert "process (spawn) 8.00 MB (80x)" in reason


def test_depends_when_fork_stays_under_the_factor_and_spawn_does_not() -> None:
    thread = 0.1
    status, reason = _judge(_measured(thread, fork=thread * footprint.HEAVIER_FACTOR * 0.95))
    assert status == DEPENDS
    assert "process (fork) added only 0.47 MB" in reason
    assert "copy-on-write" in reason
    assert "process (spawn) added 8.00 MB" in reason


def test_does_not_hold_when_every_process_stays_under_the_factor() -> None:
    thread = 2.0
    below = thread * footprint.HEAVIER_FACTOR * 0.95
    status, reason = _judge(_measured(thread, fork=3.0, spawn=below))
    assert status == NOT_HERE
    assert "process (spawn), the heaviest, 9.50 MB" in reason
    # ... and just over the factor, the same figures would make it depend on the method.
    above = thread * footprint.HEAVIER_FACTOR * 1.05
    assert _judge(_measured(thread, fork=3.0, spawn=above))[0] == DEPENDS


@pytest.mark.parametrize("thread", [0.0, -0.02, 0.0005, footprint.THREAD_FLOOR_MB / 2])
def test_a_thread_measured_below_one_page_counts_as_one_page(thread: float) -> None:
    floor = footprint.THREAD_FLOOR_MB
    status, reason = _judge(_measured(thread, fork=floor * footprint.HEAVIER_FACTOR * 1.05))
    assert status == HOLDS
    assert ("under 1 KB" if thread < 1 / 1024 else f"{thread * 1024:.0f} KB") in reason
    assert _judge(_measured(thread, fork=floor * footprint.HEAVIER_FACTOR * 0.95))[0] == DEPENDS


def test_depends_when_no_process_could_be_measured() -> None:
    thread = footprint.WorkerMemory("thread", "thread", 0.01)
    assert _judge(Measurement(footprint.Footprint((thread,), most_workers=2)))[0] == DEPENDS


@pytest.mark.parametrize(
    ("fork", "spawn", "near"),
    [
        (0.5, 40.0, False),  # fork 2x and spawn 40x a 0.25 MB thread: far from 5x
        (1.3, 40.0, True),  # fork at 5.2x: near the factor
        (0.5, 1.2, True),  # spawn at 4.8x, the heaviest: near it
    ],
)
def test_a_ratio_near_the_factor_is_measured_again(fork: float, spawn: float, near: bool) -> None:
    measurement = _measured(thread=0.25, fork=fork, spawn=spawn)
    assert footprint.EXPERIMENT.near_threshold(measurement) is near
