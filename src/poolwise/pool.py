"""Pool: the policy layer. It decides what runs and when; a backend decides where.

Data flow::

    Pool.map/imap/starmap ──> checks (before any work) ──> MapRun (outcomes.py)
        inputs -> chunks sized by Chunker (chunking.py) -> backend.submit(chunk)
        outcomes <- chunk.deliver(...) from the backend, yielded in input order
    Pool.submit ──> a one-task Chunk whose outcome goes to a Future (FutureSink)

The pool never touches a thread or a process; it hands chunks to its backend and reads
the outcomes the backend delivers.
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from . import _checks
from .auto import AutoRun
from .backends import backend_class
from .backends.base import Chunk, WorkerOptions, is_async_callable
from .chunking import Chunker
from .decide import Decision
from .errors import PoolClosed
from .outcomes import FutureSink, MapRun, PoolFuture, PoolStats
from .progress import ProgressOption, check_progress, progress_bar
from .report import Report
from .retrying import RetryOn, RetryPolicy, check_retry_on
from .system import cpus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator
    from concurrent.futures import Future
    from types import TracebackType

    from ._types import Task
    from .backends.base import Backend
    from .decide import ProbeFigures
    from .progress import Bar

__all__ = ["Mode", "Pool"]

P = ParamSpec("P")
R = TypeVar("R")

Mode = Literal["auto", "serial", "threads", "processes", "interpreters", "async", "dask"]


class Pool:
    """Workers of one kind that run a function over many inputs.

    These two lines are equivalent to the builtin ``map``, on 4 worker processes::

        with poolwise.Pool("processes", 4) as pool:
            results = pool.map(fn, inputs)

    Args:
        mode: where tasks run: ``"auto"`` (measure, then choose), ``"serial"``,
            ``"threads"``, ``"processes"``, ``"interpreters"`` (Python 3.13+: one
            subinterpreter per worker, each with its own GIL), ``"async"`` (``async def``
            functions) or ``"dask"`` (a Dask cluster).
        workers: how many workers; None picks from ``poolwise.cpus()`` for the mode.
        timeout: per-task limit in seconds.
        retries: how many more times to run a task that failed (raised, crashed its
            worker or timed out).
        retry_on: exception types that qualify for a retry (default: any Exception but
            ``NotPicklable``); e.g. ``(ConnectionError, poolwise.WorkerCrashed)``.
        max_tasks_per_worker: replace a process worker after this many tasks.
        initializer: called with ``initargs`` once in each worker before its first task.
        initargs: arguments for ``initializer``.
        start_method: ``"forkserver"`` (the default where it exists), ``"spawn"`` or
            ``"fork"``, for process workers.
        progress: a progress bar on stderr for each map: True on a terminal, "always"
            even when stderr is not one.
        address: the scheduler of a Dask cluster, for ``mode="dask"``.

    Raises:
        ValueError, TypeError: an argument is invalid; nothing was started.
        BackendUnavailable: the mode cannot run here; the message says what can.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        mode: Mode = "auto",
        workers: int | None = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: RetryOn = None,
        max_tasks_per_worker: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[object] = (),
        start_method: str | None = None,
        progress: ProgressOption = False,
        address: str | None = None,
    ) -> None:
        _checks.check_mode(mode)
        requested = _checks.check_workers(workers)
        self._timeout = _checks.check_timeout(timeout)
        self._retries = _checks.check_retries(retries)
        max_tasks = _checks.check_optional_positive_int(
            max_tasks_per_worker, "max_tasks_per_worker"
        )
        if initializer is not None:
            _checks.check_callable(initializer, "initializer")
        method = _checks.check_start_method(start_method)
        if address is not None and mode != "dask":
            raise ValueError(f"address={address!r} is only for mode='dask', not mode={mode!r}")
        self._policy = RetryPolicy(self._retries, check_retry_on(retry_on))
        self._progress = check_progress(progress)
        self._mode: str = mode
        self._requested = requested
        self._options = WorkerOptions(initializer, tuple(initargs), max_tasks, method, address)
        self._backends = _Backends(self._options)
        # auto picks a mode per map from its first tasks; submit() runs on threads.
        self._backend: Backend | None = None
        if mode == "auto":
            #: Read once: cpus() reads cgroup files, ~0.1 ms that a map of tiny tasks feels.
            self._cpus = cpus()
            self._workers = requested or self._cpus
        else:
            self._backend = self._backends.get(mode, requested)
            self._workers = self._backend.workers
        self._stats = PoolStats()
        #: mode="auto": what probing measured, per function, for later maps to reuse.
        self._measured = _FiguresByFunction()
        self._lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(
            self, self._backends.shutdown, wait=False, cancel_pending=True
        )

    @property
    def mode(self) -> str:
        """Where this pool runs tasks."""
        return self._mode

    @property
    def workers(self) -> int:
        """The most tasks this pool runs at once."""
        return self._workers

    # -- running work -----------------------------------------------------------------

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run ``fn(*args, **kwargs)`` on a worker; the Future holds its outcome."""
        _checks.check_callable(fn)
        self._check_open()
        future: Future[R] = PoolFuture()
        self._stats.add_submitted(1)
        if self._backend is not None:
            backend = self._backend
        else:  # auto: one call is too little to measure
            mode = "async" if is_async_callable(fn) else "threads"
            backend = self._backends.get(mode, self._requested)
        if backend.mode == "async" and not is_async_callable(fn):
            raise TypeError(
                f"mode='async' runs async def functions and {getattr(fn, '__name__', fn)!r} "
                "is a plain one: use mode='threads' (or 'auto') for it"
            )
        if not backend.unpickles_shared and _holds_shared((args, kwargs)):
            fn = _with_shared_values(fn)
        sink = FutureSink(future, self._stats, backend, self._policy)
        backend.submit(Chunk(fn, [(args, kwargs)], None, sink, timeout=self._timeout))
        return future

    @overload
    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
        report: Literal[False] = False,
    ) -> list[R]: ...

    @overload
    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
        report: Literal[True],
    ) -> tuple[list[R], Report]: ...

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
        report: bool = False,
    ) -> list[R] | tuple[list[R], Report]:
        """``fn`` over the inputs, like the builtin ``map``, as a list.

        With ``ordered=False`` the list is in completion order. The first failing task (in
        input order) raises its exception, with the worker's traceback as ``__cause__``.
        With ``report=True``, returns ``(results, report)``: the report covers this map
        only (``Pool.report()`` covers every run of the pool).
        """
        return self._collect(
            fn, iterables, timeout, chunksize, ordered, progress, retries, retry_on, False, report
        )

    def imap(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
    ) -> Iterator[R]:
        """Lazily ``fn`` over the inputs, reading a bounded number of inputs ahead."""
        return iter(
            self._start(
                fn, iterables, timeout, chunksize, ordered, progress, retries, retry_on, False
            )
        )

    async def amap(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        timeout: float | None = None,  # noqa: ASYNC109 - per task, as in map()
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
    ) -> list[R]:
        """``map`` for a caller that is itself a coroutine: ``await pool.amap(fn, xs)``.

        The map runs on a thread of the caller's loop (``asyncio.to_thread``), so the loop
        goes on meanwhile. Cancelling the caller does not stop the tasks already handed out.
        """
        import asyncio

        return await asyncio.to_thread(
            functools.partial(
                self.map,
                fn,
                *iterables,
                timeout=timeout,
                chunksize=chunksize,
                ordered=ordered,
                progress=progress,
                retries=retries,
                retry_on=retry_on,
            )
        )

    async def aimap(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        timeout: float | None = None,  # noqa: ASYNC109 - per task, as in map()
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
    ) -> AsyncIterator[R]:
        """``imap`` for a caller that is itself a coroutine: ``async for r in pool.aimap(...)``.

        Arguments are checked at once; each result is awaited on a thread of the caller's
        loop. Leaving the ``async for`` early skips the chunks not yet started.
        """
        import asyncio

        results = self.imap(
            fn,
            *iterables,
            timeout=timeout,
            chunksize=chunksize,
            ordered=ordered,
            progress=progress,
            retries=retries,
            retry_on=retry_on,
        )
        end = object()
        try:
            while True:
                value = await asyncio.to_thread(next, results, end)
                if value is end:
                    return
                yield value  # type: ignore[misc]
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def imap_unordered(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        timeout: float | None = None,
        chunksize: int | None = None,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
    ) -> Iterator[R]:
        """Like ``imap``, yielding each result as soon as it is ready."""
        return iter(
            self._start(
                fn, iterables, timeout, chunksize, False, progress, retries, retry_on, False
            )
        )

    @overload
    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
        report: Literal[False] = False,
    ) -> list[R]: ...

    @overload
    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
        report: Literal[True],
    ) -> tuple[list[R], Report]: ...

    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
        report: bool = False,
    ) -> list[R] | tuple[list[R], Report]:
        """``fn(*args)`` for each ``args`` in ``iterable``, as a list (``report`` as for
        ``map``)."""
        return self._collect(
            fn, (iterable,), timeout, chunksize, ordered, progress, retries, retry_on, True, report
        )

    def istarmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        progress: ProgressOption = False,
        retries: int = 0,
        retry_on: RetryOn = None,
    ) -> Iterator[R]:
        """Lazily ``fn(*args)`` for each ``args`` in ``iterable`` (``starmap`` as ``imap``)."""
        return iter(
            self._start(
                fn, (iterable,), timeout, chunksize, ordered, progress, retries, retry_on, True
            )
        )

    def _collect(
        self,
        fn: Callable[..., R],
        iterables: tuple[Iterable[object], ...],
        timeout: float | None,
        chunksize: int | None,
        ordered: bool,
        progress: ProgressOption,
        retries: int,
        retry_on: RetryOn,
        star: bool,
        report: bool,
    ) -> list[R] | tuple[list[R], Report]:
        """map and starmap: every result as a list, with this run's report if asked."""
        run = self._start(
            fn, iterables, timeout, chunksize, ordered, progress, retries, retry_on, star
        )
        results = run.collect()
        return (results, self._report(run.stats)) if report else results

    def _start(
        self,
        fn: Callable[..., R],
        iterables: tuple[Iterable[object], ...],
        timeout: float | None,
        chunksize: int | None,
        ordered: bool,
        progress: ProgressOption,
        retries: int,
        retry_on: RetryOn,
        star: bool,
        return_exceptions: bool = False,
    ) -> MapRun | AutoRun:
        """Check everything, then return the run; it works when iterated or collected.

        ``return_exceptions``: a failed task's exception is yielded in its place instead
        of raised (``poolwise run`` writes every outcome).
        """
        _checks.check_callable(fn)
        timeout = _checks.check_timeout(timeout)
        if timeout is None:
            timeout = self._timeout
        policy = self._policy
        if retries or retry_on is not None:
            policy = RetryPolicy(
                _checks.check_retries(retries) or self._policy.retries,
                check_retry_on(retry_on) or self._policy.retry_on,
            )
        show = check_progress(progress) or self._progress
        fixed = _checks.check_chunksize(chunksize)
        self._check_open()
        tasks, total, unary = _tasks_from(iterables, star)
        first, tasks = _peek(tasks)
        task: Task | None = None
        if first is not _NOTHING:
            task = ((first,), _NO_KWARGS) if unary else first
            _checks.check_arity(fn, *task)
        name = getattr(fn, "__name__", "tasks")
        make_bar = (lambda: progress_bar(show, total, name)) if show else None
        # Threads and serial hand a Shared's value to the task; processes unpickle it so.
        in_process = _with_shared_values(fn) if task and _holds_shared(task) else fn
        stats = PoolStats(parent=self._stats)

        def run_on(
            mode: str,
            workers: int | None,
            inputs: Iterator[Any],
            count: int | None,
            first_index: int,
            size: int | None,
            bar: Callable[[], Bar | None] | None,
        ) -> MapRun:
            backend = self._backends.get(mode, workers)
            chunker = Chunker(
                backend.workers,
                backend.chunk_overhead,
                total=count,
                fixed=size,
                limit=self._options.max_tasks_per_worker,
            )
            return MapRun(
                backend,
                fn if backend.unpickles_shared else in_process,
                inputs,
                chunker,
                stats,
                ordered=ordered,
                unary=unary,
                timeout=timeout,
                policy=policy,
                progress=bar,
                first_index=first_index,
                return_exceptions=return_exceptions,
            )

        is_async = is_async_callable(fn)
        if self._backend is None and is_async:  # mode="auto" on coroutines: async
            stats.set_decisions([_async_decision(name, self._requested)])
            return run_on("async", self._requested, tasks, total, 0, fixed, make_bar)
        if self._backend is None:  # mode="auto"
            return AutoRun(
                run_on,
                fn,
                tasks,
                total,
                unary,
                self._cpus,
                self._requested,
                fixed,
                stats,
                make_bar,
                known=self._measured.get(fn),
                remember=lambda figures: self._measured.put(fn, figures),
            )
        if self._mode == "async" and not is_async:
            raise TypeError(
                f"mode='async' runs async def functions and {name} is a plain one: use "
                "mode='threads' (or 'auto') for it"
            )
        self._backend.check_transport(fn, task)
        return run_on(self._mode, self._requested, tasks, total, 0, fixed, make_bar)

    # -- lifetime ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosed()

    def close(self) -> None:
        """Take no more work; what was submitted still runs. Then ``join()``."""
        with self._lock:
            self._closed = True

    def join(self) -> None:
        """Wait for submitted work to finish and the workers to exit (after ``close()``)."""
        if not self._closed:
            raise ValueError("join() waits for a closed pool: call close() first")
        self._backends.shutdown(wait=True, cancel_pending=False)
        self._finalizer.detach()

    def terminate(self) -> None:
        """Stop now: cancel queued work and stop the workers."""
        self.close()
        self._backends.terminate()
        self._finalizer.detach()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close and stop the workers, as ``concurrent.futures.Executor.shutdown`` does."""
        self.close()
        self._backends.shutdown(wait=wait, cancel_pending=cancel_futures)
        if wait:
            self._finalizer.detach()

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            self.join()
        else:
            self.terminate()

    def report(self) -> Report:
        """What this pool did so far, over all its runs."""
        return self._report(self._stats)

    def _report(self, stats: PoolStats) -> Report:
        """A report from ``stats``: the pool's, or one run's."""
        reasons: list[str] = []
        for number, decision in enumerate(stats.decisions):
            if number == 0:
                reasons.append(f"mode auto chose {decision.mode}:")
            else:
                reasons.append(f"then switched to {decision.mode}:")
            reasons += decision.reasons
        if stats.chunker is not None:
            reasons.append(stats.chunker.explain())
        return Report(
            mode=stats.mode or self._mode,
            workers=stats.workers or self._workers,
            chunksize=stats.chunksize,
            tasks_submitted=stats.submitted,
            tasks_done=stats.done,
            tasks_failed=stats.failed,
            tasks_timed_out=stats.timed_out,
            tasks_retried=stats.retried,
            retried_inputs=sorted(stats.retried_inputs),
            wall_seconds=time.perf_counter() - stats.started,
            task_seconds=stats.task_seconds,
            cpu_seconds=stats.cpu_seconds,
            backend=self._backends.stats(),
            reasons=reasons,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<poolwise.Pool mode={self._mode!r} workers={self._workers} {state}>"


#: One empty kwargs dict shared by every task of a map: pickled once per chunk (the pickler
#: memoizes it) instead of once per task. Never mutated: ``fn(**kwargs)`` copies it.
_NO_KWARGS: dict[str, Any] = {}


def _async_decision(name: str, requested: int | None) -> Decision:
    """What auto decides for a coroutine function, without measuring: nothing to measure
    (it waits by construction) and nothing else can await it."""
    workers = backend_class("async").workers_for(requested, 0)
    return Decision(
        "async",
        workers,
        [
            f"{name} is an async def function: it runs on an event loop (mode async), "
            f"up to {workers} at once; threads or processes could not await it"
        ],
    )


def _holds_shared(task: Task) -> bool:
    """Whether a task's top-level arguments include a ``Shared`` (none can exist until
    ``poolwise.shared`` is imported, so most maps pay one dict look-up)."""
    shared = sys.modules.get("poolwise.shared")
    if shared is None:
        return False
    args, kwargs = task
    kind = shared.Shared
    return any(type(a) is kind for a in args) or any(type(v) is kind for v in kwargs.values())


def _with_shared_values(fn: Callable[..., R]) -> Callable[..., R]:
    """``fn`` called with each top-level ``Shared`` argument replaced by its ``value``."""
    from .shared import Shared

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> R:
        return fn(
            *[a.value if type(a) is Shared else a for a in args],
            **{k: v.value if type(v) is Shared else v for k, v in kwargs.items()},
        )

    return call


class _FiguresByFunction:
    """The latest probe figures of the last few functions a pool mapped (bounded: a pool
    that maps a new lambda per call must not grow)."""

    #: Functions remembered at most.
    SIZE = 32

    def __init__(self) -> None:
        self._figures: OrderedDict[Any, ProbeFigures] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, fn: Callable[..., Any]) -> ProbeFigures | None:
        try:
            with self._lock:
                return self._figures.get(fn)
        except TypeError:  # an unhashable callable: measured each time
            return None

    def put(self, fn: Callable[..., Any], figures: ProbeFigures) -> None:
        try:
            with self._lock:
                self._figures[fn] = figures
                self._figures.move_to_end(fn)
                while len(self._figures) > self.SIZE:
                    self._figures.popitem(last=False)
        except TypeError:
            pass


class _Backends:
    """A pool's backends by (mode, workers), made when first needed (auto may use several)."""

    def __init__(self, options: WorkerOptions) -> None:
        self._options = options
        self._made: dict[tuple[str, int], Backend] = {}
        self._lock = threading.Lock()

    def get(self, mode: str, requested: int | None) -> Backend:
        kind = backend_class(mode)
        # cpus() reads cgroup files: only when the mode's default size needs it
        workers = kind.workers_for(requested, requested or cpus())
        with self._lock:
            backend = self._made.get((mode, workers))
            if backend is None:
                backend = self._made[(mode, workers)] = kind(workers, self._options)
            return backend

    def _all(self) -> list[Backend]:
        with self._lock:
            return list(self._made.values())

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        for backend in self._all():
            backend.shutdown(wait=wait, cancel_pending=cancel_pending)

    def terminate(self) -> None:
        for backend in self._all():
            backend.terminate()

    def stats(self) -> dict[str, int]:
        merged: dict[str, int] = {}
        for backend in self._all():
            for name, value in backend.stats().items():
                merged[name] = merged.get(name, 0) + value
        return merged


def _tasks_from(
    iterables: tuple[Iterable[Any], ...], star: bool
) -> tuple[Iterator[Any], int | None, bool]:
    """The tasks of a map call, their number if every iterable knows it, and whether they
    are unary (the items themselves: one iterable, no star) or ``(args, kwargs)`` pairs."""
    if not iterables:
        raise TypeError("map() needs at least one iterable of inputs")
    lengths = [len(it) if hasattr(it, "__len__") else None for it in iterables]  # type: ignore[arg-type]
    known = [n for n in lengths if n is not None]
    if len(known) == len(lengths) and len(set(known)) > 1:
        raise ValueError(
            f"the iterables have different lengths {known}; map() needs one item from each "
            "per call: trim them to the same length (or use zip() to truncate on purpose)"
        )
    total = known[0] if len(known) == len(lengths) else None
    if star:
        (iterable,) = iterables
        return ((_star_args(item), _NO_KWARGS) for item in iterable), total, False
    if len(iterables) == 1:
        return iter(iterables[0]), total, True
    return ((args, _NO_KWARGS) for args in zip(*iterables, strict=True)), total, False


def _star_args(item: object) -> tuple[Any, ...]:
    if isinstance(item, tuple):
        return item
    try:
        return tuple(item)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"starmap() needs an iterable of argument tuples; got an item of type "
            f"{type(item).__name__}: {item!r}. Use map() for one argument per call"
        ) from None


#: ``_peek``'s answer for an empty input (None is a valid input).
_NOTHING: Any = object()


def _peek(tasks: Iterator[Any]) -> tuple[Any, Iterator[Any]]:
    """The first task (for checks before work starts) and an iterator that still has it."""
    try:
        first = next(tasks)
    except StopIteration:
        return _NOTHING, iter(())
    return first, itertools.chain((first,), tasks)
