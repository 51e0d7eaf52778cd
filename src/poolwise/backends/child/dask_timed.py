"""A timed chunk inside a Dask worker: run in a thread of its own, under a watchdog.

The Dask task's thread starts the chunk in a thread of ours and waits. At a task's
deadline this process's watchdog gives the task ``TaskTimeout`` and raises ``StopTask``
in our thread (never in one of Dask's: a Python loop stops at once; a call blocked in C
stops when it returns, its thread abandoned meanwhile), then lets the Dask task return
with the outcomes so far. The parent sends the rest of the chunk as a new Dask task, so a
task blocked in C never holds up the chunk's other tasks nor a Dask thread.

What this cannot stop: C code that never releases the GIL also stops the watchdog and
the worker's own event loop, until Dask's ``worker-ttl`` (5 minutes by default) gives the
worker up, and then its tasks get ``WorkerCrashed``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ...errors import TaskTimeout
from .interrupt import StopTask, TaskWatch, Watchdog, raise_in_thread, run_timed_tasks
from .run import Outcomes

if TYPE_CHECKING:
    from .chunk import TimedChunk
    from .dask_results import GatheredOutcomes

__all__ = ["TimedRun"]

# -- per worker process state ----------------------------------------------------------------

_lock = threading.Lock()
_watchdog: Watchdog | None = None
#: The timed runs in progress, by their watch (for the watchdog's callback).
_runs: dict[TaskWatch, TimedRun] = {}


class TimedRun:
    """A timed chunk run in a thread of its own while the Dask task's thread waits."""

    def __init__(self, chunk: TimedChunk, start: int, results: GatheredOutcomes) -> None:
        self.chunk = chunk
        self.start = start
        self.results = results
        self.finished = threading.Event()
        #: Where the parent must resume the chunk, once a task timed out before its end.
        self.resume_at: int | None = None
        self.timed_out = 0

    def run(self) -> None:
        """Run the chunk from ``start`` until it ends or a task times out."""
        global _watchdog
        with _lock:
            if _watchdog is None:
                _watchdog = Watchdog(_on_timeout, "poolwise-dask-watchdog")
        thread = threading.Thread(target=self._work, name="poolwise-dask-task", daemon=True)
        thread.start()
        self.finished.wait()

    def _work(self) -> None:
        watch = TaskWatch(threading.get_ident())
        assert _watchdog is not None
        try:
            with _lock:
                _runs[watch] = self
            _watchdog.watch(watch)
            try:
                run_timed_tasks(self.chunk, self.start, watch, self.results.flush)
            finally:
                _watchdog.unwatch(watch)
                with _lock:
                    _runs.pop(watch, None)
        except StopTask:
            pass  # given up on at a deadline: the outcomes were handed over already
        finally:
            self.finished.set()


def _on_timeout(watch: TaskWatch) -> None:
    """Called by the watchdog, under ``watch.lock``, for a task past its deadline."""
    with _lock:
        run = _runs.get(watch)
    chunk = watch.chunk
    if run is None or chunk is None or chunk.timeout is None:
        return
    position = watch.position
    watch.abandoned = True  # the runner delivers nothing more and returns
    watch.flush_held(run.results.flush)  # the outcomes before it, in order
    error = TaskTimeout(chunk.timeout, chunk.index_of(position))
    run.results.flush(Outcomes(position, [None], {0: error}, time.monotonic() - watch.started))
    run.timed_out += 1
    if position + 1 < len(chunk):
        run.resume_at = position + 1
    raise_in_thread(watch.ident, StopTask)
    run.finished.set()
