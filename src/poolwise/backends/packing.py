"""The parent's side of a chunk's trip: packing it for a worker, unpacking what comes back.

Used by the backends whose workers unpickle their tasks (processes, interpreters, Dask).

A map sends one function to many chunks: ``FunctionCache`` pickles it once (cloudpickle,
by value for lambdas and ``__main__``) and names it by a token, which each worker caches.
``pickle_tasks`` pickles a chunk's tasks in one go; when some will not pickle, each of
those travels as an ``Unsent`` marker that becomes that task's ``NotPicklable`` in the
worker, so the other tasks still run. ``pack`` does both and returns the chunk's ``Job``.

On the way back, ``unpack_result`` reads a RESULT frame's outcomes, taking big results
from shared memory, and ``deliver_result`` hands them to their chunk (the worker packed
them with ``child.results.pack_result``) and ``initializer_failed`` turns
an INIT_FAILED frame into the pool's ``InitializerFailed``.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import threading
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import InitializerFailed, NotPicklable
from ..transport import (
    Unsent,
    dumps,
    dumps_apart,
    dumps_or_raise,
    find_unpicklable,
    load_exception,
    loads,
)
from .base import Backend
from .child import frames as _frames
from .child.results import FN_CACHE_SIZE
from .child.run import Outcomes
from .child.segments import take_results

if TYPE_CHECKING:
    import pickle
    from collections.abc import Callable, Sequence

    from .._types import Task
    from .base import Chunk, WorkerOptions

__all__ = [
    "FunctionCache",
    "Job",
    "PicklingBackend",
    "check_sendable",
    "deliver_result",
    "initializer_failed",
    "pack",
    "pickle_tasks",
    "unpack_result",
]


class FunctionCache:
    """Pickled functions by identity, each with a token; tells which tokens were dropped.

    It holds each function weakly where it can: a submitted callable (a bound method
    holding its object) must be freed once its tasks are done, as CPython's executors do
    (their test_no_stale_references, #15). A function is pickled again if it was freed and
    its id reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: collections.OrderedDict[int, tuple[Callable[[], object], int, bytes]] = (
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
            if cached is not None and cached[0]() is fn:
                self._functions.move_to_end(id(fn))
                return cached[1], cached[2]
        data = dumps_or_raise(fn, "fn")
        with self._lock:
            token = next(self._tokens)
            stale = self._functions.pop(id(fn), None)
            if stale is not None:  # a freed function whose id was reused
                self._forgotten.append(stale[1])
            self._functions[id(fn)] = (_hold(fn), token, data)
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
    #: Big buffers kept out of the pickle (protocol 5, out of band); processes drop them
    #: once copied into shared memory.
    buffers: Sequence[Any] = ()
    #: processes: the id a worker reports the chunk by.
    chunk_id: int = 0
    #: processes: the shared-memory segments holding ``buffers`` (``child.segments.describe``).
    segments: bytes = b""
    #: processes: frees ``segments`` once the chunk is done (a ``weakref.finalize`` on the
    #: job, so also when the job is collected; it runs once).
    free_segments: Callable[[], object] = lambda: None
    #: First task to run: above 0 when the rest of a chunk is sent again (a crash, a
    #: timeout).
    start: int = 0
    #: Whether ``chunk.begin()`` was called (it must be, exactly once).
    begun: bool = False
    #: processes: asked back from a worker that has not started it (for an idle one).
    revoking: bool = False


class PicklingBackend(Backend):
    """A backend whose workers receive each chunk pickled (processes, interpreters, Dask):
    its functions are pickled once per worker by token, and a task's ``Shared`` argument
    arrives as its value when the worker unpickles it."""

    unpickles_shared: ClassVar[bool] = True

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        self.functions = FunctionCache()

    def check_transport(self, fn: Callable[..., Any], first: Task | None) -> None:
        check_sendable(self.functions, fn, first)


def _hold(fn: Callable[..., Any]) -> Callable[[], object]:
    """A weak reference to ``fn``, or a strong one if it cannot be weakly referenced."""
    try:
        return weakref.ref(fn)
    except TypeError:  # a builtin: it lives as long as its module anyway
        return lambda: fn


def pack(chunk: Chunk, functions: FunctionCache) -> Job:
    """The chunk pickled for a worker: its function (by token, pickled once per map), its
    tasks, and in ``Job.buffers`` the big buffers left out of their pickle.

    Raises ``NotPicklable`` if the function cannot be pickled; a task that cannot travels
    as an ``Unsent`` marker (``pickle_tasks``).
    """
    token, fn_bytes = functions.token_for(chunk.fn)
    data, has_unsent, buffers = pickle_tasks(chunk)
    return Job(chunk, token, fn_bytes, data, has_unsent, buffers)


def deliver_result(chunk: Chunk, body: bytes) -> None:
    """Deliver the outcomes in a RESULT frame's ``body`` to ``chunk``."""
    chunk.deliver(unpack_result(chunk, body)[0])


def unpack_result(chunk: Chunk, body: bytes) -> tuple[Outcomes, int]:
    """The outcomes in a RESULT frame's ``body`` for ``chunk``, and how many bytes of them
    came through shared memory (those segments are unlinked here, whatever happens next).

    A batch that pickled in the worker but does not unpickle here (a class this process
    cannot import) is each of its tasks' ``NotPicklable``, never a lost chunk.
    """
    offset, count, apart = _frames.RESULT_PREFIX.unpack_from(body)
    start = _frames.RESULT_PREFIX.size
    shared = 0
    try:
        buffers = take_results(memoryview(body)[start : start + apart]) if apart else None
        shared = sum(view.nbytes for view in buffers or ())
        values, packed, (seconds, cpu) = loads(memoryview(body)[start + apart :], buffers)
        errors = {pos: load_exception(exc) for pos, exc in packed.items()} or None
    except Exception as exc:
        where = f"results of {count} task(s) from #{chunk.index_of(offset)}"
        failed = NotPicklable(where, type(exc).__qualname__, f"unpickling here: {exc}")
        values, errors = [None] * count, dict.fromkeys(range(count), failed)
        seconds = cpu = 0.0
    return Outcomes(offset, values, errors, seconds, cpu), shared


def initializer_failed(body: bytes, initializer: object) -> InitializerFailed:
    """The pool's error for an INIT_FAILED frame: ``initializer`` raised in a worker, and
    its exception (with the worker's traceback) becomes the ``__cause__``."""
    payload = loads(body)
    name = getattr(initializer, "__qualname__", "initializer")
    error = InitializerFailed(name, f"{payload[1]}: {payload[2]}")
    error.__cause__ = load_exception(payload)
    return error
