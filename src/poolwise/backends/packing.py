"""How a chunk is packed for a worker, and its outcomes for the trip back.

Shared by process workers and interpreter workers; imported inside both, so it imports the
standard library, ``transport``, ``errors`` and ``_frames`` only.

A map sends one function to many chunks: ``FunctionCache`` pickles it once (cloudpickle,
by value for lambdas and ``__main__``) and names it by a token, which each worker caches.
``pickle_tasks`` pickles a chunk's tasks in one go; when some will not pickle, each of
those travels as an ``Unsent`` marker that becomes that task's ``NotPicklable`` in the
worker, so the other tasks still run. ``pack_result`` is the worker's side of the way back:
a batch of outcomes, with each result that will not pickle turned into its NotPicklable.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import threading
from typing import TYPE_CHECKING, Any

from ..errors import NotPicklable
from ..transport import (
    Unsent,
    dumps,
    dumps_apart,
    dumps_or_raise,
    find_unpicklable,
)
from .child.results import FN_CACHE_SIZE

if TYPE_CHECKING:
    import pickle
    from collections.abc import Callable, Sequence

    from .._types import Task
    from .base import Chunk

__all__ = ["FunctionCache", "Job", "check_sendable", "pickle_tasks"]


class FunctionCache:
    """Pickled functions by identity, each with a token; tells which tokens were dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: collections.OrderedDict[int, tuple[object, int, bytes]] = (
            collections.OrderedDict()
        )
        self._forgotten: list[int] = []
        self._tokens = itertools.count(1)

    def token_for(self, fn: Callable[..., Any]) -> tuple[int, bytes]:
        """The token and pickled bytes of ``fn``, pickling it only the first time.

        Raises ``NotPicklable`` naming the part of ``fn`` that cannot travel.
        """
        with self._lock:
            cached = self._functions.get(id(fn))
            # The cache holds fn itself, so its id cannot be reused while cached.
            if cached is not None and cached[0] is fn:
                self._functions.move_to_end(id(fn))
                return cached[1], cached[2]
        data = dumps_or_raise(fn, "fn")
        with self._lock:
            token = next(self._tokens)
            self._functions[id(fn)] = (fn, token, data)
            while len(self._functions) > FN_CACHE_SIZE:
                _, (_, old_token, _) = self._functions.popitem(last=False)
                self._forgotten.append(old_token)
        return token, data

    def take_forgotten(self) -> list[int]:
        """Tokens dropped since the last call: workers may forget those functions."""
        with self._lock:
            tokens, self._forgotten = self._forgotten, []
        return tokens


def check_sendable(functions: FunctionCache, fn: Callable[..., Any], first: Task | None) -> None:
    """Raise ``NotPicklable`` now, before any work, if ``fn`` or the first task cannot be
    pickled (every backend whose workers unpickle their tasks checks this way)."""
    functions.token_for(fn)
    if first is not None:
        args, kwargs = first
        dumps_or_raise(args, "input #0 args")
        if kwargs:
            dumps_or_raise(kwargs, "input #0 kwargs")


def pickle_tasks(chunk: Chunk) -> tuple[bytes, bool, list[pickle.PickleBuffer]]:
    """The chunk's tasks pickled, whether some are ``Unsent`` markers, and the big buffers
    left out of the pickle (``transport.dumps_apart``)."""
    tasks = chunk.tasks
    try:
        data, buffers = dumps_apart(tasks if isinstance(tasks, list) else list(tasks))
    except Exception:
        pass
    else:
        return data, False, buffers
    sendable: list[Any] = []
    for offset, item in enumerate(tasks):
        try:
            dumps(item)
        except Exception as exc:
            index = chunk.index_of(offset)
            label = "input" if index is None else f"input #{index}"
            args, kwargs = chunk.task(offset)
            error = find_unpicklable(args, f"{label} args") or find_unpicklable(
                kwargs, f"{label} kwargs"
            )
            if error is None:
                error = NotPicklable(label, "task", f"{type(exc).__name__}: {exc}")
            sendable.append(Unsent(error) if chunk.unary else ((Unsent(error),), {}))
        else:
            sendable.append(item)
    data, buffers = dumps_apart(sendable)
    return data, True, buffers


@dataclasses.dataclass(eq=False, slots=True, weakref_slot=True)
class Job:
    """A chunk, pickled once, waiting for (or held by) a worker.

    The one record of a pickled chunk for process, interpreter and Dask workers; each
    backend reads the fields it needs.
    """

    chunk: Chunk
    #: The function's token in the pool's FunctionCache, and its pickled bytes.
    token: int
    fn_bytes: bytes
    #: The tasks, pickled (``pickle_tasks``), and whether some are ``Unsent`` markers.
    data: bytes
    has_unsent: bool
    #: Big buffers kept out of the pickle (protocol 5, out of band).
    buffers: Sequence[Any] = ()
    #: processes: the id a worker reports the chunk by.
    chunk_id: int = 0
    #: processes: the shared-memory segments holding ``buffers`` (``buffers.describe``).
    segments: bytes = b""
    #: First task to run: above 0 when the rest of a chunk is sent again (a crash, a
    #: timeout).
    start: int = 0
    #: Whether ``chunk.begin()`` was called (it must be, exactly once).
    begun: bool = False
