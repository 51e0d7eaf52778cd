"""Threads: workers are threads of this process, fed from one queue.

    submit ──> SimpleQueue[(Chunk, start)] ──> worker thread: begin, run, deliver
                                               (started on demand, up to ``workers``)

Threads share the caller's memory, so nothing is pickled. A chunk with a timeout runs one
task at a time under a watchdog (``_interrupt.py``): when a task runs past its deadline
the caller gets ``TaskTimeout`` at once, the rest of the chunk goes back to the queue, a
replacement thread starts so capacity stays, and the old thread gets an asynchronous
``StopTask`` (it stops at its next bytecode, or when it returns from C).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import ClassVar

from .. import nesting
from ..errors import InitializerFailed, PoolClosed, TaskTimeout
from ..native_threads import process_limit
from .base import Backend, Chunk, WorkerOptions, drain
from .child.interrupt import StopTask, TaskWatch, Watchdog, raise_in_thread, run_timed_tasks
from .child.run import Outcomes, run_tasks
from .initializer import run_initializer

__all__ = ["ThreadBackend"]

_Item = tuple[Chunk, int]  # a chunk and the position to start at


class _Worker:
    __slots__ = ("thread", "watch")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.watch: TaskWatch | None = None  # set by the thread itself when it starts


class ThreadBackend(Backend):
    """A thread pool of our own, so that a timed-out task's thread can be stopped and replaced."""

    mode: ClassVar[str] = "threads"
    #: Measured on 2 cores: a SimpleQueue hand-off plus the delivery is about 10-30 us.
    chunk_overhead: ClassVar[float] = 3e-5
    shares_native_pools: ClassVar[bool] = True

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Semaphore(0)
        self._workers: list[_Worker] = []
        self._active = 0  # workers not abandoned
        self._closed = False
        self._init_error: InitializerFailed | None = None
        self._watchdog: Watchdog | None = None
        self._timed_out = 0
        #: Its threads' depth: one below the code that made the pool (nesting.py).
        self._depth = nesting.depth() + 1

    @classmethod
    def workers_for(cls, requested: int | None, cpus: int) -> int:
        # concurrent.futures.ThreadPoolExecutor's default: threads are for waiting, not cores.
        return requested or min(32, cpus + 4)

    def submit(self, chunk: Chunk) -> None:
        with self._lock:
            if self._init_error is not None:
                raise self._init_error
            if self._closed:
                raise PoolClosed()
            if chunk.timeout is not None and self._watchdog is None:
                self._watchdog = Watchdog(self._on_timeout, "poolwise-threads-watchdog")
            self._queue.put((chunk, 0))
            # An idle thread will take it; otherwise start one while under the limit.
            if not self._idle.acquire(blocking=False):
                self._start_worker()

    def _start_worker(self) -> None:
        """Start a worker thread if under the limit (call with the lock held)."""
        if self._active >= self.workers or self._closed:
            return
        thread = threading.Thread(
            target=self._work, name=f"poolwise-threads-{len(self._workers)}", daemon=True
        )
        worker = _Worker(thread)
        self._workers.append(worker)
        self._active += 1
        thread.start()

    def _work(self) -> None:
        nesting.enter(self._depth)
        worker = next(w for w in self._workers if w.thread is threading.current_thread())
        watch = worker.watch = TaskWatch(threading.get_ident())
        try:
            run_initializer(self.options)
        except InitializerFailed as exc:
            self._break(exc)
            return
        native = process_limit()
        try:
            while not watch.abandoned:
                item = self._queue.get()
                if item is None:
                    return
                chunk, start = item
                native.follow()  # OpenMP's width is this thread's own
                self._run(chunk, start, watch)
                del chunk, item  # drop fn, arguments and results while idle (issue16284)
                if not watch.abandoned:
                    self._idle.release()
        except StopTask:
            return  # the watchdog gave up on this thread and replaced it

    def _run(self, chunk: Chunk, start: int, watch: TaskWatch) -> None:
        if start == 0 and not chunk.begin():
            return
        try:
            self._run_begun(chunk, start, watch)
        except StopTask:
            if watch.terminated:
                chunk.fail_rest(lambda _offset: PoolClosed())
            raise
        if watch.terminated:
            chunk.fail_rest(lambda _offset: PoolClosed())

    def _run_begun(self, chunk: Chunk, start: int, watch: TaskWatch) -> None:
        if chunk.timeout is None:
            watch.in_chunk = True
            try:
                run_tasks(
                    chunk.fn,
                    chunk.tasks,
                    chunk.deliver,
                    start=start,
                    unary=chunk.unary,
                    passthrough=(StopTask,),  # terminate(): this thread stops here
                )
            finally:
                watch.in_chunk = False
            return
        assert self._watchdog is not None
        self._watchdog.watch(watch)
        try:
            run_timed_tasks(chunk, start, watch, chunk.deliver)
        finally:
            self._watchdog.unwatch(watch)

    def _on_timeout(self, watch: TaskWatch) -> None:
        """Called by the watchdog, under ``watch.lock``, for a task past its deadline."""
        chunk = watch.chunk
        assert isinstance(chunk, Chunk)  # the chunk this backend's runner was given
        assert chunk.timeout is not None
        position = watch.position
        watch.abandoned = True
        watch.flush_held(chunk.deliver)  # the outcomes before it, in order
        error = TaskTimeout(chunk.timeout, chunk.index_of(position))
        chunk.deliver(Outcomes(position, [None], {0: error}, time.monotonic() - watch.started))
        with self._lock:
            self._timed_out += 1
            self._active -= 1
            if position + 1 < len(chunk):
                self._queue.put((chunk, position + 1))
            self._start_worker()  # capacity stays, even while the old thread is stuck in C
        raise_in_thread(watch.ident, StopTask)

    def _break(self, exc: InitializerFailed) -> None:
        """An initializer failed: fail everything queued, refuse more; no retry loop."""
        with self._lock:
            self._init_error = exc
            self._closed = True
        for chunk, _ in drain(self._queue):
            chunk.fail_rest(lambda _offset: exc)

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        if cancel_pending:
            for chunk, start in drain(self._queue):
                if start == 0:
                    chunk.cancel()
                else:  # the rest of a chunk whose task timed out: it had begun
                    chunk.fail_rest(lambda _offset: PoolClosed())
        for _ in workers:
            self._queue.put(None)
        if self._watchdog is not None:
            self._watchdog.close()
        if wait:
            for worker in workers:
                stuck = worker.watch is not None and worker.watch.abandoned
                if worker.thread is not threading.current_thread() and not stuck:
                    worker.thread.join()

    def terminate(self) -> None:
        """Cancel what waits; stop running tasks with StopTask (at their next bytecode)."""
        self.shutdown(wait=False, cancel_pending=True)
        for worker in list(self._workers):
            watch = worker.watch
            if watch is None or not worker.thread.is_alive():
                continue
            with watch.lock:
                if watch.abandoned:  # given up on already (timeout): its chunk is handled
                    continue
                busy = watch.in_chunk or watch.running
                watch.abandoned = True
                watch.terminated = True
            if busy:
                raise_in_thread(watch.ident, StopTask)

    def stats(self) -> dict[str, int]:
        abandoned = [w for w in self._workers if w.watch is not None and w.watch.abandoned]
        still_running = sum(1 for w in abandoned if w.thread.is_alive())
        return {
            "threads_started": len(self._workers),
            "tasks_timed_out": self._timed_out,
            "threads_stopped": len(abandoned) - still_running,
            "threads_still_running": still_running,
        }
