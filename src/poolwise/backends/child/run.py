"""Run a chunk's tasks in order, reporting outcomes in batches; shared by every backend.

This module runs inside worker processes, so it imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "FLUSH_SECONDS",
    "MAX_STRIDE",
    "POSITION",
    "QUICK_LOOK",
    "STARTED",
    "Flush",
    "Outcomes",
    "run_tasks",
]

#: Outcomes are sent back at least this often while a chunk runs, so that progress shows and
#: a crash loses few finished results (seconds; a flush costs ~20 us, so 100 a second are
#: 0.2% of one core).
FLUSH_SECONDS = 0.01

#: Most tasks between two reads of the clock, and the time between two reads under which
#: the stride doubles (tasks that short are measured in bulk; four times that sets it back
#: to 1, so a flush is late by a few milliseconds at most).
MAX_STRIDE = 64
QUICK_LOOK = FLUSH_SECONDS / 16

#: Slots of a worker's ``where`` array: the position of the running task in its chunk and
#: when it started (``time.monotonic()``, comparable across processes on one machine).
POSITION, STARTED = 0, 1


@dataclasses.dataclass(slots=True)
class Outcomes:
    """The outcomes of consecutive tasks of one chunk, ``tasks[offset:offset + len(values)]``:
    what a worker flushes, a backend delivers and a map run yields."""

    offset: int
    #: One per task; meaningless where ``errors`` has the position.
    values: list[Any]
    #: Position (relative to ``offset``) -> the exception that task raised; None: none did.
    errors: dict[int, BaseException] | None = None
    #: Wall time the tasks took in the worker.
    seconds: float = 0.0
    #: The worker thread's CPU time in them (0 where it could not be read: a crash, a timeout).
    cpu_seconds: float = 0.0

    @classmethod
    def failed(cls, offset: int, count: int, error: Callable[[int], BaseException]) -> Outcomes:
        """``count`` tasks from ``offset`` that each failed with ``error(offset + i)``."""
        return cls(offset, [None] * count, {i: error(offset + i) for i in range(count)})


#: Where a run's outcomes go, a batch at a time.
Flush: TypeAlias = "Callable[[Outcomes], None]"


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[Any],
    flush: Flush,
    *,
    start: int = 0,
    where: Any = None,  # a memoryview of doubles (typeshed has no type that fits it)
    timed: bool = False,
    passthrough: tuple[type[BaseException], ...] = (),
    unary: bool = False,
    durable: bool = False,
) -> None:
    """Call ``fn`` on each task from ``start``; every outcome reaches ``flush`` exactly once.

    ``flush`` receives ``Outcomes`` of consecutive tasks, at least every ``FLUSH_SECONDS``
    and at the end, with the wall and this thread's CPU time they took (clocks read per
    flush, not per task).
    Tasks are ``(args, kwargs)`` pairs, or single arguments when ``unary``. ``durable``
    flushes after every task, so that a crash loses no finished outcome.

    Before each task its position goes into ``where`` (shared memory for a process worker),
    so whoever watches the worker knows what runs, and, when ``timed``, its start time. An
    exception from ``fn`` is that task's outcome, except the ``passthrough`` types (the
    caller's own Ctrl-C in serial mode), which propagate after the outcomes so far are
    flushed.

    The clock is read every ``stride`` tasks: the stride doubles while tasks are short
    (up to MAX_STRIDE) and drops back to 1 when a look finds time passed, so a map of
    tiny tasks pays for a clock read every few dozen tasks, not every one.
    """
    values: list[Any] = []
    append = values.append
    errors: dict[int, BaseException] | None = None
    offset = start
    clock = time.perf_counter
    monotonic = time.monotonic
    cpu_clock = time.thread_time
    last = looked = clock()
    cpu_last = cpu_clock()
    end = len(tasks)
    stride = countdown = 1
    for position in range(start, end):
        if where is not None:
            if timed:
                # Start time first, then position: a watcher that reads position, start,
                # position and sees the same position twice has that task's start time.
                where[STARTED] = monotonic()
            where[POSITION] = position
        try:
            if unary:
                append(fn(tasks[position]))
            else:
                args, kwargs = tasks[position]
                append(fn(*args, **kwargs))
        except passthrough:
            if values:
                flush(Outcomes(offset, values, errors, clock() - last, cpu_clock() - cpu_last))
            raise
        except BaseException as exc:  # the task's outcome, whatever it is
            if errors is None:
                errors = {}
            errors[len(values)] = exc
            append(None)
        if durable and position + 1 < end:
            now, cpu_now = clock(), cpu_clock()
            flush(Outcomes(offset, values, errors, now - last, cpu_now - cpu_last))
            offset = position + 1
            values, errors, last, cpu_last = [], None, now, cpu_now
            append = values.append
            continue
        countdown -= 1
        if countdown:
            continue
        now = clock()
        if now - looked < QUICK_LOOK:
            stride = min(stride * 2, MAX_STRIDE)
        elif now - looked > 4 * QUICK_LOOK:
            stride = 1
        countdown, looked = stride, now
        if now - last >= FLUSH_SECONDS and position + 1 < end:
            cpu_now = cpu_clock()
            flush(Outcomes(offset, values, errors, now - last, cpu_now - cpu_last))
            offset = position + 1
            values, errors, last, cpu_last = [], None, now, cpu_now
            append = values.append
    flush(Outcomes(offset, values, errors, clock() - last, cpu_clock() - cpu_last))
