"""Processes: worker processes of our own, each addressable, served by one selector thread.

Data flow::

    caller thread                       dispatcher thread ("poolwise-processes")
    ─────────────                       ────────────────────────────────────────
    submit(chunk)                       selector over: wake pipe, each worker's result pipe,
      pickle fn (cached by token)         each worker's sentinel, task pipes with data queued
      pickle tasks (Unsent markers      take pending jobs -> a worker with a free slot
        for the ones that fail)           (spawn one if under `workers`), write frames
      pending.append(job); wake ──────>   RESULT frames -> chunk.deliver(...)
                                          sentinel or EOF -> the worker exited: crash
                                            outcome for the running task, requeue the rest

    worker process (_worker.py): receiver thread -> inbox -> run_tasks -> RESULT frames
    the parent's handle on each worker (_handle.py): its pipes, clock slot, jobs held

Every pipe end in the parent is non-blocking, so one slow or stuck worker never stalls the
others. A worker holds at most ``PREFETCH`` chunks: one running, one waiting, so it does
not sit idle between chunks. Before each task a worker writes (chunk id, position, start
time) into a small shared array, so when it dies the pool knows which task it was running:
that task gets ``WorkerCrashed``, the tasks after it go back to the queue.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import multiprocessing
import os
import selectors
import signal
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import (
    InitializerFailed,
    NotPicklable,
    PoolClosed,
    PoolwiseError,
    TaskTimeout,
    WorkerCrashed,
)
from ...system import default_start_method
from ...transport import dumps_or_raise, load_exception, loads
from ..base import Backend, Chunk, WorkerOptions
from ..buffers import BufferStore
from ..child import frames as _frames
from ..child.segments import describe
from ..packing import FunctionCache, Job, check_sendable, pickle_tasks
from ..signals import hold_sigterm, release_sigterm
from .handle import WorkerHandle
from .popen import preload_worker_module, worker_process_class

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._types import Task

__all__ = ["ProcessBackend"]

#: Chunks a worker may hold at once: one running and one waiting in its pipe.
PREFETCH = 2
#: Seconds to wait for a worker to exit after STOP before killing it.
STOP_GRACE = 5.0
#: Seconds between SIGTERM and SIGKILL for a worker whose task timed out. The contract is
#: "stopped within timeout + 0.5 s"; this leaves 0.3 s for detection and reaping.
TERM_GRACE = 0.2
#: How often to look at a worker that holds a timed chunk it has not started yet (seconds).
START_POLL = 0.05

_LIVE: weakref.WeakSet[ProcessBackend] = weakref.WeakSet()


class ProcessBackend(Backend):
    """Runs chunks in worker processes that it starts, feeds, watches and replaces."""

    mode: ClassVar[str] = "processes"
    unpickles_shared: ClassVar[bool] = True
    #: Measured on 2 cores: a chunk's round trip (pickle, two pipe writes, unpickle) is
    #: about 100-300 us.
    chunk_overhead: ClassVar[float] = 3e-4

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        method = options.start_method or default_start_method()
        self._context: Any = multiprocessing.get_context(method)
        self._process_class = worker_process_class(method)
        if method == "forkserver":
            preload_worker_module()
        self.start_method = method
        self._initializer: bytes | None = None
        if options.initializer is not None:
            self._initializer = dumps_or_raise(
                (options.initializer, options.initargs), "initializer and initargs"
            )
        self._lock = threading.Lock()
        self._pending: collections.deque[Job] = collections.deque()
        self._closed = False
        self._terminating = False
        self._broken: BaseException | None = None
        self._functions = FunctionCache()
        self._chunk_ids = itertools.count(1)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self._workers: dict[int, WorkerHandle] = {}
        #: Workers holding a chunk with a timeout: the only ones whose clocks we read.
        self._timed: set[WorkerHandle] = set()
        #: Workers that take new work (started, not retiring): compared with ``workers``.
        self._active = 0
        self._free: collections.deque[WorkerHandle] = collections.deque()
        self._thread: threading.Thread | None = None
        hold_sigterm()
        self._released = False
        self._counters = {
            "workers_started": 0,
            "workers_crashed": 0,
            "workers_retired": 0,
            "tasks_timed_out": 0,
            "bytes_through_pipe": 0,
            "bytes_through_shared_memory": 0,
        }
        #: Segments holding the big buffers of chunks in flight.
        self._buffers = BufferStore()
        _LIVE.add(self)

    # -- caller side -------------------------------------------------------------------

    def check_transport(self, fn: Callable[..., Any], first: Task | None) -> None:
        check_sendable(self._functions, fn, first)

    def submit(self, chunk: Chunk) -> None:
        self._raise_if_unusable()
        token, fn_bytes = self._functions.token_for(chunk.fn)
        data, has_unsent, buffers = pickle_tasks(chunk)
        job = Job(chunk, token, fn_bytes, data, has_unsent, chunk_id=next(self._chunk_ids))
        apart = 0
        if buffers:
            placed, keys, _ = self._buffers.place(chunk.sink, buffers)
            job.segments = describe(placed)
            weakref.finalize(job, self._buffers.release, keys)
            apart = sum(size for _, size in placed)
        with self._lock:
            self._counters["bytes_through_pipe"] += len(data)
            self._counters["bytes_through_shared_memory"] += apart
            self._raise_if_unusable()
            self._pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="poolwise-processes", daemon=True
                )
                self._thread.start()
        self._wake()

    def _raise_if_unusable(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise PoolClosed()

    def _wake(self) -> None:
        # BlockingIOError: already awake with bytes pending; OSError: the pool is gone.
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        self._stop(wait=wait, cancel_pending=cancel_pending, kill=False)

    def terminate(self) -> None:
        self._stop(wait=True, cancel_pending=True, kill=True)

    def _stop(self, *, wait: bool, cancel_pending: bool, kill: bool) -> None:
        """Close; cancel what waits if asked; let the dispatcher stop (or kill) the workers."""
        with self._lock:
            release, self._released = not self._released, True
        if release:
            release_sigterm()
        with self._lock:
            self._closed = True
            self._terminating = self._terminating or kill
            cancelled = self._take_all_pending() if cancel_pending else []
            thread = self._thread
        for job in cancelled:
            self._cancel_job(job)
        if thread is None:
            self._close_fds()
            return
        if kill:  # at once, from here: the dispatcher may be slow to get to it
            for worker in list(self._workers.values()):
                with contextlib.suppress(ValueError, OSError):
                    worker.process.kill()
        self._wake()
        if wait and thread is not threading.current_thread():
            # Bounded when killing: delivering the last outcomes may wait on a Future's
            # lock that an interrupted caller still holds (a KeyboardInterrupt can land
            # between a lock's acquire and its with-block), and the caller must not hang.
            thread.join(STOP_GRACE if kill else None)

    def _take_all_pending(self) -> list[Job]:
        jobs = list(self._pending)
        self._pending.clear()
        return jobs

    @staticmethod
    def _cancel_job(job: Job) -> None:
        if not job.begun:
            job.chunk.cancel()
        else:  # requeued after a crash: it had begun, so it needs outcomes
            job.chunk.fail_rest(lambda _offset: PoolClosed())

    def stats(self) -> dict[str, int]:
        return dict(self._counters)

    # -- dispatcher thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                if self._terminating:
                    self._kill_all(PoolClosed())
                    return
                self._forget_functions()
                self._dispatch()
                if self._closed and self._finished():
                    return
                for key, mask in self._selector.select(self._check_deadlines()):
                    key.data(mask)
        except BaseException as exc:
            # A bug here must not hang callers: every task still waiting gets the error.
            error = PoolwiseError(f"the process pool's dispatcher failed: {exc!r}")
            error.__cause__ = exc
            self._broken = error
            self._kill_all(error)
        finally:
            self._close_fds()

    def _check_deadlines(self) -> float | None:
        """Stop workers whose task ran past its timeout; seconds until the next deadline."""
        if not self._timed:
            return None
        now = time.monotonic()
        nearest: float | None = None
        for worker in list(self._timed):
            wait = self._check_worker_deadline(worker, now)
            if wait is not None and (nearest is None or wait < nearest):
                nearest = wait
        return nearest

    def _check_worker_deadline(self, worker: WorkerHandle, now: float) -> float | None:
        if worker.gone or not worker.running:
            self._timed.discard(worker)
            return None
        if worker.kill_at is not None:  # SIGTERM sent: SIGKILL once the grace is over
            if now < worker.kill_at:
                return worker.kill_at - now
            worker.kill_at = None
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
            return None
        head: Job = worker.running[0]
        timeout = head.chunk.timeout
        if timeout is None or worker.stopping_task is not None:
            return None
        task = worker.running_task()
        if task is None:
            return 0.001  # caught it between two tasks; look again
        chunk_id, position, started = task
        if chunk_id != head.chunk_id:
            return START_POLL  # not started yet
        deadline = started + timeout
        if now < deadline:
            return deadline - now
        worker.stopping_task = (head.chunk_id, position)
        worker.kill_at = now + TERM_GRACE
        self._counters["tasks_timed_out"] += 1
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGTERM)
        return TERM_GRACE

    def _finished(self) -> bool:
        """Closed, nothing pending: stop idle workers; True once all have exited."""
        with self._lock:
            if self._pending:
                return False
        for worker in list(self._workers.values()):
            if not worker.running:
                self._stop_worker(worker)
        return not self._workers

    def _on_wake(self, _mask: int) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _forget_functions(self) -> None:
        with self._lock:
            tokens = self._functions.take_forgotten()
        for token in tokens:
            for worker in self._workers.values():
                if token in worker.tokens:
                    worker.tokens.discard(token)
                    self._queue_frame(worker, _frames.FORGET, token)

    def _dispatch(self) -> None:
        """Give pending jobs to workers with a free slot, starting workers as needed."""
        while True:
            with self._lock:
                if not self._pending:
                    return
                job = self._pending[0]
            worker = self._free_worker(len(job.chunk) - job.start)
            if worker is None:
                return
            with self._lock:
                if not self._pending or self._pending[0] is not job:
                    continue  # cancelled meanwhile
                self._pending.popleft()
            if not job.begun:
                job.begun = True
                if not job.chunk.begin():
                    self._free.appendleft(worker)
                    continue
            self._send(worker, job)

    def _free_worker(self, tasks: int) -> WorkerHandle | None:
        """A worker with room for ``tasks`` more tasks, a new one, or None."""
        limit = self.options.max_tasks_per_worker
        can_start = self._active < self.workers
        while self._free:
            worker = self._free[0]
            if worker.gone or worker.retiring or len(worker.running) >= PREFETCH:
                self._free.popleft()
                continue
            if limit is not None and worker.assigned and worker.assigned + tasks > limit:
                self._free.popleft()
                self._retire(worker)
                continue
            if worker.running and can_start:
                break  # an idle new worker beats a second slot on a busy one
            return self._free.popleft()
        if can_start:
            worker = self._spawn()
            self._free.append(worker)  # its second slot
            return worker
        return None

    def _spawn(self) -> WorkerHandle:
        worker = WorkerHandle.start(
            self._context,
            self._process_class,
            f"poolwise-worker-{self._counters['workers_started']}",
            self._initializer,
        )
        self._workers[worker.pid] = worker
        self._active += 1
        self._counters["workers_started"] += 1
        self._selector.register(
            worker.result_conn.fileno(), selectors.EVENT_READ, lambda _m: self._on_readable(worker)
        )
        self._selector.register(
            worker.process.sentinel, selectors.EVENT_READ, lambda _m: self._on_exit(worker)
        )
        return worker

    def _send(self, worker: WorkerHandle, job: Job) -> None:
        if job.token not in worker.tokens:
            worker.tokens.add(job.token)
            self._queue_frame(worker, _frames.FN, job.token, job.fn_bytes)
        first_index = job.chunk.first_index
        prefix = _frames.CHUNK_PREFIX.pack(
            job.token,
            job.start,
            len(job.chunk),
            -1 if first_index is None else first_index,
            job.has_unsent,
            job.chunk.unary,
            job.chunk.timeout is not None,
            len(job.segments),
        )
        size = len(prefix) + len(job.segments) + len(job.data)
        header = _frames.HEADER.pack(_frames.CHUNK, job.chunk_id, size)
        worker.queue(header, prefix, job.segments, job.data)
        worker.running.append(job)
        if job.chunk.timeout is not None:
            self._timed.add(worker)
        worker.assigned += len(job.chunk) - job.start
        self._flush(worker)

    def _queue_frame(self, worker: WorkerHandle, kind: int, key: int, body: bytes = b"") -> None:
        worker.queue(*_frames.encode(kind, key, body))
        self._flush(worker)

    def _flush(self, worker: WorkerHandle) -> None:
        """Write what the pipe takes now; watch for writability if some is left."""
        want_writes = worker.write()
        if want_writes != worker.watching_writes:
            fd = worker.task_conn.fileno()
            if want_writes:
                self._selector.register(fd, selectors.EVENT_WRITE, lambda _m: self._flush(worker))
            else:
                self._selector.unregister(fd)
            worker.watching_writes = want_writes

    def _on_readable(self, worker: WorkerHandle) -> None:
        frames = worker.read()
        if frames is None:
            self._on_exit(worker)
            return
        for kind, key, body in frames:
            self._on_frame(worker, kind, key, body)

    def _on_frame(self, worker: WorkerHandle, kind: int, key: int, body: bytes) -> None:
        if kind == _frames.RESULT:
            job = worker.running[0]
            if job.chunk_id != key:  # cannot happen: a worker runs its chunks in order
                raise PoolwiseError(f"result for chunk {key} while chunk {job.chunk_id} runs")
            offset, count = _frames.RESULT_PREFIX.unpack_from(body)
            try:
                payload = memoryview(body)[_frames.RESULT_PREFIX.size :]
                values, packed, (seconds, cpu) = loads(payload)
                errors = {pos: load_exception(payload) for pos, payload in packed.items()} or None
            except Exception as exc:  # a result that pickled in the worker but loads not here
                where = f"results of {count} task(s) from #{job.chunk.index_of(offset)}"
                failed = NotPicklable(where, type(exc).__qualname__, f"unpickling here: {exc}")
                values, errors = [None] * count, dict.fromkeys(range(count), failed)
                seconds = cpu = 0.0
            job.chunk.deliver(offset, values, errors, seconds, cpu)
            if job.chunk.delivered >= len(job.chunk):
                worker.running.popleft()
                self._slot_freed(worker)
        elif kind == _frames.INIT_FAILED:
            payload = loads(body)
            cause = load_exception(payload)
            name = getattr(self.options.initializer, "__qualname__", "initializer")
            error = InitializerFailed(name, f"{payload[1]}: {payload[2]}")
            error.__cause__ = cause
            self._broken = error
            self._closed = True
            self._kill_all(error)

    def _slot_freed(self, worker: WorkerHandle) -> None:
        if worker.retiring:
            if not worker.running:
                self._stop_worker(worker)
            return
        if worker.running:
            self._free.append(worker)
        else:
            self._free.appendleft(worker)

    def _retire(self, worker: WorkerHandle) -> None:
        """Give this worker no more work (max_tasks_per_worker); stop it once idle."""
        self._counters["workers_retired"] += 1
        self._mark_retiring(worker)
        if not worker.running:
            self._stop_worker(worker)

    def _mark_retiring(self, worker: WorkerHandle) -> None:
        if not worker.retiring:
            worker.retiring = True
            self._active -= 1

    def _stop_worker(self, worker: WorkerHandle) -> None:
        self._mark_retiring(worker)
        if not worker.stop_sent:
            worker.stop_sent = True
            self._queue_frame(worker, _frames.STOP, 0)

    def _on_exit(self, worker: WorkerHandle) -> None:
        """The worker's process ended (sentinel) or closed its pipe (EOF)."""
        if worker.gone:
            return
        worker.gone = True
        self._drain(worker)
        worker.process.join(STOP_GRACE)
        if worker.process.exitcode is None:  # closed its pipe but lives on: end it
            worker.process.kill()
            worker.process.join()
        worker.exitcode = worker.process.exitcode
        self._forget_worker(worker)
        if not worker.running:
            return
        if self._terminating:  # killed by terminate(): what it held gets PoolClosed
            running = list(worker.running)
            worker.running.clear()
            for job in running:
                job.chunk.fail_rest(lambda _offset: PoolClosed())
            return
        self._counters["workers_crashed"] += 1
        self._recover(worker)

    def _drain(self, worker: WorkerHandle) -> None:
        """Handle the last frames a dead worker wrote before it died."""
        for kind, key, body in worker.drain():
            self._on_frame(worker, kind, key, body)

    def _forget_worker(self, worker: WorkerHandle) -> None:
        self._mark_retiring(worker)
        self._workers.pop(worker.pid, None)
        self._timed.discard(worker)
        for fd in (worker.result_conn.fileno(), worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
        if worker.watching_writes:
            self._selector.unregister(worker.task_conn.fileno())
            worker.watching_writes = False
        worker.close()

    def _recover(self, worker: WorkerHandle) -> None:
        """The crashed task gets WorkerCrashed; the tasks after it go back to the queue."""
        exitcode = worker.exitcode
        head = worker.running[0]
        chunk = head.chunk
        position = chunk.delivered
        task = worker.running_task()
        if task is not None and task[0] == head.chunk_id:
            position = max(position, task[1])
        signum = -exitcode if exitcode is not None and exitcode < 0 else None
        code = exitcode if signum is None else None
        start = chunk.delivered
        # Tasks from `start` to `position - 1` finished, but their results died with the
        # worker before the next flush; like the task that was running, their outcome is
        # the crash (naming the task that was running), never a silent re-run.
        count = position - start + 1
        timed_out = worker.stopping_task == (head.chunk_id, position)
        note = f"stopped because task #{chunk.index_of(position)} timed out" if timed_out else None
        crash = WorkerCrashed(code, signum, chunk.index_of(position), worker.pid, note)
        errors: dict[int, BaseException] = dict.fromkeys(range(count), crash)
        if timed_out and chunk.timeout is not None:
            errors[count - 1] = TaskTimeout(chunk.timeout, chunk.index_of(position))
        chunk.deliver(start, [None] * count, errors, 0.0)
        requeue = list(worker.running)
        worker.running.clear()
        if position + 1 < len(chunk):
            head.start = position + 1
        else:
            requeue.pop(0)
        with self._lock:
            for job in reversed(requeue):
                if job is not head:
                    job.start = job.chunk.delivered
                self._pending.appendleft(job)

    def _kill_all(self, error: BaseException) -> None:
        """Kill every worker; every task not yet delivered gets ``error``."""
        with self._lock:
            pending = self._take_all_pending()
        for worker in list(self._workers.values()):
            if worker.process.exitcode is None:
                worker.process.kill()
        for worker in list(self._workers.values()):
            worker.process.join()
            worker.exitcode = worker.process.exitcode
            worker.gone = True
            running = list(worker.running)
            worker.running.clear()
            self._forget_worker(worker)
            for job in running:
                job.chunk.fail_rest(lambda _offset: error)
        for job in pending:
            if isinstance(error, PoolClosed):
                self._cancel_job(job)
            else:
                job.chunk.fail_rest(lambda _offset: error)

    def _close_fds(self) -> None:
        self._buffers.release_all()
        with self._lock:
            if self._wake_r < 0:
                return
            wake_r, wake_w = self._wake_r, self._wake_w
            self._wake_r = self._wake_w = -1
        self._selector.close()
        os.close(wake_r)
        os.close(wake_w)


@atexit.register
def _terminate_all() -> None:
    """At interpreter exit, stop every pool's workers (they are not daemon processes)."""
    for backend in list(_LIVE):
        backend.terminate()
