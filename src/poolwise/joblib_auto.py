"""mode="auto" under joblib: threads or processes, chosen from the first batches' figures.

joblib hands a backend one batch at a time, so the map's probe (``profiling.py``) has no
inputs to run ahead. Instead the first batches start on threads at once (no CPU stands
idle while measuring) and each reports its wall and CPU time from inside its thread, while
a ``GilMeter`` watches from beside them. Once enough is seen, the rules of ``decide.py``
choose: waiting work, GIL-free work and any work on a build without a GIL stay on threads;
compute that holds the GIL moves to processes unless its batches pickle too slowly. The
batches already on threads finish there.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from .decide import (
    GIL_HELD_SHARE,
    IDLE_CPUS_TO_TELL,
    IO_CPU_SHARE,
    SCALING_SHARE,
    TINY_TASK,
    TRAVEL_SHARE,
    Decision,
)
from .gil_meter import GilMeter
from .machine_load import LoadMeter
from .system import gil_enabled
from .transport import dumps_apart
from .units import duration

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MIN_WAKEUPS",
    "AutoChoice",
    "batch_key",
    "batch_length",
    "batch_modules",
    "import_modules",
]

_log = logging.getLogger("poolwise")

#: Decide once the meter woke this many times while batches ran (enough to call the GIL
#: held or free), or once every worker finished two batches, whichever comes first.
MIN_WAKEUPS = 8


class AutoChoice:
    """Measures the first batches on threads, then says where the rest should run."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._meter: GilMeter | None = None
        self._load: LoadMeter | None = None
        self._batches = 0
        self._wall = 0.0
        self._cpu = 0.0
        self._tasks = 0
        self._sample: Callable[[], Any] | None = None
        #: None until decided; then where later batches run, and why.
        self.decision: Decision | None = None

    @property
    def fresh(self) -> bool:
        """Nothing measured yet (no batch wrapped)."""
        return self._meter is None

    @property
    def sample_key(self) -> tuple[str, ...] | None:
        """``batch_key`` of the batches measured (None before any finished)."""
        return None if self._sample is None else batch_key(self._sample)

    def measured(self, batch: Callable[[], Any]) -> Callable[[], Any]:
        """``batch`` wrapped to report its times; starts the meter on the first."""
        with self._lock:
            if self._meter is None:
                self._meter = GilMeter().__enter__()
                self._load = LoadMeter()

        def run() -> Any:
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                return batch()
            finally:
                wall = time.perf_counter() - started
                self._record(batch, wall, time.thread_time() - cpu_started)

        return run

    def _record(self, batch: Callable[[], Any], wall: float, cpu: float) -> None:
        with self._lock:
            if self.decision is not None:
                return
            self._batches += 1
            self._wall += wall
            self._cpu += cpu
            self._tasks += batch_length(batch)
            self._sample = batch
            meter = self._meter
            assert meter is not None
            if meter.wakeups < MIN_WAKEUPS and self._batches < 2 * self._workers:
                return
            meter.__exit__(None, None, None)
            load = self._load.stop() if self._load is not None else None
            idle = None if load is None else load.idle_cpus
            self.decision = self._decide(meter.held_share(), idle)
        _log.info("poolwise joblib backend, mode='auto': %s", "; ".join(self.decision.reasons))

    def _decide(self, held: float | None, idle_cpus: float | None) -> Decision:
        tasks = max(1, self._tasks)
        per_task = self._wall / tasks
        share = self._cpu / self._wall if self._wall > 0 else 1.0
        workers = self._workers
        reasons = [
            f"the first {tasks} tasks ({self._batches} joblib batches, on {workers} threads) "
            f"took {duration(per_task)} each, {share:.0%} of it on the CPU"
        ]
        if share < IO_CPU_SHARE and per_task >= TINY_TASK:
            reasons.append(f"under {IO_CPU_SHARE:.0%} on the CPU: the tasks mostly wait, threads")
            return Decision("threads", workers, reasons)
        if per_task < TINY_TASK:
            reasons.append(
                f"tasks under {duration(TINY_TASK)} are too short to gain from processes: "
                "threads, the cheaper pool (joblib batches them)"
            )
            return Decision("threads", workers, reasons)
        if not gil_enabled():
            reasons.append("the build has no GIL: threads compute in parallel")
            return Decision("threads", workers, reasons)
        if share >= SCALING_SHARE:
            reasons.append(
                f"each thread computed {SCALING_SHARE:.0%} or more of the time: they ran in "
                "parallel (the work releases the GIL), threads"
            )
            return Decision("threads", workers, reasons)
        if held is not None and held >= GIL_HELD_SHARE:
            reasons.append(f"another thread waited for the GIL on {held:.0%} of its wake-ups")
        elif idle_cpus is not None and idle_cpus >= IDLE_CPUS_TO_TELL:
            reasons.append(
                f"the threads computed under {SCALING_SHARE:.0%} of the time while "
                f"{idle_cpus:.2f} CPUs stood idle: they held each other back (the GIL between "
                "native calls, or a lock)"
            )
        else:
            reasons.append(
                "the threads computed part of the time, but no CPU stood idle to tell why "
                "(a busy machine): threads, the cheaper choice"
            )
            return Decision("threads", workers, reasons)
        travel = _pickle_seconds(self._sample)
        batch_seconds = self._wall / self._batches
        if travel is None:
            reasons.append("a batch cannot be pickled, so not processes: threads")
            return Decision("threads", workers, reasons)
        if travel > TRAVEL_SHARE * batch_seconds:
            reasons.append(
                f"a batch pickles in {duration(travel)}, over {TRAVEL_SHARE:.0%} of its "
                f"{duration(batch_seconds)} of compute: processes would spend it copying; threads"
            )
            return Decision("threads", workers, reasons)
        reasons.append(
            f"a batch pickles in {duration(travel)} (under {TRAVEL_SHARE:.0%} of its compute): "
            "processes"
        )
        return Decision("processes", workers, reasons)

    def close(self) -> None:
        """Stop the meter if no decision stopped it (the call ended first)."""
        with self._lock:
            meter, self._meter = self._meter, None
            if meter is not None and self.decision is None:
                meter.__exit__(None, None, None)
            self._load = None


def batch_length(batch: object) -> int:
    """Tasks in a joblib batch (``BatchedCalls`` has a length; a bare callable is one)."""
    try:
        return len(batch)  # type: ignore[arg-type]
    except TypeError:
        return 1


def _pickle_seconds(batch: object) -> float | None:
    """What sending ``batch`` to a process costs here: pickling it, big buffers apart (they
    travel through shared memory)."""
    started = time.perf_counter()
    try:
        dumps_apart(batch)
    except Exception:  # noqa: BLE001 - anything a user's object raises while pickling
        return None
    return time.perf_counter() - started


def batch_modules(batch: object) -> list[str]:
    """The modules of the functions in a joblib batch (``BatchedCalls.items``), to import in
    process workers before they get batches: scikit-learn takes seconds to import."""
    names = {getattr(fn, "__module__", None) for fn in _functions(batch)}
    return sorted(name for name in names if isinstance(name, str) and name != "__main__")


def import_modules(names: list[str]) -> None:
    """In a new process worker: import what the coming batches need, while threads work."""
    for name in names:
        importlib.import_module(name)


def _functions(batch: object) -> list[Any]:
    """The functions a joblib batch calls (scikit-learn wraps each in ``.function``)."""
    return [getattr(item[0], "function", item[0]) for item in getattr(batch, "items", ()) if item]


def batch_key(batch: object) -> tuple[str, ...]:
    """What a batch runs, by name: a later call running the same functions is the same work."""
    return tuple(
        sorted(
            {
                f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
                for fn in _functions(batch) or [batch]
            }
        )
    )
