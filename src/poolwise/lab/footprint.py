"""Memory footprint: the memory each worker adds, for threads and for processes by start method.

The seed says a process has a large memory footprint and a thread a small one. Measured
here as USS (memory no other process shares: what the worker really adds) and, on Linux,
PSS (shared pages split among the processes that map them), from psutil's
``memory_full_info()``:

- a thread: this process's USS before and after starting N threads that each ran a tiny
  task and now wait (a thread's stack and interpreter state live in this process);
- a process: the sum of the N workers' USS (and PSS), per start method. A forked child
  shares its parent's pages until it writes to them (copy-on-write), so its USS can be
  small; a spawned child is a new interpreter.

- a subinterpreter (Python 3.13+): like a thread, this process's USS before and after N
  interpreters each ran a tiny task (an interpreter has its own modules and objects, so it
  adds more than a thread's stack, and no second process).

Both with the primitives themselves (``threading.Thread``, ``multiprocessing`` ``Process``,
a bare interpreter) and with poolwise pools, whose process and interpreter workers also
import poolwise and cloudpickle.
"""

from __future__ import annotations

import functools
import multiprocessing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import footprint_sweeps as sweeps
from .base import (
    Measurement,
    Series,
    Verdict,
    Worker,
    interpreters_unavailable,
    near,
    worker_counts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .base import LabSettings

__all__ = ["EXPERIMENT", "Footprint", "FootprintExperiment", "WorkerMemory"]

#: Most workers per kind: the quick lab stops at 4 (or the usable CPUs, if fewer), the full
#: one goes on to 8 whatever the CPUs, since idle workers need memory, not cores.
QUICK_MAX_WORKERS = 4
FULL_MAX_WORKERS = 8
#: The verdict holds when the lightest process worker adds at least this many times a
#: thread's memory. A guess: "large" against "small" should be an order of magnitude, and 5x
#: leaves room for noise. Measured on 2 cores (Python 3.11, Linux): a thread adds 4 KB (one
#: stack page), a forked process ~2.4 MB, a forkserver one ~3 MB, a spawned one ~7 MB.
HEAVIER_FACTOR = 5.0
#: A thread adds at least one 4 KB page of stack; a smaller (or negative) measured difference
#: is noise in this process's own heap, so ratios divide by no less than this (MB).
THREAD_FLOOR_MB = 4096 / 2**20


@dataclass(frozen=True)
class WorkerMemory:
    """What one kind of worker added, per worker, at the most workers measured (MB)."""

    #: As the figures name it, e.g. "process (fork)" or "poolwise threads pool".
    name: str
    worker: Worker
    uss_mb: float
    #: None where psutil has no PSS (macOS, Windows).
    pss_mb: float | None = None


@dataclass(frozen=True)
class Footprint:
    """Every kind measured, in the order it was measured."""

    kinds: tuple[WorkerMemory, ...]
    most_workers: int
    #: multiprocessing's forkserver process, started once and shared by every pool (USS).
    forkserver_mb: float | None = None

    def of(self, worker: Worker) -> dict[str, float]:
        """USS per worker (MB) by name of the kinds that are ``worker``."""
        return {kind.name: kind.uss_mb for kind in self.kinds if kind.worker == worker}

    def figures(self) -> dict[str, float | str]:
        """The memory per worker by name, for people."""
        figures: dict[str, float | str] = {}
        for kind in self.kinds:
            figures[f"{kind.name}: MB per worker (USS)"] = kind.uss_mb
            if kind.pss_mb is not None:
                figures[f"{kind.name}: MB per worker (PSS)"] = kind.pss_mb
        figures["workers (most)"] = self.most_workers
        if self.forkserver_mb is not None:
            figures["forkserver process, once: MB (USS)"] = self.forkserver_mb
        return figures


def counts_for(settings: LabSettings) -> list[int]:
    """The worker counts swept: a few in the quick lab, up to ``FULL_MAX_WORKERS`` in full."""
    if settings.full:
        return worker_counts(min(settings.cpus, FULL_MAX_WORKERS), beyond=FULL_MAX_WORKERS)
    return worker_counts(min(settings.cpus, QUICK_MAX_WORKERS))


def _sweeps(
    counts: list[int], methods: list[str], notes: list[str]
) -> list[tuple[str, Worker, Callable[[], sweeps.Sweep]]]:
    """Each kind to measure: its name, what it is, and its sweep; why some are not, in
    ``notes``."""
    # poolwise first, as in the starting-time row: a poolwise program's first pool
    # starts the forkserver (and has it preload poolwise's worker module).
    kinds: list[tuple[str, Worker, Callable[[], sweeps.Sweep]]] = [
        (
            f"poolwise processes pool ({method})",
            "pool",
            functools.partial(sweeps.pool_processes_sweep, method, counts),
        )
        for method in methods
    ]
    kinds.append(
        ("poolwise threads pool", "pool", functools.partial(sweeps.pool_threads_sweep, counts))
    )
    unavailable = interpreters_unavailable()
    if unavailable is None:
        pool = functools.partial(sweeps.pool_interpreters_sweep, counts)
        kinds.append(("poolwise interpreters pool", "pool", pool))
    else:
        notes.append(unavailable)
    kinds += [
        (
            f"process ({method})",
            "process",
            functools.partial(sweeps.processes_sweep, method, counts),
        )
        for method in methods
    ]
    kinds.append(("thread", "thread", functools.partial(sweeps.threads_sweep, counts)))
    if unavailable is None:
        bare = functools.partial(sweeps.interpreters_sweep, counts)
        kinds.append(("interpreter", "interpreter", bare))
    return kinds


class FootprintExperiment:
    """Memory added per worker, per kind of worker, against the number of workers."""

    key = "memory-footprint"
    row = "Memory footprint"
    claim = "Processes have a large memory footprint; threads a small one"

    def run(self, settings: LabSettings) -> Measurement[Footprint]:
        """Sweep each kind of worker to the most workers; memory per worker at the most."""
        counts = counts_for(settings)
        methods = [
            m
            for m in multiprocessing.get_all_start_methods()
            if m in ("fork", "spawn", "forkserver")
        ]
        notes: list[str] = []
        kinds = []
        series = []
        for name, worker, sweep_of in _sweeps(counts, methods, notes):
            sweep = sweep_of()
            most = max(sweep)
            uss, pss = sweep[most]
            per_pss = None if pss is None else round(pss / most, 4)
            kinds.append(WorkerMemory(name, worker, round(uss / most, 4), per_pss))
            series.append(
                Series(
                    name,
                    [float(n) for n in sorted(sweep)],
                    [round(sweep[n][0], 3) for n in sorted(sweep)],
                    "workers",
                    "MB added (USS)",
                )
            )
        server = sweeps.forkserver_mb() if "forkserver" in methods else None
        footprint = Footprint(
            tuple(kinds), max(counts), None if server is None else round(server, 3)
        )
        return Measurement(footprint, series, notes)

    def judge(self, measurement: Measurement[Footprint]) -> Verdict:
        """Holds if even the lightest process worker adds many times a thread's memory."""
        footprint = measurement.record
        thread = footprint.of("thread")["thread"]
        processes = footprint.of("process")
        if not processes:
            return Verdict.depends("no process start method could be measured here")
        lightest, light_mb = min(processes.items(), key=lambda item: item[1])
        heaviest, heavy_mb = max(processes.items(), key=lambda item: item[1])
        base = max(thread, THREAD_FLOOR_MB)
        # In KB: a thread adds a few pages; its MB figure would read 0.00.
        thread_text = f"{thread * 1024:.0f} KB" if thread * 1024 >= 1 else "under 1 KB"
        light_ratio, heavy_ratio = light_mb / base, heavy_mb / base
        if light_ratio >= HEAVIER_FACTOR:
            return Verdict.holds(
                f"a thread added {thread_text} (USS); the lightest process worker, {lightest}, "
                f"added {light_mb:.2f} MB ({light_ratio:.0f}x) and {heaviest} "
                f"{heavy_mb:.2f} MB ({heavy_ratio:.0f}x)",
            )
        if heavy_ratio < HEAVIER_FACTOR:
            return Verdict.not_here(
                f"every process worker added under {HEAVIER_FACTOR:.0f}x a thread's "
                f"{thread_text} (USS): {heaviest}, the heaviest, {heavy_mb:.2f} MB",
            )
        return Verdict.depends(
            f"{lightest} added only {light_mb:.2f} MB (USS, {light_ratio:.1f}x a thread's "
            f"{thread_text}): its pages stay shared with the parent until written "
            f"(copy-on-write); {heaviest} added {heavy_mb:.2f} MB ({heavy_ratio:.0f}x): "
            "it depends on the start method",
        )

    def near_threshold(self, measurement: Measurement[Footprint]) -> bool:
        """Whether the lightest or heaviest process worker's memory, over a thread's, sits
        near HEAVIER_FACTOR (the lab's runner then measures again)."""
        footprint = measurement.record
        processes = footprint.of("process")
        if not processes:
            return False
        base = max(footprint.of("thread")["thread"], THREAD_FLOOR_MB)
        return any(
            near(mb / base, HEAVIER_FACTOR)
            for mb in (min(processes.values()), max(processes.values()))
        )


EXPERIMENT = FootprintExperiment()
