"""Each rule of decide() on both sides of its threshold, from synthetic figures."""

from __future__ import annotations

import math
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


@pytest.mark.parametrize(
    ("per_task", "mode"), [(rules.TINY_TASK - EPS, "serial"), (rules.TINY_TASK, "threads")]
)
def test_a_tiny_task_is_never_read_as_waiting(per_task: float, mode: str) -> None:
    # a few microseconds with one preemption in them read as "mostly waiting" (#14)
    figures = _figures(
        cpu_share=0.1,
        seconds_per_task=per_task,
        thread_scaling=None,
        pickle_seconds=1e-4,
        total_tasks=20_000,
    )
    decision = decide(figures, cpus=2)
    assert decision.mode == mode
    assert ("too short to tell waiting from computing" in " ".join(decision.reasons)) == (
        mode == "serial"
    )


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


# -- a busy machine: "holds the GIL" only when a CPU stood idle (#14) -----------------------

BUSY = {"idle_cpus": 0.02, "others_cpus": 1.0}


@pytest.mark.parametrize(
    ("round_cpus", "mode"),
    [(rules.PARALLEL_CPUS - EPS, "threads"), (rules.PARALLEL_CPUS, "threads")],
)
def test_threads_that_ran_in_parallel_under_load_release_the_gil(
    round_cpus: float, mode: str
) -> None:
    # 2 threads and a busy program on 2 CPUs: 1.33x, short of scaling, but in parallel
    figures = _figures(thread_scaling=1.33, round_cpus=round_cpus, idle_cpus=0.0, others_cpus=0.64)
    decision = decide(figures, cpus=2)
    assert decision.mode == mode
    text = " ".join(decision.reasons)
    assert ("ran in parallel" in text) == (round_cpus >= rules.PARALLEL_CPUS)
    assert "holds the GIL" not in text


@pytest.mark.parametrize(
    ("idle", "says_gil"),
    [(rules.IDLE_CPUS_TO_TELL - EPS, False), (rules.IDLE_CPUS_TO_TELL, True)],
)
def test_the_gil_is_named_only_when_a_cpu_stood_idle(idle: float, says_gil: bool) -> None:
    figures = _figures(round_cpus=1.0, idle_cpus=idle, others_cpus=2 - 1 - idle)
    decision = decide(figures, cpus=2)
    text = " ".join(decision.reasons)
    assert ("holds the GIL" in text) == says_gil
    assert ("cannot tell" in text) == (not says_gil)
    assert decision.mode == ("processes" if says_gil else "threads")


def test_without_a_process_round_a_busy_machine_takes_threads_the_cheaper_choice() -> None:
    decision = decide(_figures(round_cpus=1.0, **BUSY), cpus=2)
    assert decision.mode == "threads"
    assert "cheaper choice" in decision.reasons[-1]


@pytest.mark.parametrize(
    ("processes", "mode"),
    [(1.0 * rules.THREADS_GAIN - EPS, "threads"), (1.0 * rules.THREADS_GAIN, "processes")],
)
def test_a_process_round_decides_what_the_thread_round_could_not(
    processes: float, mode: str
) -> None:
    figures = _figures(round_cpus=1.0, process_scaling=processes, **BUSY)
    decision = decide(figures, cpus=2)
    assert decision.mode == mode
    assert "processes ran" in decision.reasons[-1]


def test_a_build_without_a_gil_is_never_said_to_hold_it() -> None:
    figures = _figures(round_cpus=1.0, idle_cpus=0.9, others_cpus=0.1)
    text = " ".join(decide(figures, cpus=2, gil_enabled=False).reasons)
    assert "holds the GIL" not in text
    assert "no GIL" in text


@pytest.mark.parametrize(
    ("scaling", "says"),
    [
        (rules.THREADS_GAIN - EPS, "runs one thread at a time"),
        (rules.THREADS_GAIN, "the threads slowed each other down"),
    ],
)
def test_a_build_without_a_gil_says_what_its_thread_round_showed(scaling: float, says: str) -> None:
    # 1.3x on 2 threads is a gain short of scaling, not "one thread at a time" (#16)
    figures = _figures(thread_scaling=scaling, round_cpus=1.0, idle_cpus=0.9, others_cpus=0.1)
    decision = decide(figures, cpus=2, gil_enabled=False)
    assert says in " ".join(decision.reasons)
    assert decision.mode == "processes"


def test_a_build_without_a_gil_needs_no_process_round_to_tell(  # #16
) -> None:
    figures = _figures(seconds_per_task=0.05, total_tasks=400, **BUSY)
    assert rules.wants_process_round(figures, cpus=2)
    assert not rules.wants_process_round(figures, cpus=2, gil_enabled=False)
    decision = decide(figures, cpus=2, gil_enabled=False)
    assert decision.mode == "threads"
    assert "runs without a GIL" in " ".join(decision.reasons)
    assert "holds the GIL" not in " ".join(decision.reasons)


def test_a_process_round_is_wanted_only_when_the_thread_round_could_not_tell() -> None:
    left = rules.PROCESS_ROUND_SECONDS / 0.03  # tasks of 30 ms worth the round
    long = {"total_tasks": int(left) + 10, "round_cpus": 1.0}
    assert rules.wants_process_round(_figures(**long, **BUSY), cpus=2)
    assert rules.wants_process_round(_figures(**{**long, "total_tasks": None}, **BUSY), cpus=2)
    # too little work left to pay a pool's start-up
    assert not rules.wants_process_round(_figures(total_tasks=10, round_cpus=1.0, **BUSY), cpus=2)
    # an idle CPU: the round could tell
    assert not rules.wants_process_round(_figures(**long, idle_cpus=0.9, others_cpus=0.1), cpus=2)
    # in parallel: the round could tell
    assert not rules.wants_process_round(_figures(**{**long, "round_cpus": 1.4}, **BUSY), cpus=2)
    # waiting work, one CPU: never
    assert not rules.wants_process_round(_figures(**long, cpu_share=0.1, **BUSY), cpus=2)
    assert not rules.wants_process_round(_figures(**long, **BUSY), cpus=1)


@pytest.mark.parametrize(
    ("held", "mode", "says"),
    [
        (rules.GIL_HELD_SHARE - EPS, "threads", "found the GIL free"),
        (rules.GIL_HELD_SHARE, "processes", "waited for the GIL"),
    ],
)
def test_on_a_busy_machine_the_gil_meter_tells(held: float, mode: str, says: str) -> None:
    figures = _figures(round_cpus=1.0, gil_held_share=held, **BUSY)
    decision = decide(figures, cpus=2)
    assert decision.mode == mode
    assert says in " ".join(decision.reasons)
    assert not rules.wants_process_round(figures, cpus=2)  # no round on processes needed


def test_work_the_gil_meter_caught_holding_the_gil_needs_no_thread_round() -> None:
    figures = _figures(thread_scaling=None, gil_held_share=0.96)
    decision = decide(figures, cpus=2)
    assert decision.mode == "processes"
    assert "so no round on threads" in " ".join(decision.reasons)


def _waiting_figures(**changes: Any) -> ProbeFigures:
    """Probe figures of tasks that wait part of the time, with no total or function cost
    known: what the rules for work that waits and computes (#18) are tested on."""
    return _figures(**{"total_tasks": None, "function_pickle_seconds": None, **changes})


@pytest.mark.parametrize(
    ("share", "remaining", "workers"),
    [
        (0.95, None, 2),  # computes nearly all the time: one thread per CPU
        (0.7, None, 2),  # MIXED_CPU_SHARE: still one per CPU
        (0.5, None, 4),  # waits half the time: 2 CPUs / 0.5
        (0.4, None, 5),
        (0.4, 3, 3),  # no more workers than tasks left (never under the CPUs)
    ],
)
def test_computing_tasks_that_also_wait_get_more_workers(
    share: float, remaining: int | None, workers: int
) -> None:
    # A video stream: fetch a frame (wait), encode it in C that releases the GIL (#18).
    total = None if remaining is None else remaining + 3
    figures = _waiting_figures(
        cpu_share=share,
        thread_scaling=2.0,
        total_tasks=total,
    )
    decision = rules.decide(figures, cpus=2)
    assert (decision.mode, decision.workers) == ("threads", workers)
    assert ("also waits" in " ".join(decision.reasons)) is (workers > 2)


def test_gil_bound_tasks_that_also_wait_get_more_processes() -> None:
    figures = _waiting_figures(
        cpu_share=0.5,
        thread_scaling=1.0,
        idle_cpus=1.0,
        gil_held_share=0.9,
    )
    decision = rules.decide(figures, cpus=2)
    assert (decision.mode, decision.workers) == ("processes", 4)


@pytest.mark.parametrize(
    ("held", "mode"),
    [
        # The meter found the GIL held for about the computing share: 0.3 / 0.4 = 75%.
        (0.3, "processes"),
        # GIL_HELD_SHARE: held for half the computing (0.2 / 0.4) still holds it...
        (0.2, "processes"),
        # ...0.19 / 0.4 does not: the computing released it, threads scale for real.
        (0.19, "threads"),
        (0.01, "threads"),
    ],
)
def test_threads_that_only_overlapped_the_waiting_are_not_read_as_scaling(
    held: float, mode: str
) -> None:
    # A frame fetched (60% waiting), then encoded in pure Python: 2 threads run 2x one
    # thread's rate by overlapping the fetches, while the encoding holds the GIL (#18).
    figures = _waiting_figures(
        cpu_share=0.4,
        thread_scaling=2.0,
        idle_cpus=0.5,
        gil_held_time=held,
    )
    decision = rules.decide(figures, cpus=2)
    assert (decision.mode, decision.workers) == (mode, 5)
    said = " ".join(decision.reasons)
    assert ("overlapped the waiting, not the computing" in said) is (mode == "processes")
    # without a GIL the threads computed in parallel whatever the meter says
    assert rules.decide(figures, cpus=2, gil_enabled=False).mode == "threads"


@pytest.mark.parametrize(
    ("share", "held", "mode"),
    [
        # Mostly waiting, computing in pure Python 30% of the time: threads would top out
        # at 3.3x serial, processes overlap the waits and compute on every CPU.
        (0.3, 0.25, "processes"),
        # The computing releases the GIL: threads, as for any waiting work.
        (0.3, 0.05, "threads"),
        # GIL_BOUND_WAITING_SHARE: computing under 10% of the time stays on threads (they
        # reach 10x serial before the GIL binds), held or not.
        (0.09, 0.09, "threads"),
        (0.1, 0.1, "processes"),
    ],
)
def test_waiting_tasks_whose_computing_holds_the_gil(share: float, held: float, mode: str) -> None:
    figures = _waiting_figures(
        cpu_share=share,
        thread_scaling=None,
        gil_held_time=held,
    )
    decision = rules.decide(figures, cpus=2)
    assert decision.mode == mode, decision.reasons
    if mode == "processes":
        assert decision.workers == min(rules.MAX_IO_WORKERS, math.ceil(2 / share))
        assert "threads would top out" in " ".join(decision.reasons)
    assert rules.decide(figures, cpus=1).mode != "processes"
    assert rules.decide(figures, cpus=2, gil_enabled=False).mode == "threads"
