"""Starting map runs: a pool's backends by mode and size, and one factory per map call.

``Pool`` and ``mode="auto"`` (``auto.py``) start every run through a ``RunFactory``: it
knows the call's function, options and statistics, and puts a ``MapRun`` on the backend for
a mode and a number of workers (made the first time it is asked for). auto asks for several
in one map (the probe on serial and threads, then the chosen mode).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .backends import backend_class
from .chunking import Chunker
from .maprun import MapRun
from .system import cpus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .backends.base import Backend, WorkerOptions
    from .options import Inputs, RunOptions
    from .progress import Bar
    from .stats import PoolStats

__all__ = ["Backends", "RunFactory"]


class Backends:
    """A pool's backends by (mode, workers), made when first needed (auto may use several)."""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self._made: dict[tuple[str, int], Backend] = {}
        self._lock = threading.Lock()

    def get(self, mode: str, requested: int | None) -> Backend:
        """The backend of ``mode`` with ``requested`` workers (None: the mode's default)."""
        kind = backend_class(mode)
        # cpus() reads cgroup files: only when the mode's default size needs it
        workers = kind.workers_for(requested, requested or cpus())
        with self._lock:
            backend = self._made.get((mode, workers))
            if backend is None:
                backend = self._made[(mode, workers)] = kind(workers, self.options)
            return backend

    def _all(self) -> list[Backend]:
        with self._lock:
            return list(self._made.values())

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        for backend in self._all():
            backend.shutdown(wait=wait, cancel_pending=cancel_pending)

    def terminate(self) -> None:
        for backend in self._all():
            backend.terminate()

    def stats(self) -> dict[str, int]:
        """Every backend's counters, added up by name."""
        merged: dict[str, int] = {}
        for backend in self._all():
            for name, value in backend.stats().items():
                merged[name] = merged.get(name, 0) + value
        return merged


class RunFactory:
    """Starts the runs of one map call, on whichever mode is asked, with the call's options."""

    def __init__(
        self,
        backends: Backends,
        fn: Callable[..., Any],
        inputs: Inputs,
        options: RunOptions,
        stats: PoolStats,
    ) -> None:
        self.backends = backends
        self.fn = fn
        self.unary = inputs.unary
        self.first = inputs.first
        self.options = options
        self.stats = stats

    def start(
        self,
        mode: str,
        workers: int | None,
        tasks: Iterator[Any],
        *,
        total: int | None,
        first_index: int = 0,
        chunksize: int | None = None,
        progress: Callable[[], Bar | None] | None = None,
    ) -> MapRun:
        """A run of ``tasks`` (input indexes from ``first_index``) on ``mode``; it starts
        taking inputs when iterated. ``chunksize=None`` sizes chunks from measured times."""
        backend = self.backends.get(mode, workers)
        chunker = Chunker(
            backend.workers,
            backend.chunk_overhead,
            total=total,
            fixed=chunksize,
            limit=self.backends.options.max_tasks_per_worker,
        )
        options = self.options
        return MapRun(
            backend,
            backend.adapt(self.fn, self.first),
            tasks,
            chunker,
            self.stats,
            ordered=options.ordered,
            unary=self.unary,
            timeout=options.timeout,
            policy=options.policy,
            progress=progress,
            first_index=first_index,
            return_exceptions=options.return_exceptions,
            read_ahead=options.buffersize,
        )
