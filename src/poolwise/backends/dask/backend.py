"""Dask: each chunk is one Dask task, on a cluster of our own or on one at ``address``.

Data flow::

    caller thread                     Dask                          collector thread
    ─────────────                     ────                          ("poolwise-dask")
    submit(chunk)
      pickle fn (once per pool),
      tasks: a packing.Job in a
      DaskJob (sending.py)
      pending ──at most `workers` ──> scheduler ──> a worker        Dask's done callback
        TaskSender.submit (sending.py)  process's thread:           puts the future here ┐
        on the client of                run_chunk                  <─────────────────────┘
        cluster.py's Connection         (child/dask_task.py)        settling.py: fetch the
                                                                    bytes, release the key,
                                                                    deliver the outcomes;
                                                                    here: send the rest of a
                                                                    timed-out chunk, hand
                                                                    over what pends

``cluster.py`` starts (or connects to) the cluster and closes it; ``distributed_api.py``
types what is used of ``distributed``. This module keeps the send window and the states
a pool goes through: open, closed (shutdown), terminating, broken (an initializer failed).

Policy that Dask does not give and poolwise promises, and how:

* *One outcome per task.* The pool hands Dask at most ``workers`` chunks at once (one per
  worker thread) and keeps the rest here, so a Dask worker holds only the chunk it runs.
  When its process dies, Dask fails the chunks it held with ``KilledWorker`` (our own
  cluster's scheduler allows no re-run: ``allowed_failures=0``) and each of their tasks
  without an outcome gets ``WorkerCrashed``; nothing is silently re-run (a cluster at
  ``address`` may re-run it first: see ``cluster.py``). Dask also re-runs a finished chunk
  whose worker died in the few milliseconds before its outcome was fetched (its result
  is lost); fetched results are released at once.
* *Timeouts.* A timed chunk runs under a watchdog in the worker process
  (``child/dask_timed.py``): at a task's deadline it gets ``TaskTimeout``, the Dask task
  returns at once and the rest of the chunk goes out as a new Dask task, so no Dask
  future needs cancelling at a timeout.
* *terminate().* Every task without an outcome gets ``PoolClosed`` at once. Our own
  cluster's worker processes are killed (running tasks stop); on a cluster at ``address``
  the futures are cancelled, which drops queued chunks but cannot stop a chunk that is
  running on a worker: it runs to its end and its result is discarded.
* *Ctrl-C, SIGTERM, exit.* Ctrl-C reaches the caller as with the other modes and the
  pool's ``with`` block terminates it; SIGTERM and interpreter exit are handled in
  ``cluster.py``.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from typing import TYPE_CHECKING, ClassVar

from ...errors import PoolClosed, PoolwiseError
from ...system import cpus
from ..lifetime import Admission
from ..packing import PicklingBackend, pack
from . import settling
from .cluster import Connection, connect, terminate_at_exit
from .distributed_api import killed_worker
from .sending import DaskJob, TaskSender

if TYPE_CHECKING:
    from ...transport import ExceptionPayload
    from ..base import Chunk, WorkerOptions
    from .distributed_api import DaskClient, DaskFuture

    _Ended = tuple[DaskJob, DaskFuture]  # a Dask task that ended, and its job

__all__ = ["DaskBackend"]


class DaskBackend(PicklingBackend):
    """Runs each chunk as one Dask task, at most ``workers`` of them in Dask at once."""

    mode: ClassVar[str] = "dask"
    #: Measured on 2 cores with a LocalCluster: a chunk of one tiny task takes ~11 ms
    #: through this backend (client.submit to Dask's done callback ~8.6 ms, fetching the
    #: result ~1.8 ms), so chunks are sized to about a second of work each (capped by the
    #: input length, so that every worker gets several).
    chunk_overhead: ClassVar[float] = 1e-2

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        if options.max_tasks_per_worker is not None:
            raise ValueError(
                "max_tasks_per_worker is not supported by mode='dask': Dask manages its "
                "workers (its nanny restarts a worker that dies or leaks past its memory "
                "limit); leave it unset"
            )
        super().__init__(workers, options)
        self._lock = threading.Lock()
        #: Notified when no job waits and none is in Dask's hands.
        self._idle = threading.Condition(self._lock)
        #: Held while the client connects (or the cluster starts), which takes a while.
        self._start_lock = threading.Lock()
        self._pending: collections.deque[DaskJob] = collections.deque()
        self._running: set[DaskJob] = set()
        #: Jobs taken from ``_pending`` by ``_dispatch`` and not yet running.
        self._handing = 0
        self._completed: queue.SimpleQueue[_Ended | None] = queue.SimpleQueue()
        self._collector: threading.Thread | None = None
        #: Closed by shutdown()/terminate(), or broken: an initializer raised in a worker.
        self._admission = Admission()
        self._terminating = False
        self._tearing_down = False
        self._torn_down = threading.Event()
        self._sender = TaskSender(options=options, functions=self.functions)
        self._connection: Connection | None = None
        self._lost_workers: set[tuple[str, int | None]] = set()
        self._counters = {"dask_tasks_submitted": 0, "tasks_timed_out": 0}
        if workers == 0:  # workers_for's "ask the cluster"
            self.workers = self._default_workers()
        terminate_at_exit(self)

    @classmethod
    def workers_for(cls, requested: int | None, cpus: int) -> int:
        """``requested``, else 0: sized when the backend starts, from the cluster at
        ``address`` (its worker threads) or else from ``poolwise.cpus()``."""
        return requested or 0

    def _default_workers(self) -> int:
        if self.options.address is None:
            return cpus()
        # Connect now to count: the pool's size must be known before its first map. A
        # cluster that grows later (adaptive) is not followed; pass workers= for that.
        nthreads = self._connected().nthreads()
        return max(1, sum(nthreads.values()))

    # -- caller side -------------------------------------------------------------------

    def submit(self, chunk: Chunk) -> None:
        self._admission.raise_if_unusable()
        packed = pack(chunk, self.functions)
        # Dask pickles the task's arguments itself: the big buffers go as bytearrays.
        packed.buffers = [bytearray(buffer.raw()) for buffer in packed.buffers]
        job = DaskJob(packed)
        self._connected()
        with self._lock:
            self._admission.raise_if_unusable()
            self._pending.append(job)
        self._dispatch()

    def _connected(self) -> DaskClient:
        """The client, connected (and our cluster started) on first use."""
        connection = self._connection
        if connection is not None:
            return connection.client
        with self._start_lock:
            if self._connection is None:
                if self._admission.closed:
                    raise PoolClosed()
                self._connection = connect(address=self.options.address, workers=self.workers)
                self._collector = threading.Thread(
                    target=self._collect, name="poolwise-dask", daemon=True
                )
                self._collector.start()
            return self._connection.client

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        with self._lock:
            self._admission.closed = True
            cancelled = list(self._pending) if cancel_pending else []
            if cancel_pending:
                self._pending.clear()
                self._idle.notify_all()
        for job in cancelled:
            settling.cancel(job.job)
        in_collector = threading.current_thread() is self._collector
        if not wait or in_collector:
            # The collector tears down once the last chunk is back (woken in case it is).
            if self._connection is None:
                self._teardown(kill=False)
            else:
                self._completed.put(None)
            return
        with self._idle:
            while not self._is_idle():
                self._idle.wait()
        self._teardown(kill=False)
        self._join_collector()

    def terminate(self) -> None:
        """Every task without an outcome gets PoolClosed; our cluster's workers are killed
        (a cluster at ``address`` keeps running what it started, its result discarded)."""
        with self._lock:
            self._admission.closed = self._terminating = True
            pending = list(self._pending)
            self._pending.clear()
            running = list(self._running)
            self._running.clear()
            claimed = [job for job in running if job.claim()]
            self._idle.notify_all()
        for job in pending:
            settling.cancel(job.job)
        for job in claimed:
            settling.fail_closed(job.chunk)
        futures = [job.future for job in running if job.future is not None]
        self._teardown(kill=True, futures=futures)
        self._join_collector()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counters, "workers_lost": len(self._lost_workers)}

    # -- handing chunks to Dask ----------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand pending chunks to Dask while fewer than ``workers`` are in its hands."""
        while True:
            with self._lock:
                busy = len(self._running) + self._handing
                if self._terminating or not self._pending or busy >= self.workers:
                    return
                job = self._pending.popleft()
                self._handing += 1  # ours alone until it is running: terminate skips it
            go, failed = True, None
            if not job.job.begun:
                job.job.begun = True
                try:
                    go = job.chunk.begin()  # False: its run was abandoned, skip it
                except BaseException as exc:  # noqa: BLE001 - its outcome, and no hang
                    go, failed = False, exc
            if failed is not None:
                settling.fail_all(job.chunk, failed)
            with self._lock:
                self._handing -= 1
                stopped = go and self._stopping()
                if go and not stopped:
                    self._running.add(job)
                self._notify_if_idle()
            if stopped:
                settling.fail_closed(job.chunk)
            elif go:
                self._send(job)

    def _send(self, job: DaskJob) -> None:
        """Submit ``job`` (from ``job.job.start``) as one Dask task."""
        try:
            future = self._sender.submit(self._connected(), job.job)
        except BaseException as exc:  # noqa: BLE001 - the chunk's outcome, not a lost error
            if self._claim(job):
                settling.fail_all(job.chunk, PoolClosed() if self._terminating else exc)
                self._release(job)
            return
        with self._lock:
            job.future = future
            self._counters["dask_tasks_submitted"] += 1
            terminating = self._terminating
        if terminating:  # terminate() gave its tasks PoolClosed meanwhile
            with contextlib.suppress(Exception):
                future.cancel()
            return
        try:
            future.add_done_callback(lambda done: self._completed.put((job, done)))
        except Exception as exc:  # noqa: BLE001 - the client closed under us
            if self._claim(job):
                settling.fail_all(job.chunk, exc)
                self._release(job)

    def _release(self, job: DaskJob) -> None:
        """``job`` left Dask's hands for good: its slot is free."""
        with self._lock:
            self._running.discard(job)
            self._notify_if_idle()

    def _stopping(self) -> bool:
        # A method, not the attribute: terminate() sets it from another thread.
        return self._terminating

    def _notify_if_idle(self) -> None:
        """Wake shutdown(wait=True) when nothing waits or runs (call with the lock)."""
        if self._is_idle():
            self._idle.notify_all()

    def _is_idle(self) -> bool:
        return not self._pending and not self._running and not self._handing

    def _claim(self, job: DaskJob) -> bool:
        with self._lock:
            return job.claim()

    # -- the collector thread ------------------------------------------------------------

    def _collect(self) -> None:
        """Settle each Dask task as it ends; tear down once closed and idle."""
        while True:
            item = self._completed.get()
            if self._torn_down.is_set():
                return
            if item is not None:
                job, future = item
                try:
                    self._settle(job, future)
                except BaseException as exc:  # noqa: BLE001 - a bug here must not hang callers
                    error = PoolwiseError(f"the Dask backend's collector failed: {exc!r}")
                    error.__cause__ = exc
                    settling.fail_all(job.chunk, error)
                    self._release(job)
                self._dispatch()
            with self._lock:
                finished = self._admission.closed and self._is_idle()
            if finished:
                self._teardown(kill=False)
                return

    def _settle(self, job: DaskJob, future: DaskFuture) -> None:
        """Deliver the outcomes of one Dask task (one attempt at ``job``)."""
        status, data, error = settling.fetch(future)
        if not self._claim(job):
            return  # terminate() gave its tasks PoolClosed
        chunk = job.chunk
        resume = False
        if data is not None:
            resume = self._deliver(chunk, data)
        elif isinstance(error, killed_worker()):
            with self._lock:
                self._lost_workers.add(settling.lost_worker(error))
            settling.fail_crashed(chunk, error)
        elif error is not None:
            settling.fail_all(chunk, error)
        else:
            settling.fail_dropped(chunk, status)
        if resume:  # a task timed out and the Dask task returned at once: send the rest
            with self._lock:
                terminating = self._terminating
                if not terminating:
                    job.retry_from(chunk.delivered)
            if not terminating:
                self._send(job)
                return
            settling.fail_closed(chunk)
        self._release(job)

    def _deliver(self, chunk: Chunk, data: bytes) -> bool:
        """Deliver a Dask task's outcomes; True if the rest of the chunk must be sent."""
        unpacked = settling.unpack(chunk, data)
        if unpacked is None:
            return False
        outcome, errors = unpacked
        if outcome.init_failed is not None:
            self._break(chunk, outcome.init_failed)
            return False
        with self._lock:  # counted first: a caller woken by the delivery sees it
            self._counters["tasks_timed_out"] += outcome.timed_out
        return settling.deliver(chunk, outcome, errors)

    def _break(self, chunk: Chunk, payload: ExceptionPayload) -> None:
        """The initializer raised in a worker: fail everything, take nothing more."""
        error = settling.initializer_failed(self.options.initializer, payload)
        with self._lock:
            self._admission.break_with(error)
            pending = list(self._pending)
            self._pending.clear()
        settling.fail_all(chunk, error)
        for waiting in pending:
            settling.fail_all(waiting.chunk, error)

    # -- stopping ------------------------------------------------------------------------

    def _teardown(self, *, kill: bool, futures: list[DaskFuture] | None = None) -> None:
        """Close the connection once (``Connection.close``), whoever asks first."""
        with self._lock:
            first, self._tearing_down = not self._tearing_down, True
        if not first:
            if threading.current_thread() is not self._collector:
                self._torn_down.wait()
            return
        with self._start_lock:  # a cluster still starting is closed once it is up
            self._admission.closed = True
            connection = self._connection
        try:
            if connection is not None:
                connection.close(kill=kill, futures=futures)
        finally:
            self._sender.forget()
            self._torn_down.set()
            self._completed.put(None)  # the collector stops

    def _join_collector(self) -> None:
        collector = self._collector
        if collector is not None and collector is not threading.current_thread():
            collector.join()
