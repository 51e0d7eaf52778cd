"""Serial: run each chunk at once in the calling thread; no workers, no overhead."""

from __future__ import annotations

import threading
from typing import ClassVar

from ..errors import InitializerFailed, PoolClosed
from .base import Backend, Chunk
from .child.interrupt import StopTask, TaskWatch, Watchdog, raise_in_thread, run_timed_tasks
from .child.run import run_tasks
from .initializer import run_initializer

__all__ = ["SerialBackend"]


class SerialBackend(Backend):
    """Runs chunks inside ``submit``: the baseline every other mode is measured against."""

    mode: ClassVar[str] = "serial"
    chunk_overhead: ClassVar[float] = 1e-6  # a function call; chunking barely matters here
    runs_on_submit: ClassVar[bool] = True

    _closed = False
    _initialized = False
    _init_error: InitializerFailed | None = None
    _watchdog: Watchdog | None = None
    _timed_out = 0

    @classmethod
    def workers_for(cls, requested: int | None, cpus: int) -> int:
        return 1  # the calling thread is the one worker, whatever was asked

    def submit(self, chunk: Chunk) -> None:
        if self._closed:
            raise PoolClosed()
        if not self._initialized:
            # The initializer runs once; if it failed, every later submit re-raises that.
            self._initialized = True
            try:
                run_initializer(self.options)
            except InitializerFailed as exc:
                self._init_error = exc
        if self._init_error is not None:
            raise self._init_error
        if not chunk.begin():
            return
        if chunk.timeout is None:
            run_tasks(
                chunk.fn,
                chunk.tasks,
                chunk.deliver,
                passthrough=(KeyboardInterrupt,),
                unary=chunk.unary,
            )
            return
        # The task runs in the caller's own thread; the watchdog raises StopTask in it at
        # the deadline (at the next bytecode, or when a call into C returns).
        if self._watchdog is None:
            self._watchdog = Watchdog(self._on_timeout, "poolwise-serial-watchdog")
        watch = TaskWatch(threading.get_ident())
        self._watchdog.watch(watch)
        try:
            run_timed_tasks(chunk, 0, watch, chunk.deliver, passthrough=(KeyboardInterrupt,))
        finally:
            self._watchdog.unwatch(watch)

    def _on_timeout(self, watch: TaskWatch) -> None:
        """Called by the watchdog, under ``watch.lock``: stop the caller's running task."""
        self._timed_out += 1
        raise_in_thread(watch.ident, StopTask)

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.close()

    def terminate(self) -> None:
        self.shutdown(wait=False, cancel_pending=True)

    def stats(self) -> dict[str, int]:
        return {"tasks_timed_out": self._timed_out}
