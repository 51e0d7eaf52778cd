"""Serial: run each chunk at once in the calling thread; no workers, no overhead."""

from __future__ import annotations

from typing import ClassVar

from ..errors import InitializerFailed, PoolClosed
from ._init import run_initializer
from ._run import run_tasks
from .base import Backend, Chunk

__all__ = ["SerialBackend"]


class SerialBackend(Backend):
    """Runs chunks inside ``submit``: the baseline every other mode is measured against."""

    mode: ClassVar[str] = "serial"
    chunk_overhead: ClassVar[float] = 1e-6  # a function call; chunking barely matters here

    _closed = False
    _initialized = False
    _init_error: InitializerFailed | None = None

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
        if chunk.begin():
            run_tasks(
                chunk.fn,
                chunk.tasks,
                chunk.deliver,
                passthrough=(KeyboardInterrupt,),
                unary=chunk.unary,
            )

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        self._closed = True

    def terminate(self) -> None:
        self._closed = True
