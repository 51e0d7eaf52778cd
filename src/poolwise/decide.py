"""The rules that choose a mode from measured figures, each stating why, in words.

``decide`` never measures: it takes what a probe measured (``ProbeFigures``) and the
machine's facts, and returns a ``Decision`` whose ``reasons`` name each figure and the rule
it triggered. Tests feed it synthetic figures on both sides of every threshold.

The rules, in order (DESIGN.md, "How auto decides"):
1. One usable CPU: no pool can add compute; waiting work still overlaps on threads.
2. Tasks that mostly wait (thread CPU time / wall time below ``IO_CPU_SHARE``): I/O-bound,
   threads sized for concurrency, not for cores.
3. Compute that scales on threads (the work releases the GIL, or the build has none):
   threads on every CPU.
4. Compute that holds the GIL: processes, if the function and data travel cheaply
   enough (pickling below ``TRAVEL_SHARE`` of the compute); else threads if they still
   gained ``THREADS_GAIN`` (memory-bound work scales partly), else serial.
5. Whatever the mode: work so small that a pool costs more than it saves runs serially.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .units import duration

__all__ = [
    "IO_CPU_SHARE",
    "MAX_IO_WORKERS",
    "POOL_START_SECONDS",
    "SCALING_SHARE",
    "THREADS_GAIN",
    "TRAVEL_SHARE",
    "Decision",
    "ProbeFigures",
    "decide",
]

#: Below this share of wall time spent on the CPU, a task is waiting, not computing (a
#: guess: a task that computes a third of the time still gains from overlapping).
IO_CPU_SHARE = 0.35
#: Most threads for waiting work: enough to overlap many slow requests; beyond it, the
#: other end (a server, a disk) is the limit (a guess, as ThreadPoolExecutor's 32 is).
MAX_IO_WORKERS = 64
#: Threads "scale" when N threads reach this share of N times one thread's throughput
#: (a guess: 2 threads at 1.5x on 2 cores is scaling; 1.1x is the GIL).
SCALING_SHARE = 0.7
#: Threads that ran this many times one thread's rate beat serial, even short of scaling
#: (seen: a NumPy sum over 64 MB, bound by memory bandwidth, 1.3-1.4x on 2 threads; a guess
#: above the ~1.05x noise of GIL-holding work).
THREADS_GAIN = 1.15
#: Processes pay off while pickling a task's data costs less than this share of its
#: compute time (a guess: beyond a third, copying eats the gain on 2 cores).
TRAVEL_SHARE = 0.3
#: What starting a pool costs, per kind (measured on 2 cores: a threads pool ~0.5 ms, a
#: forkserver pool ~7 ms to its first result, more with more workers).
POOL_START_SECONDS = {"threads": 0.001, "processes": 0.01}


@dataclass(frozen=True)
class ProbeFigures:
    """What probing measured on the first tasks.

    Attributes:
        tasks: tasks probed (run on one thread).
        seconds_per_task: their mean wall time.
        cpu_share: their thread CPU time over wall time (0: only waiting, 1: only compute).
        thread_scaling: throughput of ``scaling_threads`` threads over one thread's, or
            None if not measured.
        scaling_threads: threads used for ``thread_scaling``.
        pickle_seconds: seconds to pickle one task's function call and result, or None
            if the function or its data cannot be pickled.
        pickle_bytes: bytes of one task's pickled arguments and result.
        total_tasks: the number of inputs, if known.
        function_pickle_seconds: seconds to pickle the function itself (sent once to
            each process worker; a closure over a large object makes it costly).
    """

    tasks: int
    seconds_per_task: float
    cpu_share: float
    thread_scaling: float | None
    scaling_threads: int
    pickle_seconds: float | None
    pickle_bytes: int
    total_tasks: int | None = None
    function_pickle_seconds: float | None = None


@dataclass
class Decision:
    """Where to run, with how many workers, and why."""

    mode: str
    workers: int
    reasons: list[str] = field(default_factory=list)


def decide(figures: ProbeFigures, cpus: int, gil_enabled: bool = True) -> Decision:
    """Choose the mode and workers for the remaining tasks from the probe's figures."""
    per_task = figures.seconds_per_task
    share = figures.cpu_share
    reasons = [
        f"the first {figures.tasks} tasks took {duration(per_task)} each, "
        f"{share:.0%} of it on the CPU"
    ]
    remaining = None if figures.total_tasks is None else max(0, figures.total_tasks - figures.tasks)

    if share < IO_CPU_SHARE:
        # Enough threads that the CPU time of all of them fills the cores.
        wanted = math.ceil(cpus / max(share, 1.0 / MAX_IO_WORKERS))
        workers = max(2, min(MAX_IO_WORKERS, wanted, remaining or MAX_IO_WORKERS))
        reasons.append(
            f"under {IO_CPU_SHARE:.0%} on the CPU means the tasks mostly wait (I/O-bound): "
            f"threads, {workers} of them to overlap the waiting"
        )
        return _unless_tiny(Decision("threads", workers, reasons), figures, remaining)

    reasons.append(f"{IO_CPU_SHARE:.0%} or more on the CPU means the tasks compute")
    if cpus <= 1:
        reasons.append("only 1 usable CPU here: no pool can add compute, so serial")
        return Decision("serial", 1, reasons)

    scaling = figures.thread_scaling
    ideal = figures.scaling_threads
    if scaling is not None and scaling >= SCALING_SHARE * ideal:
        why = "the build has no GIL" if not gil_enabled else "the work releases the GIL"
        reasons.append(
            f"{ideal} threads ran {scaling:.2f}x one thread's rate (at least "
            f"{SCALING_SHARE:.0%} of {ideal}x): {why}, so threads on all {cpus} CPUs"
        )
        return _unless_tiny(Decision("threads", cpus, reasons), figures, remaining)
    if scaling is not None:
        reasons.append(
            f"{ideal} threads ran {scaling:.2f}x one thread's rate: the work holds the GIL"
        )

    if figures.pickle_seconds is None:
        reasons.append("the function or its data cannot be pickled, so not processes")
        return _threads_or_serial(reasons, figures, cpus, remaining)
    travel = figures.pickle_seconds / per_task if per_task > 0 else math.inf
    if travel > TRAVEL_SHARE:
        reasons.append(
            f"sending a task costs {duration(figures.pickle_seconds)} of pickling "
            f"({figures.pickle_bytes:,} bytes), {travel:.0%} of its compute (over "
            f"{TRAVEL_SHARE:.0%}): processes would spend it copying"
        )
        return _threads_or_serial(reasons, figures, cpus, remaining)
    # The function travels once to each worker: weigh it against each worker's share.
    per_worker = max(1, (remaining if remaining is not None else figures.tasks) // cpus)
    fn_seconds = figures.function_pickle_seconds or 0.0
    if fn_seconds > TRAVEL_SHARE * per_task * per_worker:
        reasons.append(
            f"the function itself takes {duration(fn_seconds)} to pickle (a closure over a large "
            f"object?), over {TRAVEL_SHARE:.0%} of a worker's {per_worker} tasks of compute: "
            "processes would spend it copying"
        )
        return _threads_or_serial(reasons, figures, cpus, remaining)
    reasons.append(
        f"a task's data pickles in {duration(figures.pickle_seconds)} ({travel:.0%} of its "
        f"compute, under {TRAVEL_SHARE:.0%}): processes on all {cpus} CPUs"
    )
    return _unless_tiny(Decision("processes", cpus, reasons), figures, remaining)


def _threads_or_serial(
    reasons: list[str], figures: ProbeFigures, cpus: int, remaining: int | None
) -> Decision:
    """Not processes: threads if they gained THREADS_GAIN in the scaling round, else serial."""
    scaling = figures.thread_scaling
    if scaling is not None and scaling >= THREADS_GAIN:
        reasons.append(
            f"but {figures.scaling_threads} threads still ran {scaling:.2f}x one thread's "
            f"rate (at least {THREADS_GAIN}x): threads on all {cpus} CPUs"
        )
        return _unless_tiny(Decision("threads", cpus, reasons), figures, remaining)
    reasons[-1] += ", so serial"
    return Decision("serial", 1, reasons)


def _unless_tiny(decision: Decision, figures: ProbeFigures, remaining: int | None) -> Decision:
    """Serial instead when the remaining work is smaller than the pool's start-up."""
    if remaining is None:
        return decision
    work = remaining * figures.seconds_per_task
    start = POOL_START_SECONDS.get(decision.mode, 0.0)
    if work < start:
        decision.reasons.append(
            f"but the {remaining} remaining tasks are {duration(work)} of work, less than "
            f"starting {decision.mode} ({duration(start)}): serial"
        )
        return Decision("serial", 1, decision.reasons)
    return decision
