"""Pool: the policy layer. It decides what runs and when; a backend decides where.

Data flow of one ``pool.map(fn, inputs)``::

    Pool.map ──> RunOptions.from_call, shape_inputs  (options.py: checked before any work)
        │
        ├─ mode given ──> RunFactory.start(mode)  (runs.py) ──> MapRun  (maprun.py)
        └─ mode="auto" ─> AutoRun  (auto.py): probe (profiling.py) on serial, then threads;
                          decide (decide.py); RunFactory.start(chosen mode) ──> MapRun
    MapRun: inputs -> chunks sized by Chunker (chunking.py) -> backend.submit(chunk)
            outcomes <- chunk.deliver(...) from the backend, yielded in input order
    Pool.submit ──> a one-task Chunk whose outcome goes to a Future (futures.py)

The pool never touches a thread or a process; it hands chunks to its backends and reads
the outcomes they deliver.
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import TYPE_CHECKING, Literal, ParamSpec, TypeVar, Unpack, overload

from . import options as _options
from .async_maps import AsyncMaps
from .auto import AutoRun, FiguresByFunction, async_decision
from .backends.base import Chunk, is_async_callable
from .errors import PoolClosed
from .futures import FutureSink, PoolFuture
from .options import RunOptions, shape_inputs
from .progress import ProgressOption, progress_bar
from .report import Report, build_report
from .runs import Backends, RunFactory
from .stats import PoolStats
from .system import cpus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from concurrent.futures import Future
    from types import TracebackType

    from .backends.base import Backend
    from .maprun import Run
    from .native_threads import NativeThreads
    from .options import MapOptions, UnorderedOptions
    from .retrying import RetryOn

__all__ = ["Mode", "Pool"]

P = ParamSpec("P")
R = TypeVar("R")

Mode = Literal["auto", "serial", "threads", "processes", "interpreters", "async", "dask"]


class Pool(AsyncMaps):
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
            also writes plain progress lines when stderr is not one (a log, CI).
        address: the scheduler of a Dask cluster, for ``mode="dask"``.
        native_threads: BLAS/OpenMP threads per worker: ``"auto"`` (CPUs / workers, so
            workers x native threads never oversubscribe the CPUs), a number, or None to
            leave native thread pools alone. See ``poolwise.native_threads``.

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
        native_threads: NativeThreads = "auto",
    ) -> None:
        requested, self._defaults, worker_options = _options.check_pool(
            mode,
            workers,
            timeout=timeout,
            retries=retries,
            retry_on=retry_on,
            max_tasks_per_worker=max_tasks_per_worker,
            initializer=initializer,
            initargs=initargs,
            start_method=start_method,
            progress=progress,
            address=address,
            native_threads=native_threads,
        )
        self._mode: str = mode
        self._requested = requested
        self._backends = Backends(worker_options)
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
        self._measured = FiguresByFunction()
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
        _options.check_callable(fn)
        self._check_open()
        backend = self._backend
        if backend is None:  # auto: one call is too little to measure
            mode = "async" if is_async_callable(fn) else "threads"
            backend = self._backends.get(mode, self._requested)
        call = backend.adapt(fn, (args, kwargs))
        future: Future[R] = PoolFuture()
        self._stats.add_submitted(1)
        sink = FutureSink(future, self._stats, backend, self._defaults.policy)
        backend.submit(Chunk(call, [(args, kwargs)], None, sink, timeout=self._defaults.timeout))
        return future

    @overload
    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        report: Literal[False] = False,
        **options: Unpack[MapOptions],
    ) -> list[R]: ...

    @overload
    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        report: Literal[True],
        **options: Unpack[MapOptions],
    ) -> tuple[list[R], Report]: ...

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        report: bool = False,
        **options: Unpack[MapOptions],
    ) -> list[R] | tuple[list[R], Report]:
        """``fn`` over the inputs, like the builtin ``map``, as a list.

        Options (each overrides the pool's own for this call): ``timeout`` (seconds per
        task), ``chunksize`` (None: sized from measured task times), ``ordered`` (False:
        completion order), ``progress`` (True, ``"always"``), ``retries`` and ``retry_on``.
        The first failing task (in input order) raises its exception, with the worker's
        traceback as ``__cause__``. With ``report=True``, returns ``(results, report)``:
        the report covers this map only (``Pool.report()`` covers every run of the pool).
        """
        return self.collect(fn, iterables, self._defaults.from_call(report=report, **options))

    def imap(
        self, fn: Callable[..., R], *iterables: Iterable[object], **options: Unpack[MapOptions]
    ) -> Iterator[R]:
        """Lazily ``fn`` over the inputs, reading a bounded number of inputs ahead (options
        as for ``map``)."""
        return iter(self.start(fn, iterables, self._defaults.from_call(**options)))

    def imap_unordered(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        **options: Unpack[UnorderedOptions],
    ) -> Iterator[R]:
        """Like ``imap``, yielding each result as soon as it is ready."""
        checked = self._defaults.from_call(ordered=False, **options)
        return iter(self.start(fn, iterables, checked))

    @overload
    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        *,
        report: Literal[False] = False,
        **options: Unpack[MapOptions],
    ) -> list[R]: ...

    @overload
    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        *,
        report: Literal[True],
        **options: Unpack[MapOptions],
    ) -> tuple[list[R], Report]: ...

    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        *,
        report: bool = False,
        **options: Unpack[MapOptions],
    ) -> list[R] | tuple[list[R], Report]:
        """``fn(*args)`` for each ``args`` in ``iterable``, as a list (options and
        ``report`` as for ``map``)."""
        checked = self._defaults.from_call(report=report, **options)
        return self.collect(fn, (iterable,), checked, star=True)

    def istarmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[object]],
        **options: Unpack[MapOptions],
    ) -> Iterator[R]:
        """Lazily ``fn(*args)`` for each ``args`` in ``iterable`` (``starmap`` as ``imap``)."""
        return iter(self.start(fn, (iterable,), self._defaults.from_call(**options), star=True))

    def collect(
        self,
        fn: Callable[..., R],
        iterables: tuple[Iterable[object], ...],
        options: RunOptions,
        *,
        star: bool = False,
    ) -> list[R] | tuple[list[R], Report]:
        """Every result of ``start(...)`` as a list, with the run's report if
        ``options.report`` (map and starmap; ``poolwise.map`` on a warm pool)."""
        run = self.start(fn, iterables, options, star=star)
        results = run.collect()
        return (results, self._report(run.stats)) if options.report else results

    def start(
        self,
        fn: Callable[..., object],
        iterables: tuple[Iterable[object], ...],
        options: RunOptions,
        *,
        star: bool = False,
    ) -> Run:
        """A run of ``fn`` over the inputs with checked ``options``, not yet started: it
        works when iterated or collected. Every map-like call comes through here (the
        package's own callers too: the CLI, the warm pools, the Executor).
        """
        inputs = shape_inputs(fn, iterables, star)
        self._check_open()
        name = getattr(fn, "__name__", "tasks")
        show, total = options.progress, inputs.total
        make_bar = (lambda: progress_bar(show, total, name)) if show else None
        stats = PoolStats(parent=self._stats)
        runs = RunFactory(self._backends, fn, inputs, options, stats)
        mode = self._mode
        if self._backend is not None:
            self._backend.check_transport(fn, inputs.first)  # adapt() comes with the run
        elif is_async_callable(fn):  # auto on coroutines: async, nothing to measure
            mode = "async"
            stats.set_decisions([async_decision(name, self._requested)])
        else:
            return AutoRun(
                runs,
                inputs,
                cpus=self._cpus,
                workers=self._requested,
                make_bar=make_bar,
                known=self._measured.get(fn),
                remember=functools.partial(self._measured.put, fn),
            )
        return runs.start(
            mode,
            self._requested,
            inputs.tasks,
            total=total,
            chunksize=options.chunksize,
            progress=make_bar,
        )

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
        return build_report(
            stats, mode=self._mode, workers=self._workers, backend=self._backends.stats()
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<poolwise.Pool mode={self._mode!r} workers={self._workers} {state}>"
