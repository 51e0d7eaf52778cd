"""The rules that choose a mode from measured figures, each stating why, in words.

``decide`` never measures: it takes what a probe measured (``ProbeFigures``) and the
machine's facts, and returns a ``Decision`` whose ``reasons`` name each figure and the rule
it triggered. Tests feed it synthetic figures on both sides of every threshold.

The rules, in order (DESIGN.md, "How auto decides"):
1. One usable CPU: no pool can add compute; waiting work still overlaps on threads.
2. Tasks that mostly wait (thread CPU time / wall time below ``IO_CPU_SHARE``): I/O-bound,
   threads sized for concurrency, not for cores. Tasks under ``TINY_TASK`` count as compute.
3. Compute that scales on threads (the work releases the GIL, or the build has none):
   threads on every CPU. Threads that kept more than ``PARALLEL_CPUS`` CPUs busy at once
   ran in parallel, even where other programs left too little CPU for their rate to scale.
4. Threads that neither scaled nor ran in parallel while CPUs stood idle: the work holds
   the GIL. While other programs left no idle CPU, the round cannot tell (#14): a round on
   processes, when the work was long enough to measure one (``PROCESS_ROUND_SECONDS``),
   says whether processes gain; without one, threads, the cheaper choice.
5. Compute that holds the GIL: processes, if the function and data travel cheaply
   enough (pickling below ``TRAVEL_SHARE`` of the compute); else threads if they still
   gained ``THREADS_GAIN`` (memory-bound work scales partly), else serial.
6. Whatever the mode: work so small that a pool costs more than it saves runs serially.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .units import duration

__all__ = [
    "GIL_BOUND_WAITING_SHARE",
    "GIL_HELD_SHARE",
    "IDLE_CPUS_TO_TELL",
    "IO_CPU_SHARE",
    "MAX_IO_WORKERS",
    "MIXED_CPU_SHARE",
    "PARALLEL_CPUS",
    "POOL_START_SECONDS",
    "PROCESS_ROUND_SECONDS",
    "SCALING_SHARE",
    "THREADS_GAIN",
    "TINY_TASK",
    "TRAVEL_SHARE",
    "Decision",
    "ProbeFigures",
    "cannot_tell",
    "decide",
    "ran_in_parallel",
    "wants_process_round",
]

#: Below this share of wall time spent on the CPU, a task is waiting, not computing (a
#: guess: a task that computes a third of the time still gains from overlapping).
IO_CPU_SHARE = 0.35
#: Tasks shorter than this cannot be told waiting from computing: the share of a few
#: microseconds on the CPU is noise (one preemption on a busy machine), and waiting that
#: short gains nothing from threads (seconds; about the threads backend's chunk cost x 3).
TINY_TASK = 1e-4
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
#: Threads that kept more than this many CPUs busy at once ran in parallel: work that holds
#: the GIL keeps one busy (a little more with the pool's own threads; a guess above that).
PARALLEL_CPUS = 1.25
#: A round on threads that did not scale says "holds the GIL" only if at least this many
#: CPUs stood idle meanwhile: a free CPU the threads could not use (a guess; the kernel
#: counts idle time in 10 ms ticks, so less is noise on a 50 ms round).
IDLE_CPUS_TO_TELL = 0.5
#: Computing tasks under this share on the CPU also wait (a frame to fetch, a reply to
#: read): their pool gets cpus / share workers, so the CPUs compute while some wait, as the
#: I/O rule sizes threads (a guess: a task on the CPU 70% of the time or more keeps one
#: worker per CPU busy enough; measured on the lab's video-streaming row, #18).
MIXED_CPU_SHARE = 0.7
#: Waiting tasks that compute at least this share of the time, holding the GIL, go where the
#: computing runs in parallel: threads would top out at 1 / share (here 10x) one thread's
#: rate (a guess: below it, threads are lighter and the GIL rarely binds; #18).
GIL_BOUND_WAITING_SHARE = 0.1
#: The GIL meter says "holds the GIL" when at least this share of its wake-ups waited for it
#: (measured on 2 busy CPUs: pure Python 0.83-1.0, hashlib, zlib, NumPy 0-0.03).
GIL_HELD_SHARE = 0.5
#: Serial seconds of work left for which a round on processes is worth its start-up when
#: the thread round could not tell (a guess: a fresh forkserver pool costs ~0.05-0.6 s).
PROCESS_ROUND_SECONDS = 0.5
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
        round_cpus: CPUs this process kept busy during the thread round, on average.
        idle_cpus: CPUs that stood idle during the thread round (None: not known).
        others_cpus: CPUs other programs used during the thread round.
        process_scaling: throughput of ``scaling_threads`` processes over one thread's,
            from a round on processes run when the thread round could not tell (#14).
        gil_held_share: share of another thread's wake-ups that found the GIL held
            while the first tasks ran (``gil_meter``; None: no wake-up measured).
        gil_held_time: share of the first tasks' time that other thread waited for the GIL:
            about the share they held it (``GilMeter.held_time_share``).
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
    round_cpus: float | None = None
    idle_cpus: float | None = None
    others_cpus: float | None = None
    process_scaling: float | None = None
    gil_held_share: float | None = None
    gil_held_time: float | None = None


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

    waits = share < IO_CPU_SHARE and per_task >= TINY_TASK
    gil_bound = gil_enabled and cpus > 1 and _computing_holds_the_gil(figures)
    # Share of the tasks' computing the GIL meter found the GIL held (gil_bound's figure).
    computing_held = (figures.gil_held_time or 0.0) / share if share > 0 else 0.0
    if waits and not gil_bound:
        # Enough threads that the CPU time of all of them fills the cores.
        wanted = math.ceil(cpus / max(share, 1.0 / MAX_IO_WORKERS))
        workers = max(2, min(MAX_IO_WORKERS, wanted, remaining or MAX_IO_WORKERS))
        reasons.append(
            f"under {IO_CPU_SHARE:.0%} on the CPU means the tasks mostly wait (I/O-bound): "
            f"threads, {workers} of them to overlap the waiting"
        )
        return _unless_tiny(Decision("threads", workers, reasons), figures, remaining)
    if waits:
        reasons.append(
            f"under {IO_CPU_SHARE:.0%} on the CPU the tasks mostly wait, but another thread "
            f"found the GIL held for {computing_held:.0%} of their computing: threads would "
            f"top out at {1 / share:.1f}x one thread's rate however many wait"
        )
    elif share < IO_CPU_SHARE:
        reasons.append(
            f"tasks under {duration(TINY_TASK)} are too short to tell waiting from computing "
            "(or to gain from overlapping their waits): they count as compute"
        )
    else:
        reasons.append(f"{IO_CPU_SHARE:.0%} or more on the CPU means the tasks compute")
    if cpus <= 1:
        reasons.append("only 1 usable CPU here: no pool can add compute, so serial")
        return Decision("serial", 1, reasons)

    scaling = figures.thread_scaling
    ideal = figures.scaling_threads
    why = "the build has no GIL" if not gil_enabled else "the work releases the GIL"
    overlapped = scaling is not None and gil_bound
    if overlapped:
        reasons.append(
            f"{ideal} threads ran {scaling:.2f}x one thread's rate, but each task waits "
            f"{1 - share:.0%} of its time and another thread found the GIL held for "
            f"{computing_held:.0%} of its computing: the threads overlapped the waiting, not "
            "the computing (it holds the GIL)"
        )
    elif scaling is not None and scaling >= SCALING_SHARE * ideal:
        reasons.append(
            f"{ideal} threads ran {scaling:.2f}x one thread's rate (at least "
            f"{SCALING_SHARE:.0%} of {ideal}x): {why}, so threads on all {cpus} CPUs"
        )
        return _threads_on_all(cpus, reasons, figures, remaining)
    elif scaling is not None and ran_in_parallel(figures):
        reasons.append(
            f"{ideal} threads ran {scaling:.2f}x one thread's rate but kept "
            f"{figures.round_cpus or 0.0:.2f} CPUs busy at once, while other programs used "
            f"{figures.others_cpus or 0.0:.2f}: they ran in parallel, so {why}; threads on "
            f"all {cpus} CPUs"
        )
        return _threads_on_all(cpus, reasons, figures, remaining)
    elif scaling is not None and cannot_tell(figures):
        reasons.append(
            f"{ideal} threads ran {scaling:.2f}x one thread's rate, but other programs used "
            f"{figures.others_cpus or 0.0:.2f} of the {cpus} CPUs and none stood idle: the "
            "round cannot tell the GIL from a lack of free CPU"
        )
        held = figures.gil_held_share
        if not gil_enabled:
            reasons.append(
                f"but the build runs without a GIL, so the threads only lacked a free CPU: "
                f"threads on all {cpus} CPUs"
            )
            return _threads_on_all(cpus, reasons, figures, remaining)
        if held is None:
            return _busy_machine(reasons, figures, cpus, remaining)
        if held < GIL_HELD_SHARE:
            reasons.append(
                f"while a task ran, another thread found the GIL free on {1 - held:.0%} of "
                f"its wake-ups: {why}, and the threads only lacked a free CPU; threads on "
                f"all {cpus} CPUs"
            )
            return _threads_on_all(cpus, reasons, figures, remaining)
        reasons.append(_gil_waited(held))
    elif scaling is not None:
        idle = (
            "" if figures.idle_cpus is None else f" while {figures.idle_cpus:.2f} CPUs stood idle"
        )
        if gil_enabled:
            verdict = "the work holds the GIL"
        elif scaling < THREADS_GAIN:
            verdict = (
                "the work runs one thread at a time though the build has no GIL (a lock, or "
                "an extension that turned the GIL back on)"
            )
        else:  # what the figures show: a gain, short of scaling
            verdict = (
                f"under {SCALING_SHARE:.0%} of {ideal}x though the build has no GIL: the "
                "threads slowed each other down (a lock, or objects they all update)"
            )
        reasons.append(f"{ideal} threads ran {scaling:.2f}x one thread's rate{idle}: {verdict}")
    elif figures.gil_held_share is not None and figures.gil_held_share >= GIL_HELD_SHARE:
        reasons.append(_gil_waited(figures.gil_held_share) + ", so no round on threads")

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
    return _computing("processes", cpus, reasons, figures, remaining)


def _gil_waited(held: float) -> str:
    """The GIL meter's finding, for work it caught holding the GIL."""
    return (
        f"while a task ran, another thread waited for the GIL on {held:.0%} of its "
        "wake-ups: the work holds the GIL"
    )


def _computing_holds_the_gil(figures: ProbeFigures) -> bool:
    """Whether tasks that also wait hold the GIL while they compute. The GIL meter runs over
    whole tasks, so it finds the GIL held for about the computing share when the computing
    holds it: held / CPU share tells. Only for tasks that compute at least
    GIL_BOUND_WAITING_SHARE of the time (below it, threads reach 1 / share of serial before
    the GIL binds) and under MIXED_CPU_SHARE (above it, the thread round tells)."""
    held, share = figures.gil_held_time, figures.cpu_share
    if held is None or not GIL_BOUND_WAITING_SHARE <= share < MIXED_CPU_SHARE:
        return False
    return held / share >= GIL_HELD_SHARE


def ran_in_parallel(figures: ProbeFigures) -> bool:
    """Whether the thread round kept more than one CPU busy at once (PARALLEL_CPUS)."""
    return figures.round_cpus is not None and figures.round_cpus >= PARALLEL_CPUS


def cannot_tell(figures: ProbeFigures) -> bool:
    """Whether a thread round that neither scaled nor ran in parallel had no idle CPU to
    scale onto, so that "holds the GIL" and "no free CPU" look alike."""
    return figures.idle_cpus is not None and figures.idle_cpus < IDLE_CPUS_TO_TELL


def wants_process_round(figures: ProbeFigures, cpus: int, gil_enabled: bool = True) -> bool:
    """Whether a round on processes should settle what the thread round could not: it
    could not tell, the work left is long enough to pay a pool's start-up, and there is
    a GIL that could be the cause (a build without one has nothing to tell apart)."""
    scaling = figures.thread_scaling
    if not gil_enabled or cpus <= 1 or figures.cpu_share < IO_CPU_SHARE or scaling is None:
        return False
    if scaling >= SCALING_SHARE * figures.scaling_threads:
        return False
    if ran_in_parallel(figures) or not cannot_tell(figures):
        return False
    if figures.gil_held_share is not None:  # the GIL meter told
        return False
    if figures.total_tasks is None:
        return True
    left = max(0, figures.total_tasks - figures.tasks) * figures.seconds_per_task
    return left >= PROCESS_ROUND_SECONDS


def _busy_machine(
    reasons: list[str], figures: ProbeFigures, cpus: int, remaining: int | None
) -> Decision:
    """The thread round could not tell: a round on processes decides, else threads."""
    threads = figures.thread_scaling or 1.0
    processes = figures.process_scaling
    if processes is None:
        reasons.append(
            "threads, the cheaper choice (no start-up, no copying): too little work was "
            f"left to measure a round on processes (under {duration(PROCESS_ROUND_SECONDS)})"
        )
        return _threads_on_all(cpus, reasons, figures, remaining)
    gain = processes / max(threads, 1.0)
    if gain >= THREADS_GAIN:
        reasons.append(
            f"{figures.scaling_threads} processes ran {processes:.2f}x one thread's rate, "
            f"{gain:.2f}x what threads did (at least {THREADS_GAIN}x): processes on all "
            f"{cpus} CPUs"
        )
        return _computing("processes", cpus, reasons, figures, remaining)
    reasons.append(
        f"{figures.scaling_threads} processes ran {processes:.2f}x one thread's rate, no "
        f"better than threads (under {THREADS_GAIN}x their {threads:.2f}x): threads, the "
        "cheaper choice"
    )
    return _threads_on_all(cpus, reasons, figures, remaining)


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
        return _threads_on_all(cpus, reasons, figures, remaining)
    reasons[-1] += ", so serial"
    return Decision("serial", 1, reasons)


def _threads_on_all(
    cpus: int, reasons: list[str], figures: ProbeFigures, remaining: int | None
) -> Decision:
    """Threads, one per CPU (more for tasks that also wait), unless the work left is too
    small for a pool."""
    return _computing("threads", cpus, reasons, figures, remaining)


def _computing(
    mode: str, cpus: int, reasons: list[str], figures: ProbeFigures, remaining: int | None
) -> Decision:
    """A pool for computing work: one worker per CPU, or cpus / CPU share of them when each
    task also waits, so the waiting overlaps while every CPU computes."""
    workers = cpus
    share = figures.cpu_share
    if 0 < share < MIXED_CPU_SHARE:
        wanted = min(MAX_IO_WORKERS, math.ceil(cpus / share))
        workers = max(cpus, min(wanted, remaining or wanted))
        if workers > cpus:
            reasons.append(
                f"each task also waits {1 - share:.0%} of its time (under {MIXED_CPU_SHARE:.0%}"
                f" on the CPU): {workers} {mode}, so the {cpus} CPUs compute while some wait"
            )
    return _unless_tiny(Decision(mode, workers, reasons), figures, remaining)


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
