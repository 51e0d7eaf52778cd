"""Stopping a task that runs in a thread: an asynchronous exception and a watchdog.

A thread cannot be killed, but CPython can raise an exception in it
(``PyThreadState_SetAsyncExc``): it lands at the thread's next bytecode, so a pure-Python
loop stops at once, and code blocked inside C (``time.sleep``, a socket read, a NumPy
call) is stopped when it returns to Python. ``StopTask`` derives from BaseException so a
task's own ``except Exception:`` does not swallow it.

One ``Watchdog`` thread per pool watches the tasks of timed chunks: each runner publishes
what it runs in a ``TaskWatch`` (under its lock), and the watchdog calls ``on_timeout``
(under the same lock) for a task still running past its deadline.

Both need of a chunk only what ``chunk.TimedChunk`` names: the parent's ``base.Chunk``
(threads, serial) and a worker's own ``chunk.WorkerChunk`` fit.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import TaskTimeout
from .run import FLUSH_SECONDS, Flush, Outcomes

if TYPE_CHECKING:
    from collections.abc import Callable

    from .chunk import TimedChunk


__all__ = [
    "UNBEGUN_POLL",
    "StopTask",
    "TaskWatch",
    "Watchdog",
    "clear_in_thread",
    "raise_in_thread",
    "run_timed_tasks",
]


class StopTask(BaseException):
    """Raised inside a worker thread whose task ran past its timeout."""


def raise_in_thread(ident: int, exc_type: type[BaseException]) -> bool:
    """Schedule ``exc_type`` in the thread ``ident``; False if no such thread."""
    # Imported here, not with the module: this module loads in every interpreter worker,
    # and two subinterpreters importing ctypes at once crashed free-threaded CPython 3.13.5;
    # interpreter workers load it first, one at a time (interpreters/running.py), so this
    # finds it loaded there.
    import ctypes

    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type)
    )
    return bool(done == 1)


def clear_in_thread(ident: int) -> None:
    """Drop an asynchronous exception scheduled for ``ident`` that has not landed yet."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


class TaskWatch:
    """What one runner (a worker thread, or the caller in serial mode) is running now.

    Every field changes under ``lock``; the runner sets ``running`` around each task and
    the watchdog acts only while it is set, so a task gets exactly one outcome.
    """

    __slots__ = (
        "abandoned",
        "chunk",
        "cpu_mark",
        "errors",
        "fired",
        "flushed_at",
        "ident",
        "in_chunk",
        "lock",
        "offset",
        "position",
        "running",
        "seconds",
        "started",
        "terminated",
        "values",
    )

    def __init__(self, ident: int) -> None:
        self.lock = threading.Lock()
        self.ident = ident
        self.chunk: TimedChunk | None = None
        self.position = 0
        self.started = 0.0
        self.running = False
        #: Running an untimed chunk (terminate() stops such a thread too).
        self.in_chunk = False
        #: The watchdog fired for the task at ``position``.
        self.fired = False
        #: The runner was given up on (threads): it must deliver nothing more and exit.
        self.abandoned = False
        #: Given up on by terminate(): its chunk's tasks without an outcome get PoolClosed.
        self.terminated = False
        # Outcomes of chunk.tasks[offset:offset + len(values)], not delivered yet.
        self.offset = 0
        self.values: list[Any] = []
        self.errors: dict[int, BaseException] | None = None
        self.seconds = 0.0
        self.flushed_at = 0.0
        #: The runner thread's CPU clock at its last flush (read only in that thread).
        self.cpu_mark = 0.0

    # The methods below are called with ``lock`` held.

    def hold_from(self, offset: int) -> None:
        """Start holding outcomes from ``offset`` of the current chunk."""
        self.offset, self.values, self.errors, self.seconds = offset, [], None, 0.0
        self.flushed_at = time.perf_counter()

    def flush_held(self, flush: Flush, *, in_runner: bool = False) -> None:
        """Deliver the outcomes held so far (in order: nothing else delivers meanwhile).

        Only the runner's own thread can read its CPU clock; other callers (the watchdog)
        deliver CPU time 0 and leave it to the runner's next flush.
        """
        if self.values:
            held = Outcomes(self.offset, self.values, self.errors, self.seconds)
            if in_runner:
                now = time.thread_time()
                held.cpu_seconds, self.cpu_mark = now - self.cpu_mark, now
            self.hold_from(held.offset + len(held.values))
            flush(held)

    def settle(
        self,
        value: object,
        error: BaseException | None,
        began: float,
        last: bool,
        flush: Flush,
    ) -> bool:
        """Record the outcome of the task at ``position``; False if the runner must stop."""
        self.running = False
        if self.fired:  # it may not have landed yet: make sure it never does
            clear_in_thread(self.ident)
            error = StopTask()
        if self.abandoned:
            return False
        chunk = self.chunk
        assert chunk is not None
        if isinstance(error, StopTask):
            assert chunk.timeout is not None
            value, error = None, TaskTimeout(chunk.timeout, chunk.index_of(self.position))
        if error is not None:
            if self.errors is None:
                self.errors = {}
            self.errors[len(self.values)] = error
        self.values.append(value)
        now = time.perf_counter()
        self.seconds += now - began
        if last or error is not None or now - self.flushed_at >= FLUSH_SECONDS:
            self.flush_held(flush, in_runner=True)
        return True

    def is_abandoned(self) -> bool:
        # A method, not the attribute: the watchdog sets it from another thread.
        return self.abandoned

    def deadline(self) -> float | None:
        chunk = self.chunk
        if not self.running or chunk is None or chunk.timeout is None:
            return None
        return self.started + chunk.timeout


#: Seconds between the watchdog's looks at a runner watched before it began its chunk.
UNBEGUN_POLL = 0.005


class Watchdog:
    """A thread that calls ``on_timeout(watch)`` for tasks running past their deadline."""

    def __init__(self, on_timeout: Callable[[TaskWatch], None], name: str) -> None:
        self._on_timeout = on_timeout
        self._watches: set[TaskWatch] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def watch(self, watch: TaskWatch) -> None:
        with self._cond:
            self._watches.add(watch)
            self._cond.notify()

    def unwatch(self, watch: TaskWatch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                self._cond.wait(self._check(time.monotonic()))

    def _check(self, now: float) -> float | None:
        """Fire what is due; seconds until something could next be due (None: nothing)."""
        wait: float | None = None
        for watch in list(self._watches):
            chunk = watch.chunk
            if chunk is None:
                # Watched before its runner began the chunk, whose start tells no one: look
                # again soon, or a look made first would sleep through its deadline (seen
                # without a GIL, where the two threads truly race).
                wait = UNBEGUN_POLL if wait is None else min(wait, UNBEGUN_POLL)
                continue
            if chunk.timeout is None:
                continue
            # A task that starts after this look has a deadline >= now + its timeout.
            wait = chunk.timeout if wait is None else min(wait, chunk.timeout)
            deadline = watch.deadline()
            if deadline is None:
                continue
            if now < deadline:
                wait = min(wait, deadline - now)
                continue
            with watch.lock:
                if watch.running and not watch.fired and now >= watch.started + chunk.timeout:
                    watch.fired = True
                    self._on_timeout(watch)
        return wait


def run_timed_tasks(
    chunk: TimedChunk,
    start: int,
    watch: TaskWatch,
    flush: Flush,
    *,
    passthrough: tuple[type[BaseException], ...] = (),
) -> None:
    """Run ``chunk.tasks[start:]`` under ``watch``, flushing outcomes every FLUSH_SECONDS.

    Outcomes wait in the watch (under its lock) until flushed, so the watchdog can flush
    them, in order, before it delivers a timeout itself. A task the watchdog fired for
    gets ``TaskTimeout``; a runner the watchdog abandoned (threads: it delivered the
    timeout and requeued the rest) returns at once and delivers nothing more.
    """
    fn, tasks, unary = chunk.fn, chunk.tasks, chunk.unary
    last = len(tasks) - 1
    with watch.lock:
        watch.chunk = chunk
        watch.hold_from(start)
        watch.cpu_mark = time.thread_time()
    for position in range(start, last + 1):
        with watch.lock:
            if watch.is_abandoned():
                return
            watch.position = position
            watch.fired = False
            watch.started = time.monotonic()
            watch.running = True
        began = time.perf_counter()
        value: object = None
        error: BaseException | None = None
        try:
            try:
                value = fn(tasks[position]) if unary else _call(fn, tasks[position])
            except StopTask:
                error = StopTask()
            except passthrough:
                with watch.lock:
                    watch.running = False
                    watch.flush_held(flush, in_runner=True)
                raise
            except BaseException as exc:  # noqa: BLE001 - the task's outcome, whatever it is
                error = exc
            with watch.lock:
                going_on = watch.settle(value, error, began, position == last, flush)
        except StopTask:  # landed in the bookkeeping above, after the task returned
            with watch.lock:
                going_on = watch.settle(None, StopTask(), began, position == last, flush)
        if not going_on:
            return


def _call(fn: Callable[..., Any], task: tuple[tuple[Any, ...], dict[str, Any]]) -> Any:
    args, kwargs = task
    return fn(*args, **kwargs)
