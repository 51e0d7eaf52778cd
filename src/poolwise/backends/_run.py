"""Run a chunk's tasks in order, reporting outcomes in batches; shared by every backend.

This module runs inside worker processes, so it imports only the standard library.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["FLUSH_SECONDS", "Flush", "run_tasks"]

#: Outcomes are sent back at least this often while a chunk runs, so that progress shows and
#: a crash loses few finished results (seconds; a flush costs ~20 us, so 100 a second are
#: 0.2% of one core).
FLUSH_SECONDS = 0.01

#: ``flush(offset, values, errors, seconds)``: outcomes of tasks[offset:offset+len(values)].
Flush = Callable[[int, list[Any], "dict[int, BaseException] | None", float], None]


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
    flush: Flush,
    *,
    start: int = 0,
    on_task_start: Callable[[int], None] | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
) -> None:
    """Call ``fn`` on each task from ``start``; every outcome reaches ``flush`` exactly once.

    An exception from ``fn`` is that task's outcome, except the ``passthrough`` types (the
    caller's own Ctrl-C in serial mode), which propagate after the outcomes so far are
    flushed.
    """
    values: list[Any] = []
    errors: dict[int, BaseException] | None = None
    offset = start
    last = time.perf_counter()
    end = len(tasks)
    for position in range(start, end):
        if on_task_start is not None:
            on_task_start(position)
        args, kwargs = tasks[position]
        try:
            values.append(fn(*args, **kwargs))
        except passthrough:
            if values:
                flush(offset, values, errors, time.perf_counter() - last)
            raise
        except BaseException as exc:  # the task's outcome, whatever it is
            if errors is None:
                errors = {}
            errors[len(values)] = exc
            values.append(None)
        now = time.perf_counter()
        if now - last >= FLUSH_SECONDS and position + 1 < end:
            flush(offset, values, errors, now - last)
            offset = position + 1
            values, errors, last = [], None, now
    flush(offset, values, errors, time.perf_counter() - last)
