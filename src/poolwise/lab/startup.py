"""Starting time: start one worker and get its first result, per kind and start method.

The seed says a process starts slower than a thread. Measured here with the primitives
themselves (``threading.Thread``, ``multiprocessing`` ``Process`` per start method: the
time from ``start()`` to the first result arriving back through a pipe) and with poolwise
pools (a new pool of one worker answering its first task), so the figure a user pays is
beside the textbook one. Where this Python has them (3.13+), subinterpreters are measured
too: a bare one (created, then a first exec that writes through a pipe) and a poolwise
interpreters pool, whose worker also imports poolwise and cloudpickle in its interpreter.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import (
    Measurement,
    Series,
    Verdict,
    Worker,
    interpreters_unavailable,
    near,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection

    from .base import LabSettings

__all__ = ["EXPERIMENT", "StartTime", "StartTimes", "StartupExperiment"]

#: Starts measured per kind in the quick lab and in the full one (the median counts).
QUICK_STARTS = 5
FULL_STARTS = 25
#: A process start within this factor of a thread start would make the seed's row false
#: here. A thread starts in ~0.1 ms, a fork in ~1-2 ms: 10x is a guess well below both.
SLOWER_FACTOR = 10.0


@dataclass(frozen=True)
class StartTime:
    """One kind of worker and how long it took to start and answer (ms)."""

    #: As the figures name it, e.g. "process (fork)" or "poolwise threads pool".
    name: str
    worker: Worker
    #: The median of the starts after the first, which alone pays one-time costs.
    median_ms: float
    first_ms: float


@dataclass(frozen=True)
class StartTimes:
    """Every kind measured, in the order it was measured."""

    kinds: tuple[StartTime, ...]

    def of(self, worker: Worker) -> dict[str, float]:
        """Median ms by name of the kinds that are ``worker``."""
        return {kind.name: kind.median_ms for kind in self.kinds if kind.worker == worker}

    def figures(self) -> dict[str, float | str]:
        """The times by name, for people."""
        figures: dict[str, float | str] = {}
        for kind in self.kinds:
            figures[f"{kind.name}: ms to first result"] = kind.median_ms
            figures[f"{kind.name}: ms, first start"] = kind.first_ms
        figures["kinds"] = ", ".join(kind.name for kind in self.kinds)
        return figures


def _answer(conn: Connection) -> None:
    """The first (and only) task of a started process: say "ready" through the pipe."""
    conn.send(time.perf_counter())
    conn.close()


def _thread_start_seconds() -> float:
    done = threading.Event()
    started = time.perf_counter()
    thread = threading.Thread(target=done.set)
    thread.start()
    done.wait()
    elapsed = time.perf_counter() - started
    thread.join()
    return elapsed


def _process_start_seconds(method: str) -> float:
    context: Any = multiprocessing.get_context(method)
    reader, writer = context.Pipe(duplex=False)
    started = time.perf_counter()
    process = context.Process(target=_answer, args=(writer,))
    process.start()
    writer.close()
    reader.recv()
    elapsed = time.perf_counter() - started
    reader.close()
    process.join()
    return elapsed


def _interpreter_start_seconds() -> float:
    """Create a subinterpreter and run its first code, which answers through a pipe."""
    from ..backends.interpreters import primitives

    api = primitives()
    assert not isinstance(api, str), api
    reader, writer = os.pipe()
    try:
        started = time.perf_counter()
        interpreter = api.create()
        try:
            failure = api.exec(interpreter, "import os\nos.write(fd, b'!')", {"fd": writer})
            assert failure is None, failure
            os.read(reader, 1)
            elapsed = time.perf_counter() - started
        finally:
            api.destroy(interpreter)
    finally:
        os.close(reader)
        os.close(writer)
    return elapsed


def _pool_start_seconds(mode: str, method: str | None = None) -> float:
    import poolwise

    started = time.perf_counter()
    with poolwise.Pool(mode, 1, start_method=method) as pool:  # type: ignore[arg-type]
        pool.submit(int).result()
        elapsed = time.perf_counter() - started
    return elapsed


class StartupExperiment:
    """Seconds from asking for a worker to its first result, per kind of worker."""

    key = "starting-time"
    row = "Starting time"
    claim = "A process starts slower than a thread"

    def run(self, settings: LabSettings) -> Measurement[StartTimes]:
        """Start each kind of worker a few times; the median time to its first result."""
        starts = FULL_STARTS if settings.full else QUICK_STARTS
        methods = multiprocessing.get_all_start_methods()
        # poolwise first: in a poolwise program its first pool starts the forkserver (and
        # has it preload the worker module), which the raw processes then share.
        kinds: list[tuple[str, Worker, Callable[[], float]]] = [
            ("poolwise threads pool", "pool", functools.partial(_pool_start_seconds, "threads"))
        ]
        kinds += [
            (
                f"poolwise processes pool ({method})",
                "pool",
                functools.partial(_pool_start_seconds, "processes", method),
            )
            for method in methods
        ]
        notes = []
        unavailable = interpreters_unavailable()
        if unavailable is None:
            pool = functools.partial(_pool_start_seconds, "interpreters")
            kinds.append(("poolwise interpreters pool", "pool", pool))
        else:
            notes.append(unavailable)
        kinds.append(("thread", "thread", _thread_start_seconds))
        kinds += [
            (f"process ({method})", "process", functools.partial(_process_start_seconds, method))
            for method in methods
        ]
        if unavailable is None:
            kinds.append(("interpreter", "interpreter", _interpreter_start_seconds))
        measured, medians = [], []
        for name, worker, start in kinds:
            # The first start of a kind pays one-time costs (the forkserver itself): it is
            # kept apart from the median of the ones after it.
            first = start()
            median = statistics.median([start() for _ in range(starts)])
            medians.append(median * 1e3)
            measured.append(StartTime(name, worker, round(median * 1e3, 3), round(first * 1e3, 3)))
        series = Series(
            "ms to first result",
            [float(i) for i in range(len(measured))],
            medians,
            "kind (in the order of the figures)",
            "ms",
        )
        return Measurement(StartTimes(tuple(measured)), [series], notes)

    def judge(self, measurement: Measurement[StartTimes]) -> Verdict:
        """Holds if even the fastest process start is many times a thread's."""
        times = measurement.record
        thread = times.of("thread")["thread"]
        processes = times.of("process")
        if not processes:
            return Verdict.depends("no process start method could be measured here")
        fastest_name, fastest = min(processes.items(), key=lambda item: item[1])
        slowest_name, slowest = max(processes.items(), key=lambda item: item[1])
        ratio = fastest / thread if thread > 0 else float("inf")
        if ratio >= SLOWER_FACTOR:
            return Verdict.holds(
                f"a thread answered in {thread:.2f} ms; the fastest process, {fastest_name}, "
                f"took {fastest:.1f} ms ({ratio:.0f}x) and {slowest_name} {slowest:.1f} ms",
            )
        if fastest <= thread:
            return Verdict.not_here(
                f"{fastest_name} answered in {fastest:.2f} ms, no slower than a thread "
                f"({thread:.2f} ms)",
            )
        return Verdict.depends(
            f"{fastest_name} answered in {fastest:.2f} ms, only {ratio:.1f}x a thread's "
            f"{thread:.2f} ms, while {slowest_name} took {slowest:.1f} ms: it depends on the "
            "start method",
        )

    def near_threshold(self, measurement: Measurement[StartTimes]) -> bool:
        """Whether the fastest process start, over a thread's, sits near SLOWER_FACTOR (the
        lab's runner then measures again)."""
        times = measurement.record
        thread = times.of("thread")["thread"]
        processes = times.of("process")
        if not processes or thread <= 0:
            return False
        return near(min(processes.values()) / thread, SLOWER_FACTOR)


EXPERIMENT = StartupExperiment()
