"""Whether a backend takes new work, and stopping the backends still alive at exit.

A backend with workers of its own (processes, interpreters, Dask) refuses new work once
it is shut down (``PoolClosed``) or broken, and then says why: the initializer raised,
its dispatcher failed. ``Admission`` holds that state and the one check every ``submit``
makes. ``LiveBackends`` holds the backends of one kind that are still alive, weakly, and
stops them when the program ends without ``shutdown()``: worker processes are not
daemons, interpreters must be destroyed, a cluster closed.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import threading
import weakref
from typing import TYPE_CHECKING, Generic, TypeVar

from ..errors import PoolClosed

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Admission", "LiveBackends"]

_B = TypeVar("_B")


class Admission:
    """Whether a backend takes new work: open, closed, or broken with the reason."""

    __slots__ = ("broken", "closed")

    def __init__(self) -> None:
        #: shutdown() or terminate() was called: new work gets ``PoolClosed``.
        self.closed = False
        #: Why the backend can run nothing more; new work gets this error.
        self.broken: BaseException | None = None

    def raise_if_unusable(self) -> None:
        """Raise why this backend refuses new work, if it does (the breakage first)."""
        if self.broken is not None:
            raise self.broken
        if self.closed:
            raise PoolClosed()

    def break_with(self, error: BaseException) -> None:
        """Refuse all new work from now on, with ``error`` (the first reason stays)."""
        if self.broken is None:
            self.broken = error
        self.closed = True


class LiveBackends(Generic[_B]):
    """The backends of one kind still alive (held weakly), stopped at interpreter exit.

    Usage::

        _LIVE: LiveBackends[MyBackend] = LiveBackends(lambda backend: backend.terminate())
        _LIVE.stop_all_at_exit()  # at import, or once a library's own hooks are in
        ...
        _LIVE.add(self)  # in MyBackend.__init__
    """

    def __init__(self, stop: Callable[[_B], object]) -> None:
        self._stop = stop
        self._backends: weakref.WeakSet[_B] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._registered = False
        self._finalized_in: int | None = None

    def add(self, backend: _B) -> None:
        """Stop ``backend`` at exit if it is still alive then."""
        self._backends.add(backend)
        if self._registered and self._finalized_in != os.getpid():
            self._stop_at_multiprocessing_exit()

    def _stop_at_multiprocessing_exit(self) -> None:
        """Stop every backend when a multiprocessing child exits, too (#15).

        A child started by multiprocessing (a ``Process``, a ``ProcessPoolExecutor`` or
        poolwise worker) skips atexit: it runs multiprocessing's finalizers, then joins its
        non-daemon children, which our workers are. A finalizer of priority 0 or more runs
        before that join; without it, a warm pool's workers held the child's exit until
        the pool's idle reaper stopped them, 5 minutes later. The registry is per process
        (a child starts with it empty), so each process registers its own.
        """
        with self._lock:
            if self._finalized_in == os.getpid():
                return
            self._finalized_in = os.getpid()
        multiprocessing.util.Finalize(None, self.stop_all, exitpriority=10)

    def stop_all(self) -> None:
        """Stop every backend still alive."""
        for backend in list(self._backends):
            self._stop(backend)

    def stop_all_at_exit(self) -> None:
        """Have the interpreter's exit call ``stop_all`` (registered once however often
        this is called). Exit handlers run last registered first: a backend whose library
        has exit hooks of its own (distributed) registers after importing it, so that
        ours run before the library's."""
        with self._lock:
            if self._registered:
                return
            self._registered = True
        atexit.register(self.stop_all)
