"""The dispatcher thread of mode="processes": it feeds, reads and replaces the workers.

It starts workers, gives each pending job to a worker with a free slot, writes the frames
without blocking, delivers RESULT frames to their chunks, and notices a worker's exit
(its sentinel, or EOF on its result pipe). It sleeps in ``loop.Loop`` (the selector);
timeouts are in ``deadlines``, what a dead worker's tasks get in ``crashes``, the
parent's handle on one worker in ``handle``.

A worker holds at most ``PREFETCH`` chunks: one running, one waiting, so it does not sit
idle between chunks. When a worker has nothing to do and nothing is pending, it steals:
the dispatcher asks a busy worker for its waiting chunk back (REVOKE), and the worker gives
it only if it has not started it (``child.process_worker.Claims``), so a chunk stuck behind
a long task runs on the idle worker and still runs exactly once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING

from ...errors import PoolClosed, PoolwiseError
from ...shared import untrack_unlinked
from ...system import gil_enabled
from ..child import frames as _frames
from ..child.log_forwarding import receive as receive_log
from ..child.segments import sweep_results
from ..lifetime import Admission
from ..packing import initializer_failed, unpack_result
from .crashes import settle_crash
from .deadlines import check_deadlines
from .handle import WorkerHandle
from .loop import Loop

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..base import WorkerOptions
    from ..buffers import BufferStore
    from ..packing import FunctionCache, Job
    from .handle import WorkerRecipe

__all__ = ["PREFETCH", "STOP_GRACE", "Dispatcher"]

#: Chunks a worker may hold at once: one running and one waiting in its pipe.
PREFETCH = 2
#: Seconds to wait for a worker to exit after STOP before killing it.
STOP_GRACE = 5.0
#: Where there is no GIL, the dispatcher thread wakes at least this often while idle. A
#: result it unpickled is its own (biased reference counting): when the caller drops the
#: last reference, the object is queued for this thread to free, which happens only when
#: it next runs Python code. Blocked until the next result, it kept 2 of 400 results of
#: an ended map alive indefinitely on free-threaded 3.13 (#16). A guess: rare enough to
#: cost nothing, soon enough for a program that waits on a weak reference.
IDLE_WAKE_WITHOUT_GIL = 0.1


class Dispatcher:
    """The jobs waiting for a worker, the workers, and the thread that feeds and watches them.

    ``put`` and ``stop`` are called from any thread; everything else runs on the
    dispatcher thread, started by the first ``put``.
    """

    def __init__(
        self,
        *,
        workers: int,
        options: WorkerOptions,
        recipe: WorkerRecipe,
        functions: FunctionCache,
        buffers: BufferStore,
        chunk_ids: Iterator[int],
    ) -> None:
        self.workers = workers
        self.options = options
        self._recipe = recipe
        self._functions = functions
        #: The backend's chunk ids: a chunk given back is sent again under a new one.
        self._chunk_ids = chunk_ids
        #: Segments holding the big buffers of chunks in flight (all freed at the end).
        self._buffers = buffers
        self._lock = threading.Lock()
        self.admission = Admission()
        self._pending: collections.deque[Job] = collections.deque()
        self._terminating = False
        self._loop = Loop()
        self._idle_wake = None if gil_enabled() else IDLE_WAKE_WITHOUT_GIL
        self._workers: dict[int, WorkerHandle] = {}
        #: Workers holding a chunk with a timeout: the only ones whose clocks we read.
        self._timed: set[WorkerHandle] = set()
        #: Workers that take new work (started, not retiring): compared with ``workers``.
        self._active = 0
        self._free: collections.deque[WorkerHandle] = collections.deque()
        self._thread: threading.Thread | None = None
        self.counters = {
            "workers_started": 0,
            "workers_crashed": 0,
            "workers_retired": 0,
            "tasks_timed_out": 0,
            "bytes_through_pipe": 0,
            "bytes_through_shared_memory": 0,
            "bytes_copied_to_shared_memory": 0,
            "tasks_stolen": 0,
        }

    # -- any thread ----------------------------------------------------------------------

    def put(self, job: Job, *, shared_bytes: int, copied_bytes: int = 0) -> None:
        """Queue ``job`` for a worker (its big buffers, ``shared_bytes``, are placed;
        ``copied_bytes`` of them were copied for it, the rest were there already)."""
        with self._lock:
            self.counters["bytes_through_pipe"] += len(job.data)
            self.counters["bytes_through_shared_memory"] += shared_bytes
            self.counters["bytes_copied_to_shared_memory"] += copied_bytes
            self.admission.raise_if_unusable()
            self._pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="poolwise-processes", daemon=True
                )
                self._thread.start()
        self._loop.wake()

    def stop(self, *, wait: bool, cancel_pending: bool, kill: bool) -> None:
        """Close; cancel what waits if asked; let the dispatcher stop (or kill) the workers."""
        with self._lock:
            self.admission.closed = True
            self._terminating = self._terminating or kill
            cancelled = self._take_all_pending() if cancel_pending else []
            thread = self._thread
        for job in cancelled:
            _cancel_job(job)
        if thread is None:
            self._close_fds()
            return
        if kill:  # at once, from here: the dispatcher may be slow to get to it
            for worker in list(self._workers.values()):
                with contextlib.suppress(ValueError, OSError):
                    worker.process.kill()
        self._loop.wake()
        if wait and thread is not threading.current_thread():
            # Bounded when killing: delivering the last outcomes may wait on a Future's
            # lock that an interrupted caller still holds (a KeyboardInterrupt can land
            # between a lock's acquire and its with-block), and the caller must not hang.
            thread.join(STOP_GRACE if kill else None)

    def _take_all_pending(self) -> list[Job]:
        jobs = list(self._pending)
        self._pending.clear()
        return jobs

    # -- dispatcher thread: the loop -----------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                if self._terminating:
                    self._kill_all(PoolClosed())
                    return
                self._forget_functions()
                self._dispatch()
                if self.admission.closed and self._finished():
                    return
                wait = self._check_deadlines()
                if self._idle_wake is not None:
                    wait = self._idle_wake if wait is None else min(wait, self._idle_wake)
                self._loop.wait(wait)
        except BaseException as exc:
            # A bug here must not hang callers: every task still waiting gets the error.
            error = PoolwiseError(f"the process pool's dispatcher failed: {exc!r}")
            error.__cause__ = exc
            self.admission.break_with(error)
            self._kill_all(error)
        finally:
            self._close_fds()

    def _check_deadlines(self) -> float | None:
        """Stop workers whose task ran past its timeout; seconds until the next deadline."""
        if not self._timed:
            return None
        wait, timed_out = check_deadlines(self._timed, time.monotonic())
        self.counters["tasks_timed_out"] += timed_out
        return wait

    def _finished(self) -> bool:
        """Closed, nothing pending: stop idle workers; True once all have exited."""
        with self._lock:
            if self._pending:
                return False
        for worker in list(self._workers.values()):
            if not worker.running:
                self._stop_worker(worker)
        return not self._workers

    def _forget_functions(self) -> None:
        with self._lock:
            tokens = self._functions.take_forgotten()
        for token in tokens:
            for worker in self._workers.values():
                if token in worker.tokens:
                    worker.tokens.discard(token)
                    self._queue_frame(worker, _frames.FORGET, token)

    # -- dispatcher thread: sending ------------------------------------------------------

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
        name = f"poolwise-worker-{self.counters['workers_started']}"
        worker = WorkerHandle.start(self._recipe, name)
        self._workers[worker.pid] = worker
        self._active += 1
        self.counters["workers_started"] += 1
        self._loop.watch(worker, self._on_readable, self._on_exit)
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
            job.chunk.durable,
            len(job.segments),
        )
        size = len(prefix) + len(job.segments) + len(job.data)
        header = _frames.HEADER.pack(_frames.CHUNK, job.chunk_id, size)
        worker.queue(header, prefix, job.segments, job.data)
        worker.running.append(job)
        if job.chunk.timeout is not None:
            self._timed.add(worker)
        worker.assigned += len(job.chunk) - job.start
        self._loop.flush(worker)

    def _queue_frame(self, worker: WorkerHandle, kind: int, key: int, body: bytes = b"") -> None:
        worker.queue(*_frames.encode(kind, key, body))
        self._loop.flush(worker)

    # -- dispatcher thread: receiving ----------------------------------------------------

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
            chunk = job.chunk
            outcomes, shared = unpack_result(chunk, body)
            if shared:  # counted before the map can end; put() adds to it on other threads
                with self._lock:
                    self.counters["bytes_through_shared_memory"] += shared
            if outcomes.offset + len(outcomes.values) < len(chunk):
                chunk.deliver(outcomes)
                return
            # The chunk is done. Its segments are freed and its job dropped before its last
            # outcomes go: the caller may run on before this thread does (on a free-threaded
            # build it does), and a map that has returned must have freed them.
            worker.running.popleft()
            if job.segments:
                job.free_segments()
                untrack_unlinked()
            del job
            chunk.deliver(outcomes)
            del outcomes  # the caller's now
            self._slot_freed(worker)
        elif kind == _frames.REVOKED:
            self._on_revoked(worker, key, given_back=body == b"\x01")
        elif kind == _frames.LOG:
            with contextlib.suppress(Exception):  # a broken handler must not stop the pool
                receive_log(body)
        elif kind == _frames.INIT_FAILED:
            error = initializer_failed(body, self.options.initializer)
            self.admission.break_with(error)
            self._kill_all(error)

    # -- dispatcher thread: the workers' lives -------------------------------------------

    def _slot_freed(self, worker: WorkerHandle) -> None:
        if worker.retiring:
            if not worker.running:
                self._stop_worker(worker)
            return
        if worker.running:
            self._free.append(worker)
        else:
            self._free.appendleft(worker)
            self._steal_for(worker)

    # -- dispatcher thread: stealing -----------------------------------------------------

    def _steal_for(self, idle: WorkerHandle) -> None:
        """Nothing pending for an idle worker: ask a busy one for its waiting chunk back.

        Scans the workers only when one falls idle with nothing pending (the end of a map,
        or a lull), never per task.
        """
        with self._lock:
            if self._pending or self._terminating:
                return
        for victim in self._workers.values():
            if victim is idle or victim.gone or victim.stop_sent or len(victim.running) < 2:
                continue
            job = victim.running[-1]
            if not job.revoking:
                job.revoking = True
                self._queue_frame(victim, _frames.REVOKE, job.chunk_id)
                return

    def _on_revoked(self, worker: WorkerHandle, chunk_id: int, *, given_back: bool) -> None:
        job = next((job for job in worker.running if job.chunk_id == chunk_id), None)
        if job is None:
            return
        job.revoking = False
        if not given_back:  # it had started: it finishes there
            return
        worker.running.remove(job)
        worker.assigned -= len(job.chunk) - job.start
        self.counters["tasks_stolen"] += len(job.chunk) - job.start
        # A new id: if it went back to the same worker, a second REVOKE under the old id
        # would meet the first copy's entry there and give back the copy it is running.
        job.chunk_id = next(self._chunk_ids)
        with self._lock:
            self._pending.appendleft(job)
        self._slot_freed(worker)

    def _retire(self, worker: WorkerHandle) -> None:
        """Give this worker no more work (max_tasks_per_worker); stop it once idle."""
        self.counters["workers_retired"] += 1
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
        for kind, key, body in worker.drain():  # its last frames, written before it died
            self._on_frame(worker, kind, key, body)
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
        self.counters["workers_crashed"] += 1
        again = settle_crash(worker)
        for job in again:
            job.revoking = False  # a REVOKED reply died with the worker
        with self._lock:
            self._pending.extendleft(reversed(again))

    def _forget_worker(self, worker: WorkerHandle) -> None:
        sweep_results(os.getpid(), worker.pid)  # big results it made but never sent
        self._mark_retiring(worker)
        self._workers.pop(worker.pid, None)
        self._timed.discard(worker)
        self._loop.forget(worker)
        worker.close()

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
                _cancel_job(job)
            else:
                job.chunk.fail_rest(lambda _offset: error)

    def _close_fds(self) -> None:
        self._buffers.release_all()
        self._loop.close()


def _cancel_job(job: Job) -> None:
    if not job.begun:
        job.chunk.cancel()
    else:  # requeued after a crash: it had begun, so it needs outcomes
        job.chunk.fail_rest(lambda _offset: PoolClosed())
