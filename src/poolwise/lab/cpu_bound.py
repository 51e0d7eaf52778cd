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
import lzma
import random
import time
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..pool import Pool
from ..system import gil_enabled
from .auto_mode import auto_note, try_auto
from .base import (
    DEPENDS,
    HOLDS,
    NOT_HERE,
    Measurement,
    Series,
    Verdict,
    interpreters_unavailable,
    worker_counts,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..pool import Mode
    from .base import LabSettings

__all__ = [
    "EXPERIMENT",
    "CpuBound",
    "compress_lzma",
    "compress_zlib",
    "count_primes",
    "make_frame",
    "matmul_numpy",
    "matmul_python",
]

# Task sizes: each aims at ~20-50 ms per task, so a chunk's round trip (~0.3 ms to a
# process) stays a rounding error. Timings measured on the 2-core dev machine (CPython 3.11).
#: Numbers tested per prime-counting task: ~30 ms by trial division near one million.
PRIMES_SPAN = 12_000
#: Where the first prime-counting task starts; tasks take consecutive spans of similar cost.
PRIMES_START = 1_000_000
#: Side of the pure-Python (lists of lists) matrices: 90x90 takes ~30 ms.
MATMUL_PYTHON_SIZE = 90
#: Side of the NumPy float64 matrices. At 64 OpenBLAS 0.3.31 stays on one thread (measured
#: CPU/wall 1.0); from 128 it spreads one product over every core itself, which would hide
#: what threads and processes add.
MATMUL_NUMPY_SIZE = 64
#: NumPy products per task: 3000 products of 64x64 take ~30 ms.
MATMUL_NUMPY_PRODUCTS = 3000
#: Synthetic video frame, one 8-bit luma plane: 640x480 is ~300 KB.
FRAME_WIDTH = 640
FRAME_HEIGHT = 480
#: Distinct frames made per run; tasks cycle through them.
FRAME_COUNT = 8
#: zlib level and frames per task: level 6 (zlib's default) takes ~8 ms a frame.
ZLIB_LEVEL = 6
ZLIB_FRAMES_PER_TASK = 4
#: lzma preset and frames per task: preset 0 (the fastest) takes ~30 ms a frame.
LZMA_PRESET = 0
LZMA_FRAMES_PER_TASK = 1
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
#: Workloads that hold the GIL, and those that release it (the judge reads both groups).
PURE_PYTHON = ("primes", "matmul-python")
RELEASES_GIL = ("matmul-numpy", "zlib", "lzma")
_LABELS = {
    "primes": "pure-Python primes",
    "matmul-python": "pure-Python matmul",
    "matmul-numpy": "NumPy matmul",
    "zlib": "zlib on video frames",
    "lzma": "lzma on video frames",
}
_WHY_RELEASED = {
    "matmul-numpy": "NumPy releases the GIL",
    "zlib": "zlib releases the GIL",
    "lzma": "lzma releases the GIL",
}
_INTERPRETERS_NOTE = (
    "interpreters ran the pure-Python workloads only: NumPy cannot be imported in a "
    "subinterpreter (its extension module does not support them), and work that releases "
    "the GIL already runs in parallel on threads."
)
_NUMPY_NOTE = (
    "NumPy matmul was skipped: NumPy is not installed; "
    "get it with `pip install poolwise[numpy]` or `uv sync --extra numpy`."
)


# -- tasks: module-level, so process workers import them by name ------------------------


def count_primes(start: int, span: int) -> int:
    """How many primes lie in ``[start, start + span)``, by trial division (holds the GIL)."""
    count = 0
    for n in range(max(start, 2), start + span):
        if n < 4:
            count += 1
            continue
        if n % 2 == 0:
            continue
        divisor = 3
        while divisor * divisor <= n:
            if n % divisor == 0:
                break
            divisor += 2
        else:
            count += 1
    return count


def matmul_python(size: int, seed: int) -> float:
    """Multiply two random ``size`` x ``size`` lists of lists; the sum of the product."""
    rng = random.Random(seed)
    a = [[rng.random() for _ in range(size)] for _ in range(size)]
    columns = list(zip(*[[rng.random() for _ in range(size)] for _ in range(size)], strict=True))
    return sum(sum(x * y for x, y in zip(row, col, strict=True)) for row in a for col in columns)


def matmul_numpy(size: int, products: int) -> float:
    """``products`` NumPy matrix products of ``size`` x ``size`` float64 (releases the GIL)."""
    np = importlib.import_module("numpy")  # imported here: the module must load without it
    a = (np.arange(size * size, dtype=np.float64).reshape(size, size) % 7) / 7
    b = a.T.copy()
    c = np.empty_like(a)
    for _ in range(products):
        np.matmul(a, b, out=c)
    return float(c.sum())


def compress_zlib(frames: Sequence[bytes], level: int) -> int:
    """Compressed size of the frames with zlib, one stream per frame."""
    return sum(len(zlib.compress(frame, level)) for frame in frames)


def compress_lzma(frames: Sequence[bytes], preset: int) -> int:
    """Compressed size of the frames with lzma (xz), one stream per frame."""
    return sum(len(lzma.compress(frame, preset=preset)) for frame in frames)


def make_frame(index: int, width: int, height: int) -> bytes:
    """Frame ``index``: a diagonal gradient that moves with the index, plus 4-bit noise.

    Deterministic, and made in a few ms: each row is a slice of one ramp, and the noise is
    added as one big integer (each byte stays under 256, so no carry crosses bytes).
    """
    diagonal = width + height
    ramp = bytes(((v + 3 * index) % diagonal) * 240 // diagonal for v in range(diagonal))
    gradient = b"".join(ramp[y : y + width] for y in range(height))
    noise = random.Random(index).randbytes(width * height).translate(_LOW_NIBBLE)
    total = int.from_bytes(gradient, "big") + int.from_bytes(noise, "big")
    return total.to_bytes(width * height, "big")


_LOW_NIBBLE = bytes(b & 0x0F for b in range(256))


def _warm_up(modules: Sequence[str], seconds: float) -> None:
    """Import what the tasks need and linger, so each worker of a new pool is up and ready."""
    for module in modules:
        importlib.import_module(module)
    time.sleep(seconds)


# -- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Workload:
    """One workload: the same task inputs for the serial run and for every pool."""

    key: str
    fn: Callable[..., object]
    inputs: list[tuple[object, ...]]


def _workloads(tasks: int, notes: list[str]) -> list[_Workload]:
    """The workloads of this run, ``tasks`` tasks each; NumPy's only if it imports."""
    frames = [make_frame(i, FRAME_WIDTH, FRAME_HEIGHT) for i in range(FRAME_COUNT)]

    def frames_for(task: int, per_task: int) -> list[bytes]:
        return [frames[(task * per_task + j) % len(frames)] for j in range(per_task)]

    workloads = [
        _Workload(
            "primes",
            count_primes,
            [(PRIMES_START + i * PRIMES_SPAN, PRIMES_SPAN) for i in range(tasks)],
        ),
        _Workload("matmul-python", matmul_python, [(MATMUL_PYTHON_SIZE, i) for i in range(tasks)]),
    ]
    if _numpy_available():
        inputs: list[tuple[object, ...]] = [(MATMUL_NUMPY_SIZE, MATMUL_NUMPY_PRODUCTS)] * tasks
        workloads.append(_Workload("matmul-numpy", matmul_numpy, inputs))
    else:
        notes.append(_NUMPY_NOTE)
    workloads += [
        _Workload(
            "zlib",
            compress_zlib,
            [(frames_for(i, ZLIB_FRAMES_PER_TASK), ZLIB_LEVEL) for i in range(tasks)],
        ),
        _Workload(
            "lzma",
            compress_lzma,
            [(frames_for(i, LZMA_FRAMES_PER_TASK), LZMA_PRESET) for i in range(tasks)],
        ),
    ]
    return workloads


def _numpy_available() -> bool:
    """Whether NumPy imports here (the optional ``numpy`` extra)."""
    try:
        importlib.import_module("numpy")
    except ImportError:
        return False
    return True


def _time(pool: Pool, workload: _Workload, repeats: int, tasks: int) -> tuple[float, float]:
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


class CpuBound:
    """The seed's "CPU-bound & I/O-bound processing" row, CPU half, with its examples."""

    key = "cpu-bound"
    row = "CPU-bound processing"
    claim = (
        "Processes are optimized for CPU-bound tasks; threads are not (technically, "
        "multithreading suits I/O-bound work and multiprocessing CPU-bound work)"
    )

    def run(self, settings: LabSettings) -> Measurement:
        """Time each workload serially, then on threads and processes at each worker count."""
        reach = settings.cpus if settings.full else min(settings.cpus, QUICK_MAX_WORKERS)
        counts = worker_counts(reach)
        top = counts[-1]
        measurement = Measurement()
        figures = measurement.figures
        figures["cpus"] = settings.cpus
        figures["top workers"] = top
        figures["gil"] = "enabled" if gil_enabled() else "disabled"
        if reach < settings.cpus:
            measurement.notes.append(
                f"the quick lab sweeps up to {reach} of the {settings.cpus} usable CPUs; "
                "poolwise lab --full goes to all of them"
            )
        per_worker = settings.scale(TASKS_PER_WORKER, TASKS_PER_WORKER_FULL)
        workloads = _workloads(per_worker * top, measurement.notes)
        modules = ("numpy",) if any(w.key == "matmul-numpy" for w in workloads) else ()

        # Serial time per task, from one worker's share of tasks; a run on N workers has N
        # shares, so its speed-up is (per-task serial time x its tasks) / its wall time.
        serial: dict[str, float] = {}
        with Pool("serial") as pool:
            for workload in workloads:
                wall, cpu = _time(pool, workload, settings.repeats, per_worker)
                serial[workload.key] = wall / per_worker
                figures[f"{workload.key}: serial seconds"] = round(wall, 4)
                figures[f"{workload.key}: serial CPU cores busy"] = round(cpu / wall, 2)
        cores = figures.get("matmul-numpy: serial CPU cores busy")
        if isinstance(cores, float) and cores >= BLAS_BUSY:
            measurement.notes.append(
                f"NumPy's BLAS kept {cores:.1f} cores busy in the serial run by itself, "
                "so pools had little left to add to NumPy matmul."
            )

        speedups: dict[tuple[str, Mode], list[float]] = {}
        # (mode, its workloads, modules its warm-up imports, seconds a warm-up task lasts)
        runs: list[tuple[Mode, list[_Workload], tuple[str, ...], float]] = [
            (mode, workloads, modules, WARM_SECONDS) for mode in _MODES
        ]
        unavailable = interpreters_unavailable()
        if unavailable is None:
            pure = [w for w in workloads if w.key in PURE_PYTHON]
            runs.append(("interpreters", pure, (), WARM_SECONDS_INTERPRETERS))
            measurement.notes.append(_INTERPRETERS_NOTE)
        else:
            measurement.notes.append(unavailable)
        for mode, measured, warm, seconds in runs:
            for workers in counts:
                with Pool(mode, workers) as pool:
                    pool.starmap(_warm_up, [(warm, seconds)] * workers, chunksize=1)
                    for workload in measured:
                        tasks = per_worker * workers
                        wall, _ = _time(pool, workload, settings.repeats, tasks)
                        speedup = serial[workload.key] * tasks / wall
                        speedups.setdefault((workload.key, mode), []).append(speedup)
                        name = f"{workload.key}: {mode} speed-up at {workers} workers"
                        figures[name] = round(speedup, 3)

        trials = []
        for workload in workloads:
            tasks = per_worker * top
            trial = try_auto(
                _LABELS[workload.key], workload.fn, workload.inputs[:tasks], star=True,
                workers=top,
            )  # fmt: skip
            speedup = serial[workload.key] * tasks / trial.seconds
            best_mode = max(_MODES, key=lambda m: speedups[workload.key, m][-1])
            best = speedups[workload.key, best_mode][-1]
            trials.append(replace(trial, best_mode=best_mode, best_over_auto=best / speedup))
            figures[f"{workload.key}: auto chose"] = trial.mode
            figures[f"{workload.key}: auto speed-up, probing and start-up included"] = round(
                speedup, 3
            )
        measurement.notes.append(auto_note(trials))

        for (key, mode), values in speedups.items():
            best = max(range(len(values)), key=values.__getitem__)
            figures[f"{key}: best {mode} speed-up"] = round(values[best], 3)
            figures[f"{key}: best {mode} workers"] = counts[best]
            measurement.series.append(
                Series(
                    name=f"{_LABELS[key]}: {mode}",
                    x=[float(n) for n in counts],
                    y=values,
                    x_label="workers",
                    y_label="speed-up over serial (x)",
                )
            )
        return measurement

    def judge(self, measurement: Measurement) -> Verdict:
        """Processes must speed up GIL-holding work and threads must not; see ``_verdict``."""
        return _verdict(measurement.figures)


def _verdict(figures: dict[str, float | str]) -> Verdict:
    """The verdict from the figures alone, by the first rule that applies.

    All on speed-ups at the top worker count: 1 usable CPU -> depends; threads speed up
    pure-Python work -> does not hold here (a free-threaded build); processes do not ->
    depends (busy machine); threads gain a little -> depends; threads speed up NumPy, zlib
    or lzma (GIL released) -> depends; otherwise -> holds.
    """
    cpus = int(figures.get("cpus", 1))
    top = int(figures.get("top workers", cpus))
    pure = _at_top(figures, PURE_PYTHON, top)
    pure_text = _pure_text(pure, top)
    if cpus < 2:
        measured = f": {pure_text}" if pure else ""
        return Verdict(
            DEPENDS,
            f"only {cpus} usable CPU here, so no pool can speed up CPU-bound work{measured}",
        )
    if not pure:
        return Verdict(
            DEPENDS, "no pure-Python workload was measured, so there is nothing to judge"
        )
    best_threads = max(pure, key=lambda k: pure[k][0])
    # The best process speed-up counts: one noisy workload on a shared machine must not
    # decide that processes do not help when another shows they do.
    best_processes = max(pure, key=lambda k: pure[k][1])
    threads, processes = pure[best_threads]
    if threads >= SPEEDUP:
        gil = "GIL disabled" if figures.get("gil") == "disabled" else "GIL enabled"
        return Verdict(
            NOT_HERE,
            f"threads sped up pure-Python work ({gil}): {_LABELS[best_threads]} ran "
            f"{threads:.2f}x faster on {top} threads and {processes:.2f}x on {top} processes",
        )
    if pure[best_processes][1] < SPEEDUP:
        return Verdict(
            DEPENDS,
            f"processes did not speed up pure-Python work here ({pure_text}); "
            f"other programs may be keeping the {cpus} CPUs busy",
        )
    if threads >= NO_SPEEDUP:
        return Verdict(
            DEPENDS,
            f"threads gained a little on pure-Python work, between no speed-up "
            f"({NO_SPEEDUP}x) and a real one ({SPEEDUP}x): {pure_text}",
        )
    released = _at_top(figures, RELEASES_GIL, top)
    if not released:
        return Verdict(HOLDS, f"only processes sped up CPU-bound work ({pure_text})")
    key = max(released, key=lambda k: released[k][0])
    threads, processes = released[key]
    if threads < SPEEDUP:
        return Verdict(
            HOLDS,
            f"only processes sped up CPU-bound work ({pure_text}); "
            f"threads did not speed up {_LABELS[key]} either ({threads:.2f}x)",
        )
    versus = (
        f"as fast as processes ({processes:.2f}x)"
        if threads >= AS_FAST * processes
        else f"against {processes:.2f}x on processes"
    )
    return Verdict(
        DEPENDS,
        f"{_WHY_RELEASED[key]}: threads reached {threads:.2f}x with {top} workers on {cpus} "
        f"CPUs, {versus}; only GIL-holding code needed processes ({pure_text})",
    )


def _at_top(
    figures: dict[str, float | str], keys: Sequence[str], top: int
) -> dict[str, tuple[float, float]]:
    """(threads, processes) speed-ups at ``top`` workers for those of ``keys`` measured."""
    found = {}
    for key in keys:
        threads = figures.get(f"{key}: threads speed-up at {top} workers")
        processes = figures.get(f"{key}: processes speed-up at {top} workers")
        if isinstance(threads, int | float) and isinstance(processes, int | float):
            found[key] = (float(threads), float(processes))
    return found


def _pure_text(pure: dict[str, tuple[float, float]], top: int) -> str:
    """E.g. "pure-Python primes 1.91x on 2 processes, 1.01x on 2 threads; ..."."""
    return "; ".join(
        f"{_LABELS[key]} {processes:.2f}x on {top} processes, {threads:.2f}x on {top} threads"
        for key, (threads, processes) in pure.items()
    )


EXPERIMENT = CpuBound()
