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

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from .decide import GIL_HELD_SHARE, IO_CPU_SHARE, TINY_TASK, TRAVEL_SHARE, Decision
from .gil_meter import GilMeter
from .system import gil_enabled
from .transport import dumps_apart
from .units import duration

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MIN_WAKEUPS", "AutoChoice", "batch_length"]

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
        self._batches = 0
        self._wall = 0.0
        self._cpu = 0.0
        self._tasks = 0
        self._sample: Callable[[], Any] | None = None
        #: None until decided; then where later batches run, and why.
        self.decision: Decision | None = None

    def measured(self, batch: Callable[[], Any]) -> Callable[[], Any]:
        """``batch`` wrapped to report its times; starts the meter on the first."""
        with self._lock:
            if self._meter is None:
                self._meter = GilMeter().__enter__()

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
            self.decision = self._decide(meter.held_share())
        _log.info("poolwise joblib backend, mode='auto': %s", "; ".join(self.decision.reasons))

    def _decide(self, held: float | None) -> Decision:
        tasks = max(1, self._tasks)
        per_task = self._wall / tasks
        share = self._cpu / self._wall if self._wall > 0 else 1.0
        workers = self._workers
        reasons = [
            f"the first {tasks} tasks ({self._batches} joblib batches) took "
            f"{duration(per_task)} each, {share:.0%} of it on the CPU"
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
        if held is None or held < GIL_HELD_SHARE:
            seen = "no wake-up measured" if held is None else f"{1 - held:.0%} of its wake-ups"
            reasons.append(
                f"another thread found the GIL free ({seen}): the work releases it, threads"
            )
            return Decision("threads", workers, reasons)
        reasons.append(f"another thread waited for the GIL on {held:.0%} of its wake-ups")
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
