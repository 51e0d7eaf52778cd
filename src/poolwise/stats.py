"""Counters of a pool or of one run (``PoolStats``), and what one run measured (``Measured``)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .chunking import Chunker
    from .decide import Decision

__all__ = ["RETRIED_LISTED", "Measured", "PoolStats"]

#: How many retried input indexes a report lists (the count is always complete).
RETRIED_LISTED = 1000


class PoolStats:
    """Counters of a pool, or of one run on it; updated from worker-facing threads.

    A run's stats have the pool's as ``parent``: every count goes to both, so
    ``Pool.report()`` covers every run and ``map(..., report=True)`` covers its own.
    """

    __slots__ = (
        "_lock",
        "chunker",
        "chunksize",
        "cpu_seconds",
        "decisions",
        "done",
        "failed",
        "mode",
        "parent",
        "retried",
        "retried_inputs",
        "started",
        "submitted",
        "task_seconds",
        "timed_out",
        "workers",
    )

    def __init__(self, parent: PoolStats | None = None) -> None:
        self._lock = threading.Lock()
        self.parent = parent
        self.started = time.perf_counter()
        self.submitted = 0
        self.done = 0
        self.failed = 0
        self.timed_out = 0
        self.retried = 0
        self.retried_inputs: list[int] = []
        self.task_seconds = 0.0
        self.cpu_seconds = 0.0
        #: Where the latest map run ran, and on how many workers (None: no map yet).
        self.mode: str | None = None
        self.workers: int | None = None
        self.chunksize: int | None = None
        #: The chunker of the latest map run, to explain its chunk size in the report.
        self.chunker: Chunker | None = None
        #: mode="auto": the decisions of the latest run, with their reasons (more than one
        #: when the work changed character and the run switched).
        self.decisions: list[Decision] = []

    def add_submitted(self, count: int) -> None:
        with self._lock:
            self.submitted += count
        if self.parent is not None:
            self.parent.add_submitted(count)

    def add_outcomes(
        self, count: int, failed: int, seconds: float, cpu_seconds: float, timed_out: int = 0
    ) -> None:
        with self._lock:
            self.done += count - failed
            self.failed += failed
            self.timed_out += timed_out
            self.task_seconds += seconds
            self.cpu_seconds += cpu_seconds
        if self.parent is not None:
            self.parent.add_outcomes(count, failed, seconds, cpu_seconds, timed_out)

    def add_retry(self, index: int | None) -> None:
        with self._lock:
            self.retried += 1
            if index is not None and len(self.retried_inputs) < RETRIED_LISTED:
                self.retried_inputs.append(index)
        if self.parent is not None:
            self.parent.add_retry(index)

    def set_running(self, mode: str, workers: int, chunksize: int, chunker: Chunker) -> None:
        """A map run now sends chunks of ``chunksize`` to ``workers`` workers of ``mode``."""
        self.mode, self.workers, self.chunksize, self.chunker = mode, workers, chunksize, chunker
        if self.parent is not None:
            self.parent.set_running(mode, workers, chunksize, chunker)

    def set_decisions(self, decisions: list[Decision]) -> None:
        self.decisions = decisions
        if self.parent is not None:
            self.parent.set_decisions(decisions)


class Measured:
    """Tasks one map run has measured so far: how many, their wall and CPU seconds.

    Written by the run's own thread only (deliveries are handled there), read by
    ``mode="auto"`` to notice work that changes character.
    """

    __slots__ = ("count", "cpu_seconds", "seconds")

    def __init__(self, count: int = 0, seconds: float = 0.0, cpu_seconds: float = 0.0) -> None:
        self.count = count
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds

    def add(self, count: int, seconds: float, cpu_seconds: float) -> None:
        self.count += count
        self.seconds += seconds
        self.cpu_seconds += cpu_seconds

    def copy(self) -> Measured:
        return Measured(self.count, self.seconds, self.cpu_seconds)

    def since(self, earlier: Measured) -> Measured:
        """What was measured after ``earlier`` (a copy taken from this one)."""
        return Measured(
            self.count - earlier.count,
            self.seconds - earlier.seconds,
            self.cpu_seconds - earlier.cpu_seconds,
        )
