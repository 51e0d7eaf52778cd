"""One map run: feeds chunks to a backend, yields outcomes in input order or as they come.

A map run is driven by the caller's own thread, inside the iterator it returns::

    inputs ──islice──> Chunk ──backend.submit──> workers
                                                    │ deliver (any thread)
    caller <──yield in input order── buffer <── SimpleQueue

At most ``window`` chunks are in the workers' hands, and an ordered run holds at most a
window's worth of results behind one slow task, so ``imap`` works on an endless generator
with flat memory.
"""

from __future__ import annotations

import itertools
import queue
import time
from typing import TYPE_CHECKING, Any, Protocol

from .backends.base import Chunk, Outcomes
from .errors import PoolClosed, TaskTimeout
from .futures import WAIT_SLICE
from .retrying import RetryPolicy
from .stats import Measured

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .backends.base import Backend
    from .chunking import Chunker
    from .progress import Bar
    from .stats import PoolStats

__all__ = ["MAX_READ_AHEAD", "READ_AHEAD_CHUNKS_PER_WORKER", "WINDOW_PER_WORKER", "MapRun", "Run"]

#: Chunks a map run keeps between "taken from the inputs" and "yielded", per worker: two in
#: the workers' hands, two to absorb a slow task before the others wait (a guess).
WINDOW_PER_WORKER = 4
#: Inputs a run may hold between "taken from the iterator" and "handed to the caller", by
#: default: about this many chunks per worker (two: one running, one queued behind it)...
READ_AHEAD_CHUNKS_PER_WORKER = 2
#: ...and never more than this many inputs, whatever the task size, unless the caller asks
#: with ``buffersize=`` (a guess: enough to keep 64 workers busy on 1 ms tasks, small
#: enough that breaking out of an ``imap`` over a queue or a socket loses little; #13).
MAX_READ_AHEAD = 10_000
#: Seconds a run waits for its first task's outcome before it sends one task to every
#: worker: tiny tasks answer well within it (a warm pool's round trip is ~0.1-1 ms) and are
#: then sized before they spread over 64 workers in 64 one-task chunks; slow tasks and a
#: pool still starting lose only this (a guess).
PROBE_WAIT = 0.005
#: Chunks in flight while only single tasks were measured (``MapRun._probing_limit``):
#: enough that a small pool does not wait a round trip for a better measurement, few
#: enough that 64 workers do not take every input in chunks sized from a bad one.
UNSETTLED_CHUNKS = 8


class Run(Protocol):
    """What a map call returns before it is iterated: a ``MapRun`` on one mode, or an
    ``AutoRun`` that probes and then hands the rest to one."""

    stats: PoolStats

    def __iter__(self) -> Iterator[Any]: ...

    def collect(self) -> list[Any]:
        """Every result, in order, as a list."""
        ...

    def batches(self) -> Iterator[list[Any]]:
        """The results in lists as they arrive, reading ahead as ``__iter__`` does (the
        CLI writes a list, then flushes)."""
        ...


_Delivery = tuple[Chunk, Outcomes]
#: Outcomes of consecutive inputs: first input index, values, errors by position.
_Run = tuple[int, list[Any], "dict[int, BaseException] | None"]


class MapRun:
    """One call of map/imap/imap_unordered: feeds chunks and yields outcomes."""

    def __init__(
        self,
        backend: Backend,
        fn: Callable[..., Any],
        tasks: Iterator[Any],
        chunker: Chunker,
        stats: PoolStats,
        *,
        ordered: bool,
        unary: bool = False,
        timeout: float | None = None,
        policy: RetryPolicy | None = None,
        progress: Callable[[], Bar | None] | None = None,
        first_index: int = 0,
        return_exceptions: bool = False,
        read_ahead: int | None = None,
    ) -> None:
        self._backend = backend
        self._mode = backend.mode
        self._fn = fn
        self._tasks = tasks
        self._chunker = chunker
        self.stats = stats
        self._ordered = ordered
        self._unary = unary
        self._timeout = timeout
        self._policy = policy or RetryPolicy(0, None)
        self._runs: dict[int, int] = {}  # input index -> runs so far, for tasks that failed
        #: Makes the progress bar when the run starts (not before: imap may never run).
        self._make_bar = progress
        self._bar: Bar | None = None
        self._first_index = first_index
        #: Yield a failed task's exception in its place instead of raising it.
        self._return_exceptions = return_exceptions
        #: The caller's ``buffersize``: most inputs taken and not yet handed over (None:
        #: READ_AHEAD_CHUNKS_PER_WORKER chunks per worker, at most MAX_READ_AHEAD).
        self._read_ahead = read_ahead
        #: False when the caller collects every result at once (``map``): nothing is
        #: gained by reading behind it, and a slow task would only idle the others.
        self.lazy = True
        self._deliveries: queue.SimpleQueue[_Delivery] = queue.SimpleQueue()
        self._abandoned = False
        self._window = 1 if backend.runs_on_submit else WINDOW_PER_WORKER * backend.workers
        #: What this run's tasks took, from the workers' own clocks.
        self.measured = Measured()
        #: Inputs taken from ``tasks`` so far.
        self.taken = 0
        self._taking = True
        #: Undoes the native thread limit held while this run's tasks run (threads).
        self._release_native: Callable[[], None] | None = None

    # -- ChunkSink: called from worker-facing threads --------------------------------

    def begin(self, chunk: Chunk) -> bool:
        return not self._abandoned

    def cancel(self, chunk: Chunk) -> None:
        count = len(chunk) - chunk.delivered
        self._deliveries.put((chunk, Outcomes.failed(chunk.delivered, count, _closed)))

    def deliver(self, chunk: Chunk, outcomes: Outcomes) -> None:
        self._deliveries.put((chunk, outcomes))

    # -- the caller's side ---------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        try:
            for batch, error in self._batches():
                yield from batch
                if error is not None:
                    raise error
        finally:
            # Chunks not yet taken by a worker are skipped (begin() says no). The caller
            # left early (break, an exception, Ctrl-C), so nobody wants their outcomes.
            self._finish()

    def collect(self) -> list[Any]:
        """Every result, in order, as a list (``map``): no per-item generator hop."""
        self.lazy = False
        results: list[Any] = []
        for batch in self.batches():
            results.extend(batch)
        return results

    def batches(self) -> Iterator[list[Any]]:
        """The results in lists as they arrive (in input order if ordered); the first
        failing task's exception is raised after the results before it."""
        try:
            for batch, error in self._batches():
                if batch:
                    yield batch
                if error is not None:
                    raise error
        finally:
            self._finish()

    def stop_taking(self) -> None:
        """Take no more inputs: the run ends once what it took has its outcomes; the rest
        stay in the input iterator (``mode="auto"`` moves them to another mode)."""
        self._taking = False

    def _finish(self) -> None:
        self._abandoned = True
        if self._release_native is not None:
            release, self._release_native = self._release_native, None
            release()
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()

    def _batches(self) -> Iterator[tuple[list[Any], BaseException | None]]:
        """Feed chunks; yield runs of results in order, each with the error that ends it."""
        if self._make_bar is not None:
            self._bar = self._make_bar()
        self._release_native = self._backend.hold_native_threads()
        ordered = self._ordered
        # ordered: deliveries that arrived ahead of their turn, by first input index
        waiting: dict[int, tuple[list[Any], dict[int, BaseException] | None]] = {}
        receiving = 0  # chunks whose outcomes have not all arrived
        next_index = self._first_index  # input index of the next task taken from the inputs
        next_yield = self._first_index  # ordered: input index to yield next
        handed = 0  # results (and errors) the caller has taken from this run
        exhausted = False
        input_error: Exception | None = None  # what the input iterator raised
        split = _in_place if self._return_exceptions else _split
        probe_until = time.monotonic() + PROBE_WAIT
        while True:
            while not exhausted and receiving < self._window and self._taking:
                if receiving >= self._probing_limit(probe_until):
                    break
                size = self._chunker.next_size()
                # Ordered imap: results held for one slow task may not grow past a window
                # of chunks of the current size (the size grows once tasks prove tiny).
                # map() holds every result anyway: a slow task must not idle the others.
                if ordered and self.lazy and next_index - next_yield >= self._window * size:
                    break
                # Read ahead of the caller by a bounded number of inputs (#13): an imap
                # the caller leaves has taken at most that many it will never see.
                if self.lazy:
                    ahead = next_index - self._first_index - handed
                    budget = self._read_ahead_limit(size) - ahead
                    if budget <= 0:
                        break
                    size = min(size, budget)
                tasks: list[Any] = []
                try:
                    # extend() keeps the inputs read before the iterator raised
                    tasks.extend(itertools.islice(self._tasks, size))
                except Exception as exc:  # noqa: BLE001 - raised after the results before it
                    input_error, exhausted = exc, True
                if not tasks:
                    exhausted = True
                    break
                chunk = Chunk(
                    self._fn,
                    tasks,
                    next_index,
                    self,
                    unary=self._unary,
                    timeout=self._timeout,
                    durable=bool(self._policy),
                )
                next_index += len(tasks)
                self.taken += len(tasks)
                self._chunker.took(len(tasks))
                receiving += 1
                self.stats.add_submitted(len(tasks))
                self.stats.set_running(self._mode, self._backend.workers, size, self._chunker)
                self._backend.submit(chunk)
            if receiving == 0 and not waiting:
                if input_error is not None:
                    # as the builtin map: every input read before the error has its result
                    yield [], input_error
                return
            probing = (
                not exhausted
                and not self._chunker.sized
                and receiving < self._backend.workers
                and time.monotonic() < probe_until
            )
            delivery = self._next_delivery(probe_until if probing else None)
            if delivery is None:
                continue  # PROBE_WAIT passed: the first task is not tiny
            chunk, outcomes = delivery
            offset, values, errors = outcomes.offset, outcomes.values, outcomes.errors
            seconds, cpu = outcomes.seconds, outcomes.cpu_seconds
            if offset + len(values) >= len(chunk):
                receiving -= 1
            first = chunk.first_index
            assert first is not None
            runs = [(first + offset, values, errors)]
            if errors and self._policy:
                runs, retried = self._retry(chunk, offset, values, errors)
                receiving += retried
            for _, run_values, run_errors in runs:
                self._record(len(run_values), run_errors, seconds, cpu)
                seconds = cpu = 0.0  # counted once per delivery
            if not ordered:
                for _, run_values, run_errors in runs:
                    yield split(run_values, run_errors)
                    handed += len(run_values)
                continue
            for start, run_values, run_errors in runs:
                waiting[start] = (run_values, run_errors)
            while next_yield in waiting:
                values, errors = waiting.pop(next_yield)
                next_yield += len(values)
                yield split(values, errors)
                handed += len(values)

    def _read_ahead_limit(self, size: int) -> int:
        """Most inputs this run may hold that the caller has not taken yet."""
        if self._read_ahead is not None:
            return self._read_ahead
        workers = self._backend.workers
        return min(MAX_READ_AHEAD, max(workers, READ_AHEAD_CHUNKS_PER_WORKER * workers * size))

    def _probing_limit(self, probe_until: float) -> int:
        """Chunks in flight while task times are not known well enough to size chunks.

        Before any outcome: one task, then one per worker once ``probe_until`` has passed
        (those tasks are not tiny, so every worker should start). After outcomes of
        single tasks only, which overstate tiny tasks (``Chunker.settled``): a few chunks
        sized from them, whose outcomes tell, however many workers wait.
        """
        chunker = self._chunker
        if chunker.settled:
            return self._window
        if chunker.sized:
            return min(self._window, UNSETTLED_CHUNKS)
        if time.monotonic() >= probe_until:
            return self._backend.workers
        return 1

    def _next_delivery(self, until: float | None = None) -> _Delivery | None:
        """The next delivery; None if ``until`` (a ``time.monotonic()``) passes first."""
        # Wait in slices: a Ctrl-C that lands just before a blocking wait is otherwise only
        # seen when the wait ends (CPython checks signals between bytecodes).
        while True:
            wait = WAIT_SLICE if until is None else min(WAIT_SLICE, until - time.monotonic())
            try:
                return self._deliveries.get(timeout=max(wait, 0.0))
            except queue.Empty:
                if until is not None and time.monotonic() >= until:
                    return None

    def _retry(
        self, chunk: Chunk, offset: int, values: list[Any], errors: dict[int, BaseException]
    ) -> tuple[list[_Run], int]:
        """Re-submit the failed tasks the policy wants again, each alone in a chunk.

        Returns the outcomes that stand, as contiguous runs keyed by input index (a
        retried task leaves a hole that its new chunk's delivery fills), and how many
        chunks were submitted.
        """
        first = chunk.first_index
        assert first is not None
        runs: list[_Run] = []
        run_start = first + offset
        run_values: list[Any] = []
        run_errors: dict[int, BaseException] = {}
        retried = 0
        for position, value in enumerate(values):
            index = first + offset + position
            error = errors.get(position)
            runs_so_far = self._runs.get(index, 0) + 1
            if error is not None and self._policy.wants(error, runs_so_far):
                self._runs[index] = runs_so_far
                if run_values:
                    runs.append((run_start, run_values, run_errors or None))
                run_start, run_values, run_errors = index + 1, [], {}
                task = [chunk.tasks[offset + position]]
                self.stats.add_retry(index)
                self._backend.submit(
                    Chunk(chunk.fn, task, index, self, unary=chunk.unary, timeout=chunk.timeout)
                )
                retried += 1
                continue
            self._runs.pop(index, None)
            if error is not None:
                run_errors[len(run_values)] = error
            run_values.append(value)
        if run_values:
            runs.append((run_start, run_values, run_errors or None))
        return runs, retried

    def _record(
        self, count: int, errors: dict[int, BaseException] | None, seconds: float, cpu: float
    ) -> None:
        failed = timed_out = 0
        if errors:
            failed = len(errors)
            timed_out = sum(isinstance(error, TaskTimeout) for error in errors.values())
        if seconds > 0:
            self._chunker.observe(count, seconds)
            self.measured.add(count, seconds, cpu)
        self.stats.add_outcomes(count, failed, seconds, cpu, timed_out)
        if self._bar is not None:
            self._bar.advance(count, failed)


def _in_place(values: list[Any], errors: dict[int, BaseException] | None) -> tuple[list[Any], None]:
    """Every outcome in order, a failed task's exception in its place."""
    if errors:
        for position, error in errors.items():
            values[position] = error
    return values, None


def _split(
    values: list[Any], errors: dict[int, BaseException] | None
) -> tuple[list[Any], BaseException | None]:
    """The results up to the first error, and that error (None if all succeeded)."""
    if not errors:
        return values, None
    first = min(errors)
    return values[:first], errors[first]


def _closed(_index: int) -> BaseException:
    return PoolClosed()
