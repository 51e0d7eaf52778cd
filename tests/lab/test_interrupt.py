"""Interruptibility: measured in a short configuration; verdict rules on synthetic figures."""

from __future__ import annotations

import pytest

from poolwise.lab import interrupt
from poolwise.lab.base import DEPENDS, HOLDS, NOT_HERE, LabSettings, Measurement


@pytest.mark.slow
def test_processes_and_threads_are_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interrupt, "QUICK_BLOCK", 0.4)
    measurement = interrupt.EXPERIMENT.run(LabSettings(cpus=2))
    figures = measurement.figures
    for name in (
        "process, Python loop: s to stop",
        "process, blocked in C: s to stop",
        "thread, Python loop: s to stop",
        "thread, blocked in C: s to stop",
    ):
        # the contract: a Python loop is stopped, and a process killed, within 0.5 s of
        # the deadline (generous: a busy 2-core machine)
        if "blocked in C" not in name or name.startswith("process"):
            assert 0 <= float(figures[name]) <= 0.5, name
    # a thread blocked in C can only stop once its call returned
    assert float(figures["thread, blocked in C: s to stop"]) >= 0.4 - interrupt.TIMEOUT - 0.05


def _figures(
    process: float, thread_loop: float, thread_c: float
) -> Measurement[interrupt.StopTimes]:
    return Measurement(
        interrupt.StopTimes(
            timeout_s=interrupt.TIMEOUT,
            blocking_s=interrupt.QUICK_BLOCK,
            process_loop_s=process,
            process_c_s=process,
            thread_loop_s=thread_loop,
            thread_c_s=thread_c,
        )
    )


@pytest.mark.parametrize(
    ("measurement", "status"),
    [
        (_figures(0.01, 0.02, 0.8), DEPENDS),  # loop stops, C call does not
        (_figures(0.01, 5.0, 5.0), HOLDS),  # threads never stopped in time
        (_figures(0.01, 0.02, 0.03), NOT_HERE),  # threads as prompt as a process
        (_figures(0.9, 0.02, 0.03), NOT_HERE),  # even a process was slow to stop
    ],
)
def test_verdict_rules(measurement: Measurement[interrupt.StopTimes], status: str) -> None:
    assert interrupt.EXPERIMENT.judge(measurement).status == status
