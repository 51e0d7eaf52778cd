"""The contract between the pool (policy) and a backend (mechanism).

The pool cuts inputs into chunks and hands each to ``Backend.submit``. The backend runs the
chunk's tasks somewhere and reports every task's outcome back through the chunk, exactly once:

    pool ──Chunk(fn, tasks)──> backend.submit ──> worker runs tasks
      ^                                                │
      └──── chunk.deliver(offset, values, errors) <────┘   (one or more partial deliveries)

A backend never re-orders, re-chunks or retries; it only decides where a task runs and how
it is stopped. The pool never touches a thread or a process.
"""

from __future__ import annotations

import abc
import functools
import inspect
import queue
import sys
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from ..native_threads import native_width, process_limit
from ..system import cpus
from .child.run import Outcomes

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .._types import Task
    from ..native_threads import NativeThreads

__all__ = [
    "Backend",
    "Chunk",
    "ChunkSink",
    "Outcomes",
    "WorkerOptions",
    "drain",
    "holds_shared",
    "is_async_callable",
    "with_shared_values",
]

T = TypeVar("T")


def drain(waiting: queue.SimpleQueue[T | None]) -> list[T]:
    """Everything queued now, without the ``None`` stop markers (a backend shutting down
    takes back the work its workers have not started)."""
    items: list[T] = []
    while True:
        try:
            item = waiting.get_nowait()
        except queue.Empty:
            return items
        if item is not None:
            items.append(item)


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` gives a coroutine: ``async def``, a partial of one, or an
    object whose ``__call__`` is ``async def`` (``mode="async"`` runs those)."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - the method itself, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


def holds_shared(task: Task) -> bool:
    """Whether a task's top-level arguments include a ``Shared`` (none can exist until
    ``poolwise.shared`` is imported, so most maps pay one dict look-up)."""
    shared = sys.modules.get("poolwise.shared")
    if shared is None:
        return False
    args, kwargs = task
    kind = shared.Shared
    return any(type(a) is kind for a in args) or any(type(v) is kind for v in kwargs.values())


def with_shared_values(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` called with each top-level ``Shared`` argument replaced by its ``value``."""
    from ..shared import Shared

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> T:
        return fn(
            *[a.value if type(a) is Shared else a for a in args],
            **{k: v.value if type(v) is Shared else v for k, v in kwargs.items()},
        )

    return call


class ChunkSink(Protocol):
    """Where a chunk's outcomes go: a map run or a single Future."""

    def begin(self, chunk: Chunk) -> bool:
        """Called when a worker takes the chunk; False means it was cancelled: skip it."""
        ...

    def cancel(self, chunk: Chunk) -> None:
        """The chunk will never run: the pool shut down with ``cancel_pending``."""
        ...

    def deliver(self, chunk: Chunk, outcomes: Outcomes) -> None:
        """Outcomes of ``chunk.tasks[outcomes.offset:outcomes.offset + len(outcomes.values)]``."""
        ...


class Chunk:
    """Tasks that travel to one worker together, with the sink their outcomes go to."""

    __slots__ = ("delivered", "durable", "first_index", "fn", "sink", "tasks", "timeout", "unary")

    def __init__(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[Any],
        first_index: int | None,
        sink: ChunkSink,
        *,
        unary: bool = False,
        timeout: float | None = None,
        durable: bool = False,
    ) -> None:
        self.fn = fn
        #: Send each outcome back before the next task starts (a process worker otherwise
        #: batches them): with retries on, a crash must not lose a finished result, or the
        #: retry would run that task again (#15).
        self.durable = durable
        #: Seconds each task may run; the backend stops a task that runs longer.
        self.timeout = timeout
        #: ``(args, kwargs)`` pairs; or, when ``unary``, the single argument of each call,
        #: which saves building, pickling and unpacking two tuples per tiny task.
        self.tasks = tasks
        self.unary = unary
        #: Input index of ``tasks[0]``; None for a lone ``submit``.
        self.first_index = first_index
        self.sink = sink
        #: How many leading tasks have had their outcome delivered.
        self.delivered = 0

    def __len__(self) -> int:
        return len(self.tasks)

    def task(self, offset: int) -> Task:
        """``(args, kwargs)`` of the task at ``offset``, whatever the chunk's form."""
        item = self.tasks[offset]
        return ((item,), {}) if self.unary else item

    def index_of(self, offset: int) -> int | None:
        """The input index of ``tasks[offset]``, for error messages."""
        return None if self.first_index is None else self.first_index + offset

    def begin(self) -> bool:
        return self.sink.begin(self)

    def cancel(self) -> None:
        self.sink.cancel(self)

    def deliver(self, outcomes: Outcomes) -> None:
        """Hand the outcomes of some of this chunk's tasks to its sink."""
        self.delivered = outcomes.offset + len(outcomes.values)
        self.sink.deliver(self, outcomes)

    def fail_rest(self, exc_for: Callable[[int], BaseException]) -> None:
        """Deliver an exception to every task not yet delivered; ``exc_for(offset)`` builds it."""
        start = self.delivered
        count = len(self.tasks) - start
        if count > 0:
            self.deliver(Outcomes.failed(start, count, exc_for))


class WorkerOptions:
    """What every worker of a pool is started with."""

    __slots__ = (
        "address",
        "initargs",
        "initializer",
        "max_tasks_per_worker",
        "native_threads",
        "start_method",
    )

    def __init__(
        self,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        start_method: str | None = None,
        address: str | None = None,
        native_threads: NativeThreads = "auto",
    ) -> None:
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks_per_worker = max_tasks_per_worker
        self.start_method = start_method
        #: mode="dask": the scheduler to connect to (None: start a LocalCluster).
        self.address = address
        #: BLAS/OpenMP threads per worker: "auto", a number, None (native_threads.py).
        self.native_threads: NativeThreads = native_threads


class Backend(abc.ABC):
    """Runs chunks on one kind of worker. One instance per pool."""

    #: The mode name users pass, e.g. ``"threads"``.
    mode: ClassVar[str]
    #: Rough cost of sending one chunk and getting its outcome back, in seconds; the pool
    #: sizes chunks so that this stays a small share of the work.
    chunk_overhead: ClassVar[float]
    #: Whether ``submit`` runs the chunk before it returns (serial): a map run then reads
    #: no inputs ahead, since nothing could run them sooner.
    runs_on_submit: ClassVar[bool] = False
    #: Whether tasks reach workers pickled, so a ``Shared`` argument arrives as its value
    #: (processes, interpreters, Dask); otherwise the pool hands tasks the value itself.
    unpickles_shared: ClassVar[bool] = False
    #: Whether the workers run in this process and share its native (BLAS/OpenMP) thread
    #: pools (threads, interpreters): a map on them narrows those pools while it runs.
    shares_native_pools: ClassVar[bool] = False

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        self.workers = workers
        self.options = options
        self._native_width: int | None = None
        if self.shares_native_pools and workers > 1:
            self._native_width = native_width(options.native_threads, workers, cpus())

    @classmethod
    def workers_for(cls, requested: int | None, cpus: int) -> int:
        """How many workers to run: what the caller asked for, else one per usable CPU."""
        return requested or cpus

    @abc.abstractmethod
    def submit(self, chunk: Chunk) -> None:
        """Queue a chunk. Raises ``NotPicklable`` if its function cannot travel."""

    def check_transport(self, fn: Callable[..., Any], first: Task | None) -> None:  # noqa: B027
        """Raise ``NotPicklable`` now if ``fn`` or the first task cannot reach a worker."""

    def adapt(self, fn: Callable[..., T], first: Task | None) -> Callable[..., T]:
        """``fn`` as this backend's workers should call it, or a TypeError if they cannot.

        Workers that receive their tasks pickled (``unpickles_shared``) get a ``Shared``
        argument as its value when it is unpickled; for the others (threads, serial) the
        value is handed over here.
        """
        if self.unpickles_shared or first is None or not holds_shared(first):
            return fn
        return with_shared_values(fn)

    @abc.abstractmethod
    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        """Take no more chunks; finish (or cancel) what is queued; stop the workers."""

    @abc.abstractmethod
    def terminate(self) -> None:
        """Stop now: cancel what is queued and stop the running tasks where possible."""

    def stats(self) -> dict[str, int]:
        """Backend counters for the report (workers started, replaced...)."""
        return {}

    def hold_native_threads(self) -> Callable[[], None] | None:
        """Called as a map starts: narrow the native thread pools its workers share with
        this process; returns what undoes it when the map ends (None: nothing to undo).
        Workers in processes of their own are limited when they start instead."""
        if self._native_width is None:
            return None
        return process_limit().hold(self._native_width)
