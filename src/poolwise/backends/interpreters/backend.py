"""Interpreters: each worker is a subinterpreter with its own GIL, driven by one thread.

    backend.submit: pickle fn (once, cached by token) and tasks ──> group.queue[Job]
                                                                      │
    running: worker thread (one per worker, started on demand) <─────┘
      creates an isolated interpreter; exec: sys.path, import child.interpreter_worker, init
      per chunk: chunk.begin(), then exec("run(ChunkMessage)") ──> child.interpreter_worker:
                                                                   unpickle, run_tasks, flush
    reading: reader thread (one per worker) <── result pipe ─── RESULT frames every 10 ms
      chunk.deliver(...)                                          (and GUARD, TIMED_OUT,
                                                                   ABANDONED, STOPPED,
                                                                   INIT_FAILED)
    stopping: terminate() ── b"T" ──> control pipe ──> child.interpreter_guard

The modules: ``availability`` (whether this Python can, and the primitives),
``worker`` (one worker's interpreter, threads and pipes), ``group`` (the workers of one
backend and their queue), ``running`` (the worker thread), ``reading`` (the reader
thread), ``stopping`` (terminate, an interpreter stuck in C, the program's end) and this
one, which takes chunks and reports.

Subinterpreters share this process but not its objects: like process workers they get
the function and arguments pickled (cloudpickle: functions from ``__main__`` and lambdas
travel by value, which CPython's own InterpreterPoolExecutor cannot do, gh-136603) and
send results and exceptions back pickled. Each has its own GIL, so pure-Python CPU-bound
work runs in parallel. Measured on 2 cores (3.13.0): a bare interpreter starts in ~7 ms,
a worker answers its first task in ~60 ms (it imports cloudpickle and poolwise in its
interpreter) and adds ~9 MB to this process. The outcomes come back through an OS pipe,
which the reader blocks on (``_interpqueues`` has no blocking get in 3.13: it would poll).
See ``stopping`` for how a task past its ``timeout`` is stopped and when an interpreter
is given up on (a task blocked in C) and replaced.

What this mode cannot do:

- Extension modules that do not support subinterpreters (NumPy, pandas, psutil and most
  compiled packages today) fail to import in a worker; the task gets an ImportError that
  names the module and says to use ``mode="processes"``.
- A crash in a worker (a segfault, ``os._exit``) ends this whole process: there is no
  other process to survive it, so there is no ``WorkerCrashed`` here.
- A task blocked in C cannot be stopped: ``STOP_GRACE`` after its timeout it gets
  ``TaskTimeout``, its interpreter is abandoned (destroyed when the task returns) and a
  new one takes its place; ``terminate()`` leaves it running, as threads do.
- A thread that a task starts and never ends keeps its interpreter from being destroyed.

At the program's end, pools still open are terminated and their idle interpreters
destroyed (``_at_exit``, ``stopping.wait_at_exit``).

Needs CPython 3.13+ (``_interpreters``; ``concurrent.interpreters`` from 3.14):
``require_interpreters()`` says why elsewhere.
"""

from __future__ import annotations

from typing import ClassVar

from ...errors import BackendUnavailable, PoolClosed
from ...transport import dumps_or_raise
from ..base import Chunk, WorkerOptions, drain
from ..lifetime import LiveBackends
from ..packing import PicklingBackend, pack
from .availability import HOW, primitives
from .group import WorkerGroup
from .stopping import join_workers, terminate_workers, wait_at_exit

__all__ = ["InterpreterBackend"]

#: Pools still open at the program's end are stopped and their interpreters destroyed.
_LIVE: LiveBackends[InterpreterBackend] = LiveBackends(lambda backend: backend.at_exit())
_LIVE.stop_all_at_exit()


class InterpreterBackend(PicklingBackend):
    """Runs chunks in subinterpreters of this process, one per worker thread."""

    mode: ClassVar[str] = "interpreters"
    #: Measured on 2 cores (3.13.0): submit(int) answers in ~120 us against ~35 us on
    #: threads and ~210 us on processes (pickle, an exec into the interpreter, ~20 us of
    #: it, unpickle there, a frame back through the pipe, unpickle here).
    chunk_overhead: ClassVar[float] = 1.2e-4
    shares_native_pools: ClassVar[bool] = True

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        loaded = primitives()
        if isinstance(loaded, str):
            raise BackendUnavailable("interpreters", loaded, HOW)
        initializer: bytes | None = None
        if options.initializer is not None:
            initializer = dumps_or_raise(
                (options.initializer, options.initargs), "initializer and initargs"
            )
        self._group = WorkerGroup(loaded, workers, options, initializer)
        _LIVE.add(self)

    # -- caller side -------------------------------------------------------------------

    def submit(self, chunk: Chunk) -> None:
        self._group.admission.raise_if_unusable()
        job = pack(chunk, self.functions)
        self.functions.take_forgotten()  # each worker bounds its own cache
        # Big buffers kept out of the pickle; the interpreter reads them in place.
        job.buffers = tuple(buffer.raw() for buffer in job.buffers)
        group = self._group
        with group.lock:
            self._group.admission.raise_if_unusable()
            group.queue.put(job)
            # An idle worker will take it; otherwise start one while under the limit.
            if not group.idle.acquire(blocking=False):
                group.start_worker()

    # -- lifetime ------------------------------------------------------------------------

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        group = self._group
        with group.lock:
            group.admission.closed = True
            workers = list(group.workers)
        if cancel_pending:
            for job in drain(group.queue):
                if job.start == 0:
                    job.chunk.cancel()
                else:  # the rest of a chunk whose task timed out: it had begun
                    job.chunk.fail_rest(lambda _offset: PoolClosed())
        for _ in workers:
            group.queue.put(None)
        if wait:
            join_workers(workers)

    def terminate(self) -> None:
        """Cancel what waits; stop running tasks with StopTask (at their next bytecode).

        Returns at once: a task blocked in C keeps its interpreter until it returns.
        """
        self.shutdown(wait=False, cancel_pending=True)
        terminate_workers(self._group)

    def at_exit(self) -> None:
        """At the end of the program: stop everything and let the workers destroy their
        interpreters (a little while: not one stuck in C)."""
        self.terminate()
        wait_at_exit(self._group)

    def stats(self) -> dict[str, int]:
        group = self._group
        with group.lock:
            counters = dict(group.counters)
            abandoned = [w for w in group.workers if w.abandoned]
        counters["interpreters_still_running"] = sum(1 for w in abandoned if w.thread.is_alive())
        return counters
