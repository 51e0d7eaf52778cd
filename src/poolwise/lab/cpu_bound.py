"""CPU-bound processing: speed-up over serial on threads and on processes, per workload.

The seed's CPU-bound examples, measured: pure-Python prime counting and matrix
multiplication (they hold the GIL), NumPy matrix multiplication and zlib/lzma compression
of synthetic video frames (they release it). Every workload runs the same tasks serially
once, then on 1, 2, 4, ... up to the usable CPUs threads and processes; speed-up is the
serial time over the pool's time. Pools are started and warmed up before the clock runs:
start-up cost is the "Starting time" row's business, not this one's.

Where this Python has them (3.13+), interpreter workers (one GIL each) run the pure-Python
workloads too: NumPy cannot load in a subinterpreter, and on work that releases the GIL
threads already run in parallel. The verdict still judges threads against processes.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..pool import Pool
from ..system import gil_enabled
from .auto_mode import auto_note, try_auto
from .base import (
    Measurement,
    Series,
    Verdict,
    interpreters_unavailable,
    near,
    worker_counts,
)
from .cpu_workloads import LABELS, PURE_PYTHON, RELEASES_GIL, WHY_RELEASED, cpu_workloads

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..pool import Mode
    from .base import LabSettings
    from .cpu_workloads import CpuWorkload

__all__ = ["EXPERIMENT", "CpuBound", "CpuScaling", "Serial"]

#: Tasks per worker at the top worker count, quick lab and ``--full``: several per worker so
#: an uneven last round costs little (a guess; 6 keeps the quick row ~10 s on 2 cores).
TASKS_PER_WORKER = 6
TASKS_PER_WORKER_FULL = 12
#: The quick lab sweeps workers up to this many (``--full`` goes to every usable CPU): on a
#: 64-core machine threads on GIL-holding work run at serial speed, so a sweep to 64 would
#: take minutes. Each run has TASKS_PER_WORKER tasks per worker, so its time stays flat.
QUICK_MAX_WORKERS = 8
#: Seconds each warm-up task sleeps, so every worker of a new pool gets one (a guess).
WARM_SECONDS = 0.05
#: The same for interpreter workers, which take ~60 ms each to start (the starting-time row
#: measured it on 2 cores: an interpreter, then poolwise and cloudpickle imported in it).
WARM_SECONDS_INTERPRETERS = 0.2

# Verdict thresholds, on speed-ups at the top worker count.
#: A real speed-up: on 2 cores the ideal is 2.0x; pickling, pool overhead and a shared
#: machine's noise can take ~30% of it (a guess).
SPEEDUP = 1.3
#: No speed-up: threads running GIL-holding code measure ~0.9-1.05x; 1.15 clears that
#: noise (a guess).
NO_SPEEDUP = 1.15
#: Threads "as fast as processes" when within 10% of them: run-to-run noise here (a guess).
AS_FAST = 0.9
#: Serial CPU time over wall time above which NumPy's BLAS used several cores by itself.
BLAS_BUSY = 1.5

_MODES: tuple[Mode, ...] = ("threads", "processes")
_INTERPRETERS_NOTE = (
    "interpreters ran the pure-Python workloads only: NumPy cannot be imported in a "
    "subinterpreter (its extension module does not support them), and work that releases "
    "the GIL already runs in parallel on threads."
)


@dataclass(frozen=True)
class Serial:
    """One workload run serially: one worker's share of tasks."""

    seconds: float
    #: CPU time over wall time: above 1, the workload (NumPy's BLAS) used several cores.
    cores_busy: float


@dataclass(frozen=True)
class CpuScaling:
    """Speed-ups over serial per mode, workload and worker count, and what auto made of it."""

    cpus: int
    gil: str  # "enabled" or "disabled"
    #: The worker counts swept, ascending: the last is the top one the verdict reads.
    counts: tuple[int, ...]
    #: By workload, in the order measured.
    serial: dict[str, Serial]
    #: mode -> workload -> speed-up at each of ``counts`` (unrounded: the charts' points).
    speedups: dict[str, dict[str, tuple[float, ...]]]
    #: By workload: the mode a fresh auto pool chose, and its speed-up (probing and
    #: start-up included).
    auto: dict[str, tuple[str, float]]

    @property
    def top(self) -> int:
        """The most workers measured."""
        return self.counts[-1]

    def at_top(self, workloads: Sequence[str]) -> dict[str, tuple[float, float]]:
        """(threads, processes) speed-ups at the top count, as the figures show them (to
        3 decimals), for those of ``workloads`` measured on both."""
        threads, processes = self.speedups.get("threads", {}), self.speedups.get("processes", {})
        return {
            key: (round(threads[key][-1], 3), round(processes[key][-1], 3))
            for key in workloads
            if key in threads and key in processes
        }

    def figures(self) -> dict[str, float | str]:
        """The timings and speed-ups by name, for people."""
        figures: dict[str, float | str] = {
            "cpus": self.cpus,
            "top workers": self.top,
            "gil": self.gil,
        }
        for key, serial in self.serial.items():
            figures[f"{key}: serial seconds"] = serial.seconds
            figures[f"{key}: serial CPU cores busy"] = serial.cores_busy
        for mode, by_workload in self.speedups.items():
            for index, workers in enumerate(self.counts):
                for key, values in by_workload.items():
                    figures[f"{key}: {mode} speed-up at {workers} workers"] = round(
                        values[index], 3
                    )
        for key, (mode, speedup) in self.auto.items():
            figures[f"{key}: auto chose"] = mode
            figures[f"{key}: auto speed-up, probing and start-up included"] = speedup
        for mode, by_workload in self.speedups.items():
            for key, values in by_workload.items():
                best = max(range(len(values)), key=values.__getitem__)
                figures[f"{key}: best {mode} speed-up"] = round(values[best], 3)
                figures[f"{key}: best {mode} workers"] = self.counts[best]
        return figures


def _warm_up(modules: Sequence[str], seconds: float) -> None:
    """Import what the tasks need and linger, so each worker of a new pool is up and ready."""
    for module in modules:
        importlib.import_module(module)
    time.sleep(seconds)


def _time(pool: Pool, workload: CpuWorkload, repeats: int, tasks: int) -> tuple[float, float]:
    """Best wall time of ``repeats`` runs of the first ``tasks`` tasks, and its CPU time here."""
    best = (float("inf"), 0.0)
    inputs = workload.inputs[:tasks]
    for _ in range(repeats):
        cpu = time.process_time()
        started = time.perf_counter()
        pool.starmap(workload.fn, inputs, chunksize=1)
        wall = time.perf_counter() - started
        best = min(best, (wall, time.process_time() - cpu))
    return best


def _serial(
    workloads: list[CpuWorkload], per_worker: int, repeats: int
) -> tuple[dict[str, Serial], dict[str, float]]:
    """Each workload's serial run of one worker's share, and its seconds per task."""
    serial: dict[str, Serial] = {}
    per_task: dict[str, float] = {}
    with Pool("serial") as pool:
        for workload in workloads:
            wall, cpu = _time(pool, workload, repeats, per_worker)
            per_task[workload.key] = wall / per_worker
            serial[workload.key] = Serial(round(wall, 4), round(cpu / wall, 2))
    return serial, per_task


class CpuBound:
    """The seed's "CPU-bound & I/O-bound processing" row, CPU half, with its examples."""

    key = "cpu-bound"
    row = "CPU-bound processing"
    claim = (
        "Processes are optimized for CPU-bound tasks; threads are not (technically, "
        "multithreading suits I/O-bound work and multiprocessing CPU-bound work)"
    )

    def run(self, settings: LabSettings) -> Measurement[CpuScaling]:
        """Time each workload serially, then on threads and processes at each worker count."""
        reach = settings.cpus if settings.full else min(settings.cpus, QUICK_MAX_WORKERS)
        counts = worker_counts(reach)
        top = counts[-1]
        notes: list[str] = []
        if reach < settings.cpus:
            notes.append(
                f"the quick lab sweeps up to {reach} of the {settings.cpus} usable CPUs; "
                "poolwise lab --full goes to all of them"
            )
        per_worker = settings.scale(TASKS_PER_WORKER, TASKS_PER_WORKER_FULL)
        workloads = cpu_workloads(per_worker * top, notes)
        modules = ("numpy",) if any(w.key == "matmul-numpy" for w in workloads) else ()

        # Serial time per task, from one worker's share of tasks; a run on N workers has N
        # shares, so its speed-up is (per-task serial time x its tasks) / its wall time.
        serial, per_task = _serial(workloads, per_worker, settings.repeats)
        numpy_serial = serial.get("matmul-numpy")
        if numpy_serial is not None and numpy_serial.cores_busy >= BLAS_BUSY:
            notes.append(
                f"NumPy's BLAS kept {numpy_serial.cores_busy:.1f} cores busy in the serial "
                "run by itself, so pools had little left to add to NumPy matmul."
            )

        # (mode, its workloads, modules its warm-up imports, seconds a warm-up task lasts)
        runs: list[tuple[Mode, list[CpuWorkload], tuple[str, ...], float]] = [
            (mode, workloads, modules, WARM_SECONDS) for mode in _MODES
        ]
        unavailable = interpreters_unavailable()
        if unavailable is None:
            pure = [w for w in workloads if w.key in PURE_PYTHON]
            runs.append(("interpreters", pure, (), WARM_SECONDS_INTERPRETERS))
            notes.append(_INTERPRETERS_NOTE)
        else:
            notes.append(unavailable)
        speedups: dict[str, dict[str, list[float]]] = {}
        for mode, measured, warm, seconds in runs:
            by_workload = speedups.setdefault(mode, {})
            for workers in counts:
                with Pool(mode, workers) as pool:
                    pool.starmap(_warm_up, [(warm, seconds)] * workers, chunksize=1)
                    for workload in measured:
                        tasks = per_worker * workers
                        wall, _ = _time(pool, workload, settings.repeats, tasks)
                        speedup = per_task[workload.key] * tasks / wall
                        by_workload.setdefault(workload.key, []).append(speedup)

        trials = []
        auto: dict[str, tuple[str, float]] = {}
        for workload in workloads:
            tasks = per_worker * top
            trial = try_auto(
                LABELS[workload.key], workload.fn, workload.inputs[:tasks], star=True,
                workers=top,
            )  # fmt: skip
            speedup = per_task[workload.key] * tasks / trial.seconds
            best_mode = max(_MODES, key=lambda m: speedups[m][workload.key][-1])
            best = speedups[best_mode][workload.key][-1]
            trials.append(replace(trial, best_mode=best_mode, best_over_auto=best / speedup))
            auto[workload.key] = (trial.mode, round(speedup, 3))
        notes.append(auto_note(trials))

        series = [
            Series(
                name=f"{LABELS[key]}: {mode}",
                x=[float(n) for n in counts],
                y=values,
                x_label="workers",
                y_label="speed-up over serial (x)",
            )
            for mode, by_workload in speedups.items()
            for key, values in by_workload.items()
        ]
        scaling = CpuScaling(
            cpus=settings.cpus,
            gil="enabled" if gil_enabled() else "disabled",
            counts=tuple(counts),
            serial=serial,
            speedups={
                mode: {key: tuple(values) for key, values in by_workload.items()}
                for mode, by_workload in speedups.items()
            },
            auto=auto,
        )
        return Measurement(scaling, series, notes)

    def judge(self, measurement: Measurement[CpuScaling]) -> Verdict:
        """Processes must speed up GIL-holding work and threads must not; see ``_verdict``."""
        return _verdict(measurement.record)

    def near_threshold(self, measurement: Measurement[CpuScaling]) -> bool:
        """Whether a speed-up the verdict turns on is near SPEEDUP or NO_SPEEDUP
        (the lab's runner then measures again)."""
        scaling = measurement.record
        pure = scaling.at_top(PURE_PYTHON)
        released = scaling.at_top(RELEASES_GIL)
        deciding = [
            max((threads for threads, _ in pure.values()), default=None),
            max((processes for _, processes in pure.values()), default=None),
            max((threads for threads, _ in released.values()), default=None),
        ]
        return any(near(value, SPEEDUP, NO_SPEEDUP) for value in deciding)


def _verdict(scaling: CpuScaling) -> Verdict:
    """The verdict from the figures alone, by the first rule that applies.

    All on speed-ups at the top worker count: 1 usable CPU -> depends; threads speed up
    pure-Python work -> does not hold here (a free-threaded build); processes do not ->
    depends (busy machine); threads gain a little -> depends; threads speed up NumPy, zlib
    or lzma (GIL released) -> depends; otherwise -> holds.
    """
    cpus, top = scaling.cpus, scaling.top
    pure = scaling.at_top(PURE_PYTHON)
    pure_text = _pure_text(pure, top)
    if cpus < 2:
        measured = f": {pure_text}" if pure else ""
        return Verdict.depends(
            f"only {cpus} usable CPU here, so no pool can speed up CPU-bound work{measured}",
        )
    if not pure:
        return Verdict.depends("no pure-Python workload was measured, so there is nothing to judge")
    best_threads = max(pure, key=lambda k: pure[k][0])
    # The best process speed-up counts: one noisy workload on a shared machine must not
    # decide that processes do not help when another shows they do.
    best_processes = max(pure, key=lambda k: pure[k][1])
    threads, processes = pure[best_threads]
    if threads >= SPEEDUP:
        gil = "GIL disabled" if scaling.gil == "disabled" else "GIL enabled"
        versus = (
            "as fast as processes, and lighter"
            if threads >= AS_FAST * processes
            else f"short of processes' {processes:.2f}x"
        )
        return Verdict.not_here(
            f"threads sped up pure-Python work ({gil}): {LABELS[best_threads]} ran "
            f"{threads:.2f}x faster on {top} threads and {processes:.2f}x on {top} processes: "
            f"threads {versus}",
        )
    if pure[best_processes][1] < SPEEDUP:
        return Verdict.depends(
            f"processes did not speed up pure-Python work here ({pure_text}); "
            f"other programs may be keeping the {cpus} CPUs busy",
        )
    if threads >= NO_SPEEDUP:
        return Verdict.depends(
            f"threads gained a little on pure-Python work, between no speed-up "
            f"({NO_SPEEDUP}x) and a real one ({SPEEDUP}x): {pure_text}",
        )
    released = scaling.at_top(RELEASES_GIL)
    if not released:
        return Verdict.holds(f"only processes sped up CPU-bound work ({pure_text})")
    key = max(released, key=lambda k: released[k][0])
    threads, processes = released[key]
    if threads < SPEEDUP:
        return Verdict.holds(
            f"only processes sped up CPU-bound work ({pure_text}); "
            f"threads did not speed up {LABELS[key]} either ({threads:.2f}x)",
        )
    versus = (
        f"as fast as processes ({processes:.2f}x)"
        if threads >= AS_FAST * processes
        else f"against {processes:.2f}x on processes"
    )
    return Verdict.depends(
        f"{WHY_RELEASED[key]}: threads reached {threads:.2f}x with {top} workers on {cpus} "
        f"CPUs, {versus}; only GIL-holding code needed processes ({pure_text})",
    )


def _pure_text(pure: dict[str, tuple[float, float]], top: int) -> str:
    """E.g. "pure-Python primes 1.91x on 2 processes, 1.01x on 2 threads; ..."."""
    return "; ".join(
        f"{LABELS[key]} {processes:.2f}x on {top} processes, {threads:.2f}x on {top} threads"
        for key, (threads, processes) in pure.items()
    )


EXPERIMENT = CpuBound()
