"""The dispatcher's event loop: one selector over every worker's pipes, and a wake pipe.

The dispatcher thread sleeps in ``wait`` until a worker's result pipe has bytes, a
worker's sentinel fires (it exited), a task pipe takes more bytes after it was full, a
deadline comes, or another thread calls ``wake`` (new work, shutdown). Every pipe end in
the parent is non-blocking, so one slow or stuck worker never stalls the others.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from .handle import WorkerHandle

__all__ = ["Loop"]


class Loop:
    """A selector whose registered callbacks the dispatcher thread runs, and a wake pipe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)

    def wake(self) -> None:
        """Have ``wait`` return now (any thread)."""
        # BlockingIOError: already awake with bytes pending; OSError: the pool is gone.
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def wait(self, timeout: float | None) -> None:
        """Run the callbacks of what is ready, waiting up to ``timeout`` seconds for one."""
        for key, mask in self._selector.select(timeout):
            key.data(mask)

    def watch(
        self,
        worker: WorkerHandle,
        on_readable: Callable[[WorkerHandle], None],
        on_exit: Callable[[WorkerHandle], None],
    ) -> None:
        """Call ``on_readable`` when ``worker``'s result pipe has bytes, ``on_exit`` when
        its process ends."""
        self._selector.register(
            worker.result_conn.fileno(), selectors.EVENT_READ, lambda _m: on_readable(worker)
        )
        self._selector.register(
            worker.process.sentinel, selectors.EVENT_READ, lambda _m: on_exit(worker)
        )

    def flush(self, worker: WorkerHandle) -> None:
        """Write what ``worker``'s task pipe takes now; write more once it takes more."""
        want_writes = worker.write()
        if want_writes != worker.watching_writes:
            fd = worker.task_conn.fileno()
            if want_writes:
                self._selector.register(fd, selectors.EVENT_WRITE, lambda _m: self.flush(worker))
            else:
                self._selector.unregister(fd)
            worker.watching_writes = want_writes

    def forget(self, worker: WorkerHandle) -> None:
        """Stop watching ``worker``'s pipes and sentinel (before they are closed)."""
        for fd in (worker.result_conn.fileno(), worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
        if worker.watching_writes:
            self._selector.unregister(worker.task_conn.fileno())
            worker.watching_writes = False

    def close(self) -> None:
        """Close the selector and the wake pipe (once; later calls do nothing)."""
        with self._lock:
            if self._wake_r < 0:
                return
            wake_r, wake_w = self._wake_r, self._wake_w
            self._wake_r = self._wake_w = -1
        self._selector.close()
        os.close(wake_r)
        os.close(wake_w)

    def _on_wake(self, _mask: int) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
