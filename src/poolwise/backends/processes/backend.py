"""Processes: worker processes of our own, each addressable, served by one selector thread.

Data flow::

    caller thread (backend.py)          dispatcher thread "poolwise-processes" (dispatcher.py)
    ──────────────────────────          ──────────────────────────────────────────────────────
    submit(chunk)                       loop.py: selector over the wake pipe, each worker's
      packing.pack: fn pickled once       result pipe and sentinel, task pipes with data queued
        (by token), tasks pickled       take pending jobs -> a worker with a free slot
        (Unsent markers for the ones      (spawn one if under `workers`), write frames
        that fail)                      RESULT frames -> packing.deliver_result -> chunk
      big buffers -> shared memory      past a timeout -> deadlines.py: SIGTERM, then SIGKILL
        (buffers.BufferStore)           sentinel or EOF -> the worker exited: crashes.py
      dispatcher.put(job); wake ──────>   gives the running task WorkerCrashed (or
                                          TaskTimeout) and requeues the rest

    worker process (child/process_worker.py): receiver thread -> inbox -> run_tasks
        -> RESULT frames
    the parent's handle on each worker (handle.py): its pipes, clock slot, jobs held

Every pipe end in the parent is non-blocking, so one slow or stuck worker never stalls the
others. Before each task a worker writes (chunk id, position, start time) into a small
shared array, so when it dies the pool knows which task it was running: that task gets
``WorkerCrashed``, the tasks after it go back to the queue.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from ...native_threads import native_width, user_set_limits, worker_environment
from ...system import cpus, default_start_method
from ...transport import dumps_or_raise
from ..buffers import BufferStore
from ..child.segments import describe
from ..lifetime import LiveBackends
from ..packing import PicklingBackend, pack
from ..signals import hold_sigterm, release_sigterm
from .dispatcher import Dispatcher
from .handle import WorkerRecipe
from .popen import preload_worker_module, worker_process_class

if TYPE_CHECKING:
    from ..base import Chunk, WorkerOptions

__all__ = ["ProcessBackend"]

#: At interpreter exit, stop every pool's workers (they are not daemon processes).
_LIVE: LiveBackends[ProcessBackend] = LiveBackends(lambda backend: backend.terminate())
_LIVE.stop_all_at_exit()


def _native_limit(options: WorkerOptions, workers: int) -> tuple[dict[str, str], int | None]:
    """What each worker sets before it loads anything, and the width it applies to
    libraries already loaded (None: leave them; "auto" defers to variables the user set)."""
    width = native_width(options.native_threads, workers, cpus())
    environment = worker_environment(options.native_threads, width)
    if options.native_threads == "auto" and user_set_limits():
        width = None
    return environment, width


class ProcessBackend(PicklingBackend):
    """Runs chunks in worker processes that it starts, feeds, watches and replaces."""

    mode: ClassVar[str] = "processes"
    #: Measured on 2 cores: a chunk's round trip (pickle, two pipe writes, unpickle) is
    #: about 100-300 us.
    chunk_overhead: ClassVar[float] = 3e-4

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        method = options.start_method or default_start_method()
        context: Any = multiprocessing.get_context(method)
        process_class = worker_process_class(method)
        if method == "forkserver":
            preload_worker_module()
        self.start_method = method
        initializer: bytes | None = None
        if options.initializer is not None:
            initializer = dumps_or_raise(
                (options.initializer, options.initargs), "initializer and initargs"
            )
        self._chunk_ids = itertools.count(1)
        #: Segments holding the big buffers of chunks in flight.
        self._buffers = BufferStore()
        self._dispatcher = Dispatcher(
            workers=workers,
            options=options,
            recipe=WorkerRecipe(
                context, process_class, initializer, *_native_limit(options, workers)
            ),
            functions=self.functions,
            buffers=self._buffers,
            chunk_ids=self._chunk_ids,
        )
        self._sigterm_lock = threading.Lock()
        hold_sigterm()
        self._released = False
        _LIVE.add(self)

    def submit(self, chunk: Chunk) -> None:
        self._dispatcher.admission.raise_if_unusable()
        job = pack(chunk, self.functions)
        job.chunk_id = next(self._chunk_ids)
        shared_bytes = copied = 0
        if job.buffers:
            placed, keys, copied = self._buffers.place(chunk.sink, list(job.buffers))
            job.segments = describe(placed)
            # The copies in shared memory travel; the chunk keeps its own tasks alive.
            job.buffers = ()
            job.free_segments = weakref.finalize(job, self._buffers.release, keys)
            shared_bytes = sum(size for _, size in placed)
        self._dispatcher.put(job, shared_bytes=shared_bytes, copied_bytes=copied)

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        self._stop(wait=wait, cancel_pending=cancel_pending, kill=False)

    def terminate(self) -> None:
        self._stop(wait=True, cancel_pending=True, kill=True)

    def _stop(self, *, wait: bool, cancel_pending: bool, kill: bool) -> None:
        with self._sigterm_lock:
            release, self._released = not self._released, True
        if release:
            release_sigterm()
        self._dispatcher.stop(wait=wait, cancel_pending=cancel_pending, kill=kill)

    def stats(self) -> dict[str, int]:
        return dict(self._dispatcher.counters)
