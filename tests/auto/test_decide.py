"""Each rule of decide() on both sides of its threshold, from synthetic figures."""

from __future__ import annotations

from typing import Any

import pytest

from poolwise import decide as rules
from poolwise.decide import ProbeFigures, decide

EPS = 1e-6


def _figures(**changes: Any) -> ProbeFigures:
    base: dict[str, Any] = {
        "tasks": 3,
        "seconds_per_task": 0.03,
        "cpu_share": 1.0,
        "thread_scaling": 1.0,
        "scaling_threads": 2,
        "pickle_seconds": 1e-5,
        "pickle_bytes": 100,
        "total_tasks": 100,
        "function_pickle_seconds": 1e-4,
    }
    base.update(changes)
    return ProbeFigures(**base)


@pytest.mark.parametrize(
    ("share", "mode"),
    [(rules.IO_CPU_SHARE - EPS, "threads"), (rules.IO_CPU_SHARE, "processes")],
)
def test_waiting_tasks_go_to_threads(share: float, mode: str) -> None:
    decision = decide(_figures(cpu_share=share), cpus=2)
    assert decision.mode == mode


def test_io_threads_are_sized_for_concurrency_not_cores() -> None:
    decision = decide(_figures(cpu_share=0.02, seconds_per_task=0.02), cpus=2)
    assert (decision.mode, decision.workers) == ("threads", rules.MAX_IO_WORKERS)
    assert "I/O-bound" in " ".join(decision.reasons)
    decision = decide(_figures(cpu_share=0.2), cpus=2)
    assert decision.workers == 10  # 2 CPUs / 20% CPU each


def test_one_cpu_computes_serially() -> None:
    decision = decide(_figures(), cpus=1)
    assert decision.mode == "serial"
    assert "only 1 usable CPU" in decision.reasons[-1]


@pytest.mark.parametrize(
    ("scaling", "mode"),
    [(rules.SCALING_SHARE * 2, "threads"), (rules.SCALING_SHARE * 2 - EPS, "processes")],
)
def test_scaling_on_threads_means_the_gil_is_released(scaling: float, mode: str) -> None:
    decision = decide(_figures(thread_scaling=scaling), cpus=2)
    assert decision.mode == mode
    if mode == "threads":
        assert "releases the GIL" in decision.reasons[-1]


def test_free_threaded_build_is_named() -> None:
    decision = decide(_figures(thread_scaling=1.9), cpus=2, gil_enabled=False)
    assert "no GIL" in decision.reasons[-1]


@pytest.mark.parametrize(
    ("pickle_seconds", "mode"),
    [(0.03 * rules.TRAVEL_SHARE, "processes"), (0.03 * rules.TRAVEL_SHARE + EPS, "serial")],
)
def test_processes_only_when_the_data_travels_cheaply(pickle_seconds: float, mode: str) -> None:
    assert decide(_figures(pickle_seconds=pickle_seconds), cpus=2).mode == mode


def test_unpicklable_work_is_not_sent_to_processes() -> None:
    decision = decide(_figures(pickle_seconds=None), cpus=2)
    assert decision.mode == "serial"
    assert "cannot be pickled" in decision.reasons[-1]


def test_a_costly_function_keeps_work_off_processes() -> None:
    # 97 remaining tasks on 2 CPUs: 48 per worker x 30 ms x 30% = 0.43 s allowed
    assert decide(_figures(function_pickle_seconds=0.4), cpus=2).mode == "processes"
    decision = decide(_figures(function_pickle_seconds=0.5), cpus=2)
    assert decision.mode == "serial"
    assert "closure over a large object" in decision.reasons[-1]


def test_tiny_remaining_work_runs_serially() -> None:
    start = rules.POOL_START_SECONDS["processes"]
    many = _figures(seconds_per_task=start, total_tasks=3 + 2)  # 2 left: 2x start-up
    assert decide(many, cpus=2).mode == "processes"
    few = _figures(seconds_per_task=start / 4, total_tasks=3 + 2)  # half the start-up
    decision = decide(few, cpus=2)
    assert decision.mode == "serial"
    assert "less than starting processes" in decision.reasons[-1]


def test_every_reason_names_a_figure() -> None:
    decision = decide(_figures(cpu_share=0.9, thread_scaling=1.02), cpus=2)
    text = " ".join(decision.reasons)
    for figure in ("30 ms", "90%", "1.02x", "pickles in"):
        assert figure in text


@pytest.mark.parametrize(
    ("scaling", "mode"),
    [(rules.THREADS_GAIN - 0.05, "serial"), (rules.THREADS_GAIN + 0.05, "threads")],
)
def test_work_too_costly_to_send_runs_on_threads_if_they_still_gained(
    scaling: float, mode: str
) -> None:
    # a 64 MB array per task: pickling would cost more than the sum itself
    figures = _figures(thread_scaling=scaling, pickle_seconds=0.1, seconds_per_task=0.003)
    decision = decide(figures, cpus=2)
    assert decision.mode == mode
    if mode == "threads":
        assert decision.workers == 2
        assert f"{scaling:.2f}x one thread's rate" in decision.reasons[-1]
    else:
        assert decision.reasons[-1].endswith("so serial")
