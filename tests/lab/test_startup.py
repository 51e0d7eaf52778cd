"""Starting time: measured in a tiny configuration; verdict rules on synthetic figures."""

from __future__ import annotations

import re

import pytest

from poolwise.lab import startup
from poolwise.lab.base import (
    DEPENDS,
    HOLDS,
    NOT_HERE,
    LabSettings,
    Measurement,
    interpreters_unavailable,
)


@pytest.mark.slow
def test_every_kind_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(startup, "QUICK_STARTS", 1)
    measurement = startup.EXPERIMENT.run(LabSettings(cpus=2))
    figures = measurement.figures
    assert float(figures["thread: ms to first result"]) > 0
    assert float(figures["process (forkserver): ms to first result"]) > 0
    assert float(figures["poolwise processes pool (forkserver): ms to first result"]) > 0
    if interpreters_unavailable() is None:
        assert float(figures["interpreter: ms to first result"]) > 0
        assert float(figures["poolwise interpreters pool: ms to first result"]) > 0
        assert measurement.notes == []
    else:
        assert not [name for name in figures if "interpreter" in name]
        assert len(measurement.notes) == 1
        assert "interpreters were not measured" in measurement.notes[0]
        assert "3.13" in measurement.notes[0]
    reason = startup.EXPERIMENT.judge(measurement).reason
    assert "a thread answered in" in reason, reason  # judged from this measurement
    assert re.search(r"\d ms", reason), reason


def _figures(thread: float, **processes: float) -> Measurement[startup.StartTimes]:
    # A pool far faster than any process must not count: the verdict is on primitives.
    kinds = [startup.StartTime("poolwise threads pool", "pool", thread / 100, thread)]
    kinds.append(startup.StartTime("thread", "thread", thread, thread))
    for method, ms in processes.items():
        kinds.append(startup.StartTime(f"process ({method})", "process", ms, ms))
    return Measurement(startup.StartTimes(tuple(kinds)))


@pytest.mark.parametrize(
    ("measurement", "status"),
    [
        (_figures(0.1, fork=1.5, spawn=50.0), HOLDS),  # 15x >= SLOWER_FACTOR
        (_figures(0.1, fork=0.9, spawn=50.0), DEPENDS),  # 9x: below the factor
        (_figures(1.0, fork=0.8), NOT_HERE),  # a process no slower than a thread
        (_figures(0.1), DEPENDS),  # nothing measured
    ],
)
def test_verdict_rules(measurement: Measurement[startup.StartTimes], status: str) -> None:
    verdict = startup.EXPERIMENT.judge(measurement)
    assert verdict.status == status
    assert verdict.reason


@pytest.mark.parametrize(
    ("measurement", "near"),
    [
        (_figures(0.1, fork=5.0, spawn=50.0), False),  # 50x a thread: far from 10x
        (_figures(0.1, fork=1.05, spawn=50.0), True),  # 10.5x: near SLOWER_FACTOR
        (_figures(0.1), False),  # nothing measured, nothing to be near
    ],
)
def test_a_ratio_near_the_factor_is_measured_again(
    measurement: Measurement[startup.StartTimes], near: bool
) -> None:
    assert startup.EXPERIMENT.near_threshold(measurement) is near
