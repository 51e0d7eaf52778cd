"""Threads: workers are threads of this process, fed from one queue.

    submit ──> SimpleQueue[Chunk] ──> worker thread: begin, run_tasks, deliver
                                      (started on demand, up to ``workers``)

Threads share the caller's memory, so nothing is pickled; a chunk's function and
arguments are used as they are.
"""

from __future__ import annotations

import queue
import threading
from typing import ClassVar

from ..errors import InitializerFailed, PoolClosed
from ._init import run_initializer
from ._run import run_tasks
from .base import Backend, Chunk, WorkerOptions

__all__ = ["ThreadBackend"]


class ThreadBackend(Backend):
    """A thread pool of our own, so that a later change can stop and replace one worker."""

    mode: ClassVar[str] = "threads"
    #: Measured on 2 cores: a SimpleQueue hand-off plus the delivery is about 10-30 us.
    chunk_overhead: ClassVar[float] = 3e-5

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        self._queue: queue.SimpleQueue[Chunk | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._init_error: InitializerFailed | None = None

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
            self._queue.put(chunk)
            # An idle thread will take it; otherwise start one while under the limit.
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work,
                    name=f"poolwise-threads-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        try:
            run_initializer(self.options)
        except InitializerFailed as exc:
            self._break(exc)
            return
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if chunk.begin():
                run_tasks(chunk.fn, chunk.tasks, chunk.deliver, unary=chunk.unary)
            del chunk  # drop fn, arguments and results before waiting (cpython issue16284)
            self._idle.release()

    def _break(self, exc: InitializerFailed) -> None:
        """An initializer failed: fail everything queued, refuse more; no retry loop."""
        with self._lock:
            self._init_error = exc
            self._closed = True
        for chunk in self._drain():
            chunk.fail_rest(lambda _offset: exc)

    def _drain(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return chunks
            if item is not None:
                chunks.append(item)

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_pending:
            for chunk in self._drain():
                chunk.cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()

    def terminate(self) -> None:
        self.shutdown(wait=False, cancel_pending=True)

    def stats(self) -> dict[str, int]:
        return {"threads_started": len(self._threads)}
