"""What runs inside a Dask worker: one poolwise chunk per Dask task.

    parent (cluster.py) ──client.submit(run_chunk, Spec, fn bytes, task bytes)──> Dask
    Dask worker thread: run_chunk
        initializer, once per worker process and pool (remembered, failure included)
        function, unpickled once per worker process (cached by the pool's token)
        untimed chunk: run_tasks right here, in Dask's thread
        timed chunk:   run_timed_tasks in a thread of our own, watched by this process's
                       watchdog; at a deadline the task gets StopTask (it stops at its
                       next bytecode) and the Dask task returns at once, saying where to
                       resume, while a task stuck in C finishes in the abandoned thread
    <──── bytes: every outcome of the tasks it ran, pickled here (one per Dask task)

Outcomes are pickled in the worker, not by Dask, so a result that cannot travel is that
task's ``NotPicklable`` instead of a failed Dask task that loses the whole chunk.

Runs in Dask workers: imports the standard library, ``transport``, ``errors`` and sibling
helpers only (never ``distributed``: the worker has it, the parent may not have loaded it).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from ...errors import NotPicklable, TaskTimeout
from ...transport import ExceptionPayload, dumps, loads, pack_exception, type_name
from ..base import Chunk
from .interrupt import StopTask, TaskWatch, Watchdog, raise_in_thread, run_timed_tasks
from .results import call_unless_unsent
from .run import run_tasks

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Outcome", "Spec", "run_chunk"]

#: Functions a worker process keeps unpickled (least recently used dropped first).
FUNCTIONS_KEPT = 64
#: Pools whose initializer outcome a worker process remembers (a long-lived worker serves
#: many pools; each remembers a few bytes).
POOLS_REMEMBERED = 1024


class Spec(NamedTuple):
    """What a Dask task needs to know about its chunk besides the pickled bytes."""

    #: The pool backend's id: initializers and functions are remembered per pool.
    pool: str
    #: The function's token in that pool (its bytes are unpickled once per worker).
    token: int
    #: Run ``chunk.tasks[start:]`` (above 0: the rest of a chunk after a timeout).
    start: int
    #: How many tasks the chunk holds (known even when its bytes will not unpickle).
    size: int
    #: Input index of ``tasks[0]``, or -1 for a lone ``submit``.
    first_index: int
    unary: bool
    #: Whether some tasks are ``Unsent`` markers (arguments that did not pickle).
    has_unsent: bool
    #: Seconds each task may run, or None.
    timeout: float | None


class Outcome(NamedTuple):
    """What a Dask task sends back (pickled by ``run_chunk``)."""

    #: Outcomes of ``tasks[start:start + len(values)]``.
    start: int
    values: list[Any]
    #: Position (relative to ``start``) -> the exception that task raised, packed.
    errors: dict[int, ExceptionPayload]
    seconds: float
    cpu_seconds: float
    #: Where the parent must resume the chunk (a task timed out and the Dask task returned
    #: at once), or None when every task from ``start`` has its outcome.
    resume_at: int | None
    #: Tasks stopped by their timeout here.
    timed_out: int
    #: The pool's initializer raised in this worker: no task ran; the packed exception.
    init_failed: ExceptionPayload | None = None


# -- per worker process state ----------------------------------------------------------------

_lock = threading.Lock()
_functions: collections.OrderedDict[tuple[str, int], Callable[..., Any]] = collections.OrderedDict()
#: Pool id -> None (its initializer ran) or the packed exception it raised.
_initialized: collections.OrderedDict[str, ExceptionPayload | None] = collections.OrderedDict()
_init_lock = threading.Lock()
_watchdog: Watchdog | None = None
#: The timed runs in progress, by their watch (for the watchdog's callback).
_runs: dict[TaskWatch, _TimedRun] = {}


def run_chunk(
    spec: Spec, fn_bytes: bytes, init: bytes | None, data: bytes, buffers: list[bytearray]
) -> bytes:
    """The body of one Dask task: run a chunk's tasks, return all their outcomes pickled."""
    if init is not None:
        failed = _initialize(spec.pool, init)
        if failed is not None:
            return dumps(Outcome(spec.start, [], {}, 0.0, 0.0, None, 0, failed))
    shared = sys.modules.get("poolwise.shared")
    if shared is not None:  # some task received a Shared: unmap those the parent freed
        shared.forget_unlinked()
    results = _Results(spec.start)
    try:
        fn = _function(spec.pool, spec.token, fn_bytes)
    except Exception as exc:  # noqa: BLE001 - the chunk's outcome, whatever it is
        # e.g. a module the worker cannot import: every task of the chunk gets that
        return _unloadable(spec, results, "fn", exc)
    try:
        tasks: Sequence[Any] = loads(data, [memoryview(b) for b in buffers] or None)
    except Exception as exc:  # noqa: BLE001 - the chunk's outcome, whatever it is
        # An argument whose unpickling raises here: every task of the chunk gets that as
        # its outcome (which one is at fault cannot be told from one pickle).
        where = "the inputs"
        if spec.first_index >= 0:
            first, last = spec.first_index + spec.start, spec.first_index + spec.size - 1
            where = f"inputs #{first} to #{last}"
        return _unloadable(spec, results, where, exc)
    if spec.has_unsent:
        fn = call_unless_unsent(fn)
    if spec.timeout is None:
        run_tasks(fn, tasks, results.flush, start=spec.start, unary=spec.unary)
        return results.packed(spec.first_index, None, 0)
    index = None if spec.first_index < 0 else spec.first_index
    chunk = Chunk(fn, tasks, index, _NoSink(), unary=spec.unary, timeout=spec.timeout)
    run = _TimedRun(chunk, spec.start, results)
    run.run()
    return results.packed(spec.first_index, run.resume_at, run.timed_out)


def _unloadable(spec: Spec, results: _Results, where: str, exc: Exception) -> bytes:
    """Every task of the chunk gets ``NotPicklable``: ``where`` would not unpickle here."""
    error = NotPicklable(where, type(exc).__qualname__, f"unpickling in the Dask worker: {exc}")
    count = spec.size - spec.start
    results.flush(spec.start, [None] * count, dict.fromkeys(range(count), error), 0.0, 0.0)
    return results.packed(spec.first_index, None, 0)


def _initialize(pool: str, init: bytes) -> ExceptionPayload | None:
    """Run the pool's initializer once in this process; its failure is remembered."""
    with _init_lock:  # other chunks of this pool wait here: the initializer runs first
        if pool in _initialized:
            return _initialized[pool]
        outcome: ExceptionPayload | None = None
        try:
            initializer, initargs = loads(init)
            initializer(*initargs)
        except BaseException as exc:  # noqa: BLE001 - becomes the pool's InitializerFailed
            outcome = pack_exception(exc)
        _initialized[pool] = outcome
        while len(_initialized) > POOLS_REMEMBERED:
            _initialized.popitem(last=False)
        return outcome


def _function(pool: str, token: int, fn_bytes: bytes) -> Callable[..., Any]:
    key = (pool, token)
    with _lock:
        known = _functions.get(key)
        if known is not None:
            _functions.move_to_end(key)
            return known
    fn: Callable[..., Any] = loads(fn_bytes)
    with _lock:
        _functions[key] = fn
        while len(_functions) > FUNCTIONS_KEPT:
            _functions.popitem(last=False)
    return fn


class _NoSink:
    """The worker's copy of a chunk delivers through ``_Results``, never a sink."""

    def begin(self, chunk: Chunk) -> bool:
        return True

    def cancel(self, chunk: Chunk) -> None:
        raise AssertionError("a worker never cancels a chunk")

    def deliver(self, *args: object) -> None:
        raise AssertionError("a worker delivers through _Results")


class _Results:
    """The outcomes of one Dask task, gathered from ``run_tasks``' flushes (in order)."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.values: list[Any] = []
        self.errors: dict[int, BaseException] = {}
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def flush(
        self,
        offset: int,
        values: list[Any],
        errors: dict[int, BaseException] | None,
        seconds: float,
        cpu_seconds: float,
    ) -> None:
        base = offset - self.start
        if errors:
            for position, error in errors.items():
                self.errors[base + position] = error
        self.values.extend(values)
        self.seconds += seconds
        self.cpu_seconds += cpu_seconds

    def packed(self, first_index: int, resume_at: int | None, timed_out: int) -> bytes:
        """Everything, pickled; a result that will not pickle becomes its task's
        ``NotPicklable`` (the others still travel)."""
        errors = {position: pack_exception(exc) for position, exc in self.errors.items()}
        outcome = Outcome(
            self.start,
            self.values,
            errors,
            self.seconds,
            self.cpu_seconds,
            resume_at,
            timed_out,
        )
        try:
            return dumps(outcome)
        except Exception:  # noqa: BLE001 - found out below, value by value
            pass
        for position, value in enumerate(self.values):
            if position in errors:
                continue
            try:
                dumps(value)
            except Exception as exc:  # noqa: BLE001 - that task's NotPicklable
                index = self.start + position
                where = "result" if first_index < 0 else f"result of task #{first_index + index}"
                error = NotPicklable(where, type_name(value), f"{type(exc).__name__}: {exc}")
                errors[position] = pack_exception(error)
                self.values[position] = None
        return dumps(outcome._replace(errors=errors))


class _TimedRun:
    """A timed chunk run in a thread of its own while the Dask task's thread waits.

    The watchdog gives a task past its deadline ``TaskTimeout`` and raises ``StopTask``
    in our thread (never in one of Dask's), then lets the Dask task return with the
    outcomes so far: the parent sends the rest of the chunk as a new Dask task, so a task
    blocked in C never holds up the chunk's other tasks nor a Dask thread.
    """

    def __init__(self, chunk: Chunk, start: int, results: _Results) -> None:
        self.chunk = chunk
        self.start = start
        self.results = results
        self.finished = threading.Event()
        self.resume_at: int | None = None
        self.timed_out = 0

    def run(self) -> None:
        global _watchdog
        with _lock:
            if _watchdog is None:
                _watchdog = Watchdog(_on_timeout, "poolwise-dask-watchdog")
        thread = threading.Thread(target=self._work, name="poolwise-dask-task", daemon=True)
        thread.start()
        self.finished.wait()

    def _work(self) -> None:
        watch = TaskWatch(threading.get_ident())
        assert _watchdog is not None
        try:
            with _lock:
                _runs[watch] = self
            _watchdog.watch(watch)
            try:
                run_timed_tasks(self.chunk, self.start, watch, self.results.flush)
            finally:
                _watchdog.unwatch(watch)
                with _lock:
                    _runs.pop(watch, None)
        except StopTask:
            pass  # given up on at a deadline: the outcomes were handed over already
        finally:
            self.finished.set()


def _on_timeout(watch: TaskWatch) -> None:
    """Called by the watchdog, under ``watch.lock``, for a task past its deadline."""
    with _lock:
        run = _runs.get(watch)
    chunk = watch.chunk
    if run is None or chunk is None or chunk.timeout is None:
        return
    position = watch.position
    watch.abandoned = True  # the runner delivers nothing more and returns
    watch.flush_held(run.results.flush)  # the outcomes before it, in order
    error = TaskTimeout(chunk.timeout, chunk.index_of(position))
    run.results.flush(position, [None], {0: error}, time.monotonic() - watch.started, 0.0)
    run.timed_out += 1
    if position + 1 < len(chunk):
        run.resume_at = position + 1
    raise_in_thread(watch.ident, StopTask)
    run.finished.set()
