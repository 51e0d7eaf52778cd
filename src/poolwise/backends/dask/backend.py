"""Dask: each chunk is one Dask task, on a cluster of our own or on one at ``address``.

Data flow::

    caller thread                          Dask                      collector thread
    ─────────────                          ────                      ("poolwise-dask")
    submit(chunk)
      pickle fn (once per pool), tasks
      pending ──at most `workers` Dask ──> scheduler ──> a worker    Dask's done callback
                tasks at once                process's thread:        puts the future here ┐
                                             run_chunk               <─────────────────────┘
                                             (child/dask_task.py)       fetch the bytes, release
                                                                     the key, deliver the
                                                                     outcomes, send the rest
                                                                     of a timed-out chunk,
                                                                     hand over what pends

Without ``address`` the pool starts a ``distributed.LocalCluster`` on first use: one worker
process of one thread per worker (``workers``, else ``poolwise.cpus()``), the scheduler in
this process, no dashboard, scratch files in a folder of its own; it is closed with the
pool. With ``address`` the pool only connects a client (never the default client of this
process) and closes only that client.

Policy that Dask does not give and poolwise promises, and how:

* *One outcome per task.* The pool hands Dask at most ``workers`` chunks at once (one per
  worker thread) and keeps the rest here, so a Dask worker holds only the chunk it runs.
  When its process dies, Dask fails the chunks it held with ``KilledWorker`` (our own
  cluster's scheduler allows no re-run: ``allowed_failures=0``) and each of their tasks
  without an outcome gets ``WorkerCrashed``; nothing is silently re-run. On a cluster at
  ``address`` Dask re-runs such a chunk on another worker up to
  ``distributed.scheduler.allowed-failures`` times (3 by default) first; start its scheduler
  with ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0`` for poolwise's behaviour. Dask
  also re-runs a finished chunk whose worker died in the few milliseconds before its
  outcome was fetched (its result is lost); fetched results are released at once.
* *Timeouts.* A timed chunk runs in its own thread inside the Dask task, under a watchdog
  in the worker process (``child/dask_timed.py``): at a task's deadline it gets ``TaskTimeout``,
  its thread gets ``StopTask`` (a Python loop stops at once; a call blocked in C stops when
  it returns, its thread abandoned meanwhile) and the Dask task returns at once; the rest
  of the chunk goes out as a new Dask task. So no Dask future needs cancelling at a
  timeout. What this cannot stop: C code that never releases the GIL also stops the
  watchdog and the worker's own event loop, until Dask's ``worker-ttl`` (5 minutes by
  default) gives the worker up, and then its tasks get ``WorkerCrashed``.
* *terminate().* Every task without an outcome gets ``PoolClosed`` at once. Our own
  cluster's worker processes are killed (running tasks stop); on a cluster at ``address``
  the futures are cancelled, which drops queued chunks but cannot stop a chunk that is
  running on a worker: it runs to its end and its result is discarded.

* *Ctrl-C, SIGTERM, exit.* Ctrl-C reaches the caller as with the other modes and the
  pool's ``with`` block terminates it. While our own cluster runs, SIGTERM unwinds the
  same way (``_signals.py``), and a pool left open is terminated at interpreter exit,
  before distributed's own exit handler runs. The workers of our cluster also exit when
  this process is killed outright (Dask watches their parent); only the scratch folder
  is then left behind.

Like Dask itself, worker processes start by ``spawn``: a script that makes a pool must
guard its top level with ``if __name__ == "__main__":``. Workers of a cluster at
``address`` need poolwise (and whatever modules the tasks import) installed; functions
defined in ``__main__`` travel by value. ``poolwise.share()`` works with our own cluster
and any worker on this machine (it maps ``/dev/shm``), not with workers elsewhere.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib
import os
import queue
import re
import shutil
import signal
import tempfile
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from ...errors import (
    BackendUnavailable,
    InitializerFailed,
    NotPicklable,
    PoolClosed,
    PoolwiseError,
    WorkerCrashed,
)
from ...system import cpus
from ...transport import BIG_BUFFER, dumps_or_raise, load_exception, loads
from ..base import Backend, Chunk, WorkerOptions
from ..child.dask_messages import Outcome, Spec
from ..child.dask_task import run_chunk
from ..packing import FunctionCache, check_sendable, pickle_tasks
from ..signals import hold_sigterm, release_sigterm

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from ..._types import Task

__all__ = ["DaskBackend", "require_distributed"]

_HOW = (
    'install the extra: pip install "poolwise[dask]" (or uv add "poolwise[dask]"), '
    "or use mode='processes' on this machine"
)

_LIVE: weakref.WeakSet[DaskBackend] = weakref.WeakSet()


# What this module uses of distributed's Client, Future and LocalCluster, most of which
# distributed leaves unannotated: typed here so that the rest of the module is checked.


class _Future(Protocol):
    """``distributed.Future``."""

    @property
    def status(self) -> str: ...

    def result(self) -> Any: ...

    def exception(self) -> BaseException | None: ...

    def add_done_callback(self, fn: Callable[[_Future], object]) -> None: ...

    def cancel(self) -> None: ...

    def release(self) -> None: ...


class _Client(Protocol):
    """``distributed.Client``."""

    def submit(self, fn: Callable[..., Any], *args: object, key: str) -> _Future: ...

    def scatter(self, data: object, *, hash: bool) -> _Future: ...

    def cancel(self, futures: list[_Future], *, force: bool) -> None: ...

    def nthreads(self) -> Mapping[str, int]: ...

    def close(self) -> None: ...


class _Cluster(Protocol):
    """``distributed.LocalCluster``: its nannies (one per worker process) by name."""

    @property
    def workers(self) -> Mapping[str, Any]: ...

    def sync(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...

    def close(self) -> None: ...


def require_distributed() -> None:
    """Raise ``BackendUnavailable`` unless Dask's ``distributed`` can be imported here."""
    try:
        importlib.import_module("distributed")
    except ImportError as exc:
        raise BackendUnavailable(
            "dask", f"the 'distributed' package cannot be imported ({exc})", _HOW
        ) from exc


class _Job:
    """A chunk, pickled, waiting here or in Dask's hands."""

    __slots__ = (
        "begun",
        "buffers",
        "chunk",
        "claimed",
        "data",
        "fn_bytes",
        "future",
        "has_unsent",
        "start",
        "token",
    )

    def __init__(
        self,
        chunk: Chunk,
        token: int,
        fn_bytes: bytes,
        data: bytes,
        has_unsent: bool,
        buffers: list[bytearray],
    ) -> None:
        self.chunk = chunk
        self.token = token
        self.fn_bytes = fn_bytes
        self.data = data
        self.has_unsent = has_unsent
        #: Big buffers of the arguments (pickle protocol 5, out of band), copied.
        self.buffers = buffers
        #: First task to run: above 0 for the rest of a chunk after a timeout.
        self.start = 0
        #: Whether ``chunk.begin()`` was called (exactly once, when handed to Dask).
        self.begun = False
        #: The Dask future of the current attempt, once submitted.
        self.future: _Future | None = None
        #: Someone (the collector or terminate) took charge of the current attempt's
        #: outcomes; whoever sets it first delivers them, so each task gets exactly one.
        self.claimed = False


class DaskBackend(Backend):
    """Runs each chunk as one Dask task, at most ``workers`` of them in Dask at once."""

    mode: ClassVar[str] = "dask"
    unpickles_shared: ClassVar[bool] = True
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
        #: Names this pool to the workers, which remember its initializer and functions.
        self._id = uuid.uuid4().hex
        self._lock = threading.Lock()
        #: Notified when no job waits and none is in Dask's hands.
        self._idle = threading.Condition(self._lock)
        #: Held while the client connects (or the cluster starts), which takes a while.
        self._start_lock = threading.Lock()
        self._pending: collections.deque[_Job] = collections.deque()
        self._running: set[_Job] = set()
        #: Jobs taken from ``_pending`` by ``_dispatch`` and not yet running.
        self._handing = 0
        self._completed: queue.SimpleQueue[tuple[_Job, _Future] | None] = queue.SimpleQueue()
        self._collector: threading.Thread | None = None
        self._closed = False
        self._terminating = False
        self._tearing_down = False
        self._torn_down = threading.Event()
        self._broken: BaseException | None = None
        self._functions = FunctionCache()
        #: Functions of a megabyte or more, scattered to the cluster once: token -> future.
        self._scattered: dict[int, _Future] = {}
        self._init: bytes | None = None
        if options.initializer is not None:
            self._init = dumps_or_raise(
                (options.initializer, options.initargs), "initializer and initargs"
            )
        self._client: _Client | None = None
        self._cluster: _Cluster | None = None
        self._scratch: str | None = None
        self._lost_workers: set[tuple[str, int | None]] = set()
        self._counters = {"dask_tasks_submitted": 0, "tasks_timed_out": 0}
        if workers == 0:  # workers_for's "ask the cluster"
            self.workers = self._default_workers()
        _LIVE.add(self)

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

    def check_transport(self, fn: Callable[..., Any], first: Task | None) -> None:
        check_sendable(self._functions, fn, first)

    def submit(self, chunk: Chunk) -> None:
        self._raise_if_unusable()
        token, fn_bytes = self._functions.token_for(chunk.fn)
        data, has_unsent, buffers = pickle_tasks(chunk)
        job = _Job(chunk, token, fn_bytes, data, has_unsent, [bytearray(b.raw()) for b in buffers])
        self._connected()
        with self._lock:
            self._raise_if_unusable()
            self._pending.append(job)
        self._dispatch()

    def _raise_if_unusable(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise PoolClosed()

    def _connected(self) -> _Client:
        """The client, connected (and our cluster started) on first use."""
        client = self._client
        if client is not None:
            return client
        with self._start_lock:
            if self._client is None:
                if self._closed:
                    raise PoolClosed()
                self._client = self._connect()
                self._collector = threading.Thread(
                    target=self._collect, name="poolwise-dask", daemon=True
                )
                self._collector.start()
            return self._client

    def _connect(self) -> _Client:
        import distributed

        _terminate_all_at_exit()

        address = self.options.address
        if address is not None:
            try:
                made = distributed.Client(address, set_as_default=False)  # type: ignore[no-untyped-call]
                return cast("_Client", made)
            except OSError as exc:
                exc.add_note(f"poolwise: is a Dask scheduler running at {address}?")
                raise
        scratch = tempfile.mkdtemp(prefix="poolwise-dask-")
        try:
            made_cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                local_directory=scratch,
                scheduler_kwargs={
                    # A chunk whose worker died fails at once (WorkerCrashed): no re-run.
                    "allowed_failures": 0,
                    # No dashboard; its HTTP server (health, metrics) on a free port, not
                    # 8787, which another cluster may hold (Dask then warns and moves).
                    "dashboard": False,
                    "dashboard_address": "127.0.0.1:0",
                    # Its scratch space too, else it goes to TMPDIR/dask-scratch-space.
                    "local_directory": scratch,
                },
            )
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        cluster = cast("_Cluster", made_cluster)
        self._cluster, self._scratch = cluster, scratch
        # SIGTERM unwinds like Ctrl-C while our cluster runs, so that it is closed and its
        # scratch folder removed (the workers would exit anyway: Dask watches the parent).
        hold_sigterm()
        try:
            made = distributed.Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
            return cast("_Client", made)
        except BaseException:
            self._cluster = self._scratch = None
            cluster.close()
            shutil.rmtree(scratch, ignore_errors=True)
            release_sigterm()
            raise

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        with self._lock:
            self._closed = True
            cancelled = list(self._pending) if cancel_pending else []
            if cancel_pending:
                self._pending.clear()
                self._idle.notify_all()
        for job in cancelled:
            _cancel(job)
        in_collector = threading.current_thread() is self._collector
        if not wait or in_collector:
            # The collector tears down once the last chunk is back (woken in case it is).
            if self._client is None:
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
            self._closed = self._terminating = True
            pending = list(self._pending)
            self._pending.clear()
            running = list(self._running)
            self._running.clear()
            claimed = [job for job in running if _claim(job)]
            self._idle.notify_all()
        for job in pending:
            _cancel(job)
        for job in claimed:
            job.chunk.fail_rest(lambda _offset: PoolClosed())
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
            if not job.begun:
                job.begun = True
                try:
                    go = job.chunk.begin()  # False: its run was abandoned, skip it
                except BaseException as exc:  # noqa: BLE001 - its outcome, and no hang
                    go, failed = False, exc
            if failed is not None:
                _fail(job.chunk, failed)
            with self._lock:
                self._handing -= 1
                stopped = go and self._stopping()
                if go and not stopped:
                    self._running.add(job)
                self._notify_if_idle()
            if stopped:
                job.chunk.fail_rest(lambda _offset: PoolClosed())
            elif go:
                self._send(job)

    def _send(self, job: _Job) -> None:
        """Submit ``job`` (from ``job.start``) as one Dask task."""
        try:
            future = self._submit_to_dask(job)
        except BaseException as exc:  # noqa: BLE001 - the chunk's outcome, not a lost error
            if self._claim(job):
                error = PoolClosed() if self._terminating else exc
                job.chunk.fail_rest(lambda _offset: error)
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
                _fail(job.chunk, exc)
                self._release(job)

    def _submit_to_dask(self, job: _Job) -> _Future:
        client = self._connected()
        chunk = job.chunk
        first = chunk.first_index
        spec = Spec(
            self._id,
            job.token,
            job.start,
            len(chunk),
            -1 if first is None else first,
            chunk.unary,
            job.has_unsent,
            chunk.timeout,
        )
        # Dask warns about (and slowly ships) big task graphs: send big bytes beforehand,
        # a big function once (dropped when the pool's function cache forgets it).
        fn: Any = job.fn_bytes
        if len(fn) >= BIG_BUFFER:
            with self._lock:
                for token in self._functions.take_forgotten():
                    self._scattered.pop(token, None)
                fn = self._scattered.get(job.token)
            if fn is None:
                fn = client.scatter(job.fn_bytes, hash=False)
                with self._lock:
                    self._scattered[job.token] = fn
        data: Any = job.data
        buffers: Any = job.buffers
        if len(job.data) + sum(len(b) for b in job.buffers) >= BIG_BUFFER:
            data = client.scatter(job.data, hash=False)
            buffers = [client.scatter(b, hash=False) for b in job.buffers]
        name = re.sub(r"\W+", "_", getattr(chunk.fn, "__name__", "task")).strip("_")
        key = f"poolwise-{name or 'task'}-{uuid.uuid4().hex}"
        return client.submit(run_chunk, spec, fn, self._init, data, buffers, key=key)

    def _release(self, job: _Job) -> None:
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

    def _claim(self, job: _Job) -> bool:
        with self._lock:
            return _claim(job)

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
                    _fail(job.chunk, error)
                    self._release(job)
                self._dispatch()
            with self._lock:
                finished = self._closed and self._is_idle()
            if finished:
                self._teardown(kill=False)
                return

    def _settle(self, job: _Job, future: _Future) -> None:
        """Deliver the outcomes of one Dask task (one attempt at ``job``)."""
        status = future.status
        data: bytes | None = None
        error: BaseException | None = None
        if status == "finished":
            try:
                data = future.result()
            except BaseException as exc:  # noqa: BLE001 - e.g. the cluster closed meanwhile
                error = exc
        elif status == "error":
            error = future.exception()
        future.release()  # the scheduler forgets the key: nothing of it is re-run
        if not self._claim(job):
            return  # terminate() gave its tasks PoolClosed
        chunk = job.chunk
        resume = False
        if data is not None:
            resume = self._deliver(job, data)
        elif isinstance(error, _killed_worker()):
            self._crashed(job, error)
        elif error is not None:
            chunk.fail_rest(lambda _offset: error)
        else:  # cancelled by someone else: the scheduler restarted, or lost this client
            note = f"the Dask scheduler dropped this chunk (its future is {status})"
            chunk.fail_rest(
                lambda offset: WorkerCrashed(None, None, chunk.index_of(offset), None, note)
            )
        if resume:  # a task timed out and the Dask task returned at once: send the rest
            with self._lock:
                terminating = self._terminating
                if not terminating:
                    job.claimed = False
                    job.future = None
                    job.start = chunk.delivered
            if not terminating:
                self._send(job)
                return
            chunk.fail_rest(lambda _offset: PoolClosed())
        self._release(job)

    def _deliver(self, job: _Job, data: bytes) -> bool:
        """Deliver a Dask task's outcomes; True if the rest of the chunk must be sent."""
        chunk = job.chunk
        try:
            outcome: Outcome = loads(data)
            errors = {pos: load_exception(payload) for pos, payload in outcome.errors.items()}
        except Exception as exc:  # noqa: BLE001 - a result that pickled there, loads not here
            start = chunk.delivered
            where = f"results of {len(chunk) - start} task(s) from #{chunk.index_of(start)}"
            failed = NotPicklable(where, type(exc).__qualname__, f"unpickling here: {exc}")
            chunk.fail_rest(lambda _offset: failed)
            return False
        if outcome.init_failed is not None:
            self._break(job, outcome.init_failed)
            return False
        with self._lock:
            self._counters["tasks_timed_out"] += outcome.timed_out
        chunk.deliver(
            outcome.start, outcome.values, errors or None, outcome.seconds, outcome.cpu_seconds
        )
        return outcome.resume_at is not None and chunk.delivered < len(chunk)

    def _crashed(self, job: _Job, error: BaseException) -> None:
        """The worker holding ``job`` died: each task without an outcome gets WorkerCrashed."""
        chunk = job.chunk
        worker = getattr(error, "last_worker", None)
        address = str(getattr(worker, "address", "?"))
        pid: int | None = getattr(worker, "pid", None)
        with self._lock:
            self._lost_workers.add((address, pid))
        start = chunk.delivered
        note = f"Dask worker {address}"
        index = chunk.index_of(start)
        if len(chunk) - start > 1:
            last = chunk.index_of(len(chunk) - 1)
            span = "its inputs" if index is None else f"inputs #{index} to #{last}"
            note += f" ran {span} in one Dask task, so which one ended it is not known"
            index = None
        crash = WorkerCrashed(None, None, index, pid, note)
        crash.__cause__ = error
        chunk.fail_rest(lambda _offset: crash)

    def _break(self, job: _Job, payload: tuple[bytes | None, str, str, str]) -> None:
        """The initializer raised in a worker: fail everything, take nothing more."""
        name = getattr(self.options.initializer, "__qualname__", "initializer")
        error = InitializerFailed(name, f"{payload[1]}: {payload[2]}")
        error.__cause__ = load_exception(payload)
        with self._lock:
            self._broken = error
            self._closed = True
            pending = list(self._pending)
            self._pending.clear()
        job.chunk.fail_rest(lambda _offset: error)
        for waiting in pending:
            waiting.chunk.fail_rest(lambda _offset: error)

    # -- stopping ------------------------------------------------------------------------

    def _teardown(self, *, kill: bool, futures: list[_Future] | None = None) -> None:
        """Close the client, then our cluster (killing its workers first if ``kill``).

        The client goes first: its scheduler then forgets the pool's keys, so killing
        the workers neither re-runs nor fails (and logs) a chunk of ours.
        """
        with self._lock:
            first, self._tearing_down = not self._tearing_down, True
        if not first:
            if threading.current_thread() is not self._collector:
                self._torn_down.wait()
            return
        with self._start_lock:  # a cluster still starting is closed once it is up
            self._closed = True
            client, cluster, scratch = self._client, self._cluster, self._scratch
        try:
            if client is not None and futures:
                with contextlib.suppress(Exception):
                    client.cancel(futures, force=True)
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
            if cluster is not None and kill:
                _kill_workers(cluster)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            if cluster is not None:
                release_sigterm()
            self._scattered.clear()
            self._torn_down.set()
            self._completed.put(None)  # the collector stops

    def _join_collector(self) -> None:
        collector = self._collector
        if collector is not None and collector is not threading.current_thread():
            collector.join()


def _claim(job: _Job) -> bool:
    """Take charge of the current attempt's outcomes (call with the backend's lock)."""
    if job.claimed:
        return False
    job.claimed = True
    return True


def _killed_worker() -> type[BaseException]:
    """``distributed.KilledWorker``: Dask's error for a task whose worker died."""
    from distributed import KilledWorker

    return KilledWorker


def _fail(chunk: Chunk, error: BaseException) -> None:
    """Every task of ``chunk`` without an outcome gets ``error``."""
    chunk.fail_rest(lambda _offset: error)


def _cancel(job: _Job) -> None:
    """A job that will never run: cancelled if it never began, else PoolClosed."""
    if not job.begun:
        job.chunk.cancel()
    else:
        job.chunk.fail_rest(lambda _offset: PoolClosed())


def _kill_workers(cluster: _Cluster) -> None:
    """SIGKILL our cluster's worker processes, after telling their nannies not to restart
    them (closing waits seconds for a busy worker to exit by itself)."""
    nannies = list(cluster.workers.values())

    async def no_restarts() -> None:
        for nanny in nannies:
            close_gracefully = getattr(nanny, "close_gracefully", None)
            if close_gracefully is not None:
                close_gracefully()

    with contextlib.suppress(Exception):
        cluster.sync(no_restarts)
    for nanny in nannies:
        pid = getattr(nanny, "pid", None)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _terminate_all() -> None:
    """At interpreter exit, stop every pool's cluster and remove its scratch folder."""
    for backend in list(_LIVE):
        with contextlib.suppress(Exception):
            backend.terminate()


_exit_hook_lock = threading.Lock()
_exit_hook = False


def _terminate_all_at_exit() -> None:
    """Register ``_terminate_all`` once, after ``distributed`` is imported: exit handlers
    run last registered first, so ours closes our clients before distributed closes its
    clusters (which would log the loss of chunks our pools had not released yet)."""
    global _exit_hook
    with _exit_hook_lock:
        if not _exit_hook:
            atexit.register(_terminate_all)
            _exit_hook = True
