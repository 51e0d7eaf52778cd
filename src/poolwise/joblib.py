"""poolwise as a joblib backend, so scikit-learn's ``n_jobs=`` runs on a poolwise pool.

    import joblib
    import poolwise.joblib  # registers the "poolwise" backend

    with joblib.parallel_config(backend="poolwise", mode="auto", timeout=600):
        GridSearchCV(model, grid, n_jobs=2).fit(X, y)

Each joblib batch is one ``Pool.submit``; ``n_jobs`` is the number of workers (negative as
joblib counts: -1 all CPUs). Options go to the pool: ``mode`` (``"auto"`` measures the
first batches: ``joblib_auto.py``), ``timeout`` and ``retries`` (each task its own batch,
so both count per task), ``retry_on``, ``progress``, ``start_method`` and
``native_threads``. A nested joblib call inside a task gets the CPUs left per worker (one
each: it runs serially), never a second full-width pool. Requires ``poolwise[joblib]``;
``import poolwise`` alone never imports joblib.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import joblib
from joblib._parallel_backends import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
    ThreadingBackend,
)

from . import options as _options
from .joblib_auto import (
    AutoChoice,
    batch_key,
    batch_length,
    batch_modules,
    import_modules,
)
from .native_threads import native_width, process_limit
from .pool import Pool
from .progress import progress_bar
from .system import cpus

if TYPE_CHECKING:
    from collections.abc import Callable

    from .decide import Decision
    from .native_threads import NativeThreads
    from .progress import Bar, ProgressOption
    from .retrying import RetryOn

__all__ = ["BACKEND_NAME", "PoolwiseBackend", "register"]

#: The name to give joblib: ``parallel_config(backend="poolwise")``.
BACKEND_NAME = "poolwise"

#: Modes a joblib batch runs on here (tested). ``async`` needs ``async def`` functions;
#: Dask has its own joblib backend; subinterpreters cannot import most of what joblib
#: batches call (NumPy, scikit-learn).
_MODES = ("auto", "threads", "processes", "serial")


class NestedThreads(ThreadingBackend):  # type: ignore[misc]
    """joblib's threading backend with a ceiling: a nested ``Parallel(n_jobs=-1)`` inside a
    task gets the CPUs left per outer worker, not the whole machine again."""

    def __init__(self, ceiling: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ceiling = ceiling

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        return min(self.ceiling, int(super().effective_n_jobs(n_jobs)))


class PoolwiseBackend(AutoBatchingMixin, ParallelBackendBase):  # type: ignore[misc]
    """Runs joblib's batches on a poolwise ``Pool`` (kept across the ``Parallel`` calls of
    one ``parallel_config`` block, as loky keeps its executor)."""

    supports_retrieve_callback = True
    supports_inner_max_num_threads = True

    def __init__(
        self,
        mode: str = "auto",
        *,
        timeout: float | None = None,
        retries: int = 0,
        retry_on: RetryOn = None,
        progress: ProgressOption = False,
        start_method: str | None = None,
        native_threads: NativeThreads = "auto",
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        if unknown:
            raise TypeError(
                f"the poolwise joblib backend does not take {sorted(unknown)}; it takes mode, "
                "timeout, retries, retry_on, progress, start_method and native_threads"
            )
        if mode not in _MODES:
            raise ValueError(
                f"mode={mode!r} cannot run joblib batches; use one of "
                f"{', '.join(map(repr, _MODES))} (for a Dask cluster, Dask's own joblib "
                "backend: parallel_config(backend='dask'))"
            )
        self._native: NativeThreads = native_threads
        self._pool_options: dict[str, Any] = {
            "timeout": timeout,
            "retries": retries,
            "retry_on": retry_on,
            "start_method": start_method if mode in ("processes", "auto") else None,
            "native_threads": native_threads,
        }
        _options.check_pool(  # every argument checked now, before any batch runs
            mode,
            None,
            **self._pool_options,
            max_tasks_per_worker=None,
            initializer=None,
            initargs=(),
            progress=progress,
            address=None,
        )
        self.mode = mode
        self._progress = progress
        self._pools: dict[tuple[str, int], Pool] = {}
        self._n_jobs = 1
        self._run_mode = mode
        self._choice: AutoChoice | None = None
        #: auto: what each function's batches were measured to need, for later calls.
        self._decided: dict[tuple[str, ...], Decision] = {}
        self._bar: Bar | None = None
        self._release_native: Callable[[], None] | None = None
        self._pending: set[Future[Any]] = set()
        #: auto chose processes: each process pool's workers importing what the batches
        #: need, while threads go on (by n_jobs; kept with the pools across calls).
        self._warming: dict[int, list[Future[Any]]] = {}

    # joblib reads these to pick a backend for require="sharedmem" and prefer=
    @property
    def supports_sharedmem(self) -> bool:
        return self.mode in ("auto", "threads", "serial")

    @property
    def uses_threads(self) -> bool:
        return self.mode in ("threads", "serial")

    @property
    def decision(self) -> Decision | None:
        """mode="auto": where the last call's later batches ran and why (a ``Decision``
        with ``reasons``), once decided; None before, or for a fixed mode."""
        return None if self._choice is None else self._choice.decision

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(cpus() + 1 + n_jobs, 1)
        return n_jobs

    def configure(
        self,
        n_jobs: int | None = 1,
        parallel: Any = None,
        prefer: str | None = None,
        require: str | None = None,
        **_memmapping_options: Any,  # loky's (max_nbytes, mmap_mode...): no use here
    ) -> int:
        workers = self.effective_n_jobs(n_jobs)
        if workers == 1 or self.mode == "serial":
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self.parallel = parallel
        self._n_jobs = workers
        mode = self.mode
        if require == "sharedmem" or (mode == "auto" and prefer == "threads"):
            mode = "threads"  # the tasks share objects, or the caller knows they wait
        elif mode == "auto" and prefer == "processes":
            mode = "processes"
        self._run_mode = mode
        self._choice = AutoChoice(workers) if mode == "auto" else None
        width = native_width(self._native_option(), workers, cpus())
        if mode in ("auto", "threads") and width is not None:
            self._release_native = process_limit().hold(width)
        return workers

    def _native_option(self) -> NativeThreads:
        inner = self.inner_max_num_threads
        return inner if inner is not None else self._native

    def _pool(self, mode: str) -> Pool:
        key = (mode, self._n_jobs)
        pool = self._pools.get(key)
        if pool is None:
            options = dict(self._pool_options)
            options["native_threads"] = self._native_option()
            if mode != "processes":
                options["start_method"] = None
            pool = self._pools[key] = Pool(mode, self._n_jobs, **options)  # type: ignore[arg-type]
        return pool

    def start_call(self) -> None:
        self._bar = progress_bar(self._progress, None, "joblib tasks")

    def stop_call(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()

    def compute_batch_size(self) -> int:
        # A timeout or a retry applies to one submit: with one task per batch, to one task.
        if self._pool_options["timeout"] is not None or self._pool_options["retries"]:
            return 1
        return int(super().compute_batch_size())

    def submit(self, func: Callable[[], Any], callback: Callable[..., Any] | None = None) -> Any:
        mode, batch = self._run_mode, func
        choice = self._choice
        if choice is not None:
            decided = choice.decision
            if decided is None and choice.fresh:  # a function measured in an earlier call
                decided = choice.decision = self._decided.get(batch_key(func))
            if decided is None:
                mode, batch = "threads", choice.measured(func)
            elif decided.mode == "processes" and not self._processes_ready(func):
                mode = "threads"  # the threads go on until the processes can take over
            else:
                mode = decided.mode
        try:
            future: Future[Any] = self._pool(mode).submit(batch)
        except Exception as exc:  # noqa: BLE001 - e.g. NotPicklable; joblib must hear it
            # Later batches are submitted from a callback thread, where an exception would
            # leave joblib waiting forever: a failed future makes it raise in the caller.
            future = Future()
            future.set_exception(exc)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        if self._bar is not None:
            bar, size = self._bar, batch_length(func)
            future.add_done_callback(
                lambda done: bar.advance(size, int(done.exception() is not None))
            )
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def _processes_ready(self, batch: Callable[[], Any]) -> bool:
        """Whether the process workers are up, with the batches' modules imported; starts
        them (and the imports) the first time it is asked."""
        warming = self._warming.get(self._n_jobs)
        if warming is None:
            pool, names = self._pool("processes"), batch_modules(batch)
            warming = [pool.submit(import_modules, names) for _ in range(self._n_jobs)]
            self._warming[self._n_jobs] = warming
        return all(future.done() for future in warming)

    def apply_async(
        self, func: Callable[[], Any], callback: Callable[..., Any] | None = None
    ) -> Any:
        return self.submit(func, callback)

    def retrieve_result_callback(self, future: Future[Any]) -> Any:
        return future.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """The first error: cancel what has not started, stop what runs (joblib raises the
        error; the other batches' outcomes are dropped)."""
        for future in list(self._pending):
            future.cancel()
        pools, self._pools = list(self._pools.values()), {}
        self._warming = {}
        for pool in pools:
            pool.terminate()
        self._end_call()
        if ensure_ready and self.parallel is not None:
            self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel)

    def terminate(self) -> None:
        """The end of a ``Parallel`` call: the pools stay for the next one, as long as this
        backend lives (the ``parallel_config`` block); forgetting the call breaks the
        reference cycle through it, so the pools stop when the block ends, not at a later
        garbage collection."""
        self._end_call()
        self.reset_batch_stats()
        self.parallel = None

    def _end_call(self) -> None:
        if self._choice is not None:
            self._choice.close()
            if self._choice.decision is not None and self._choice.sample_key is not None:
                self._decided[self._choice.sample_key] = self._choice.decision
        if self._release_native is not None:
            release, self._release_native = self._release_native, None
            release()

    def get_nested_backend(self) -> tuple[ParallelBackendBase, int | None]:
        """What a joblib call inside a task runs on: threads within the CPUs left per
        worker, serial when that is one (or below the first nesting level)."""
        level = (self.nesting_level or 0) + 1
        ceiling = max(1, cpus() // max(1, self._n_jobs))
        if level > 1 or ceiling == 1:
            return SequentialBackend(nesting_level=level), None
        return NestedThreads(ceiling, nesting_level=level), ceiling

    def close(self) -> None:
        """Stop every worker this backend started (also done when it is collected)."""
        self._end_call()
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def register(name: str = BACKEND_NAME) -> None:
    """Make ``name`` a joblib backend running on poolwise (done when this is imported)."""
    joblib.register_parallel_backend(name, PoolwiseBackend)


register()
