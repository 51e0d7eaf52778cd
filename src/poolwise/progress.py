"""progress=True: a rich progress bar on stderr for one map run.

Done/total, rate and time left when the number of inputs is known; a spinner with a count
when it is not (a generator). Failures are counted beside the done tasks. The bar only
draws on a terminal: in a log file or CI it would be noise, so ``progress=True`` is quiet
there. ``progress="always"`` off a terminal writes plain lines instead (no ``\r``, no
escape codes): one at each tenth of the total, one every ``HEARTBEAT`` seconds otherwise
while the count moves (a generator, a slow stretch), and the final state at the end.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = [
    "HEARTBEAT",
    "STEPS",
    "Bar",
    "PlainProgress",
    "ProgressBar",
    "ProgressOption",
    "check_progress",
    "progress_bar",
]

#: Plain lines: one each time the done count crosses a tenth of the total...
STEPS = 10
#: ...and, between those, one at most every 30 s while the count moves: a log of an hour's
#: map gets ~130 lines, a map of a few seconds at most 10.
HEARTBEAT = 30.0

#: What ``progress=`` accepts.
ProgressOption = bool | Literal["always"]


def check_progress(progress: object) -> ProgressOption:
    if progress is True or progress is False:
        return progress
    if progress == "always":
        return "always"
    raise ValueError(
        f"progress={progress!r} must be True (a bar on a terminal), False, or 'always' "
        "(also plain progress lines when stderr is not a terminal)"
    )


class Bar(Protocol):
    """What a run needs of a progress bar."""

    def advance(self, done: int, failed: int) -> None: ...

    def close(self) -> None: ...


class ProgressBar:
    """One bar: ``advance`` from any thread as outcomes arrive, ``close`` at the end."""

    def __init__(self, total: int | None, description: str, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        else:
            columns += [TextColumn("{task.completed} done")]
        columns += [
            TextColumn("[red]{task.fields[failed]} failed", justify="right"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
        ]
        if total is not None:
            columns.append(TimeRemainingColumn())
        self._progress: Progress = Progress(*columns, console=console, transient=False)
        self._task: TaskID = self._progress.add_task(description, total=total, failed=0, rate="")
        self._failed = 0
        self._progress.start()

    def advance(self, done: int, failed: int) -> None:
        """``done`` more outcomes, ``failed`` of them exceptions."""
        self._failed += failed
        task = self._progress.tasks[0]
        speed = task.speed
        rate = "" if speed is None else f"{speed:,.1f}/s"
        self._progress.update(self._task, advance=done, failed=self._failed, rate=rate)

    def close(self) -> None:
        self._progress.stop()


class PlainProgress:
    """Progress as plain lines for a log file or CI, at the rate of ``STEPS`` and
    ``HEARTBEAT``, and the final state at ``close``; ``advance`` from any thread."""

    def __init__(
        self,
        total: int | None,
        description: str,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._total = total
        self._description = description
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self._started = self._last_line = clock()
        self._done = self._failed = 0
        self._step = 0  # the last tenth of the total a line was written for
        self._done_at_last_line = 0
        self._closed = False

    def advance(self, done: int, failed: int) -> None:
        """``done`` more outcomes, ``failed`` of them exceptions; a line if one is due."""
        with self._lock:
            self._done += done
            self._failed += failed
            now = self._clock()
            if self._due(now):
                self._write(self._progress_line(now), now)

    def close(self) -> None:
        """The final state: done of total, failures, rate and time taken (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            now = self._clock()
            self._write(self._final_line(now), now)

    def _due(self, now: float) -> bool:
        """A new tenth of the total was crossed, or a heartbeat passed and the count moved
        (the line for the whole total is the final one)."""
        total, done = self._total, self._done
        if total and done < total:
            step = done * STEPS // total
            if step > self._step:
                self._step = step
                return True
        moved = done != self._done_at_last_line
        return moved and now - self._last_line >= HEARTBEAT and not (total and done >= total)

    def _write(self, line: str, now: float) -> None:
        self._last_line = now
        self._done_at_last_line = self._done
        self._stream.write(f"{self._description}: {line}\n")
        self._stream.flush()

    def _progress_line(self, now: float) -> str:
        elapsed = now - self._started
        total, done = self._total, self._done
        if total is None:
            return f"{done} done, {self._figures(elapsed)}"
        line = f"{done}/{total} ({done * 100 // total}%), {self._figures(elapsed)}"
        if elapsed > 0 and done:
            left = (total - done) * elapsed / done
            line += f", ~{_clock_time(math.ceil(left))} left"
        return line

    def _final_line(self, now: float) -> str:
        elapsed = now - self._started
        total, done = self._total, self._done
        if total is None:
            return f"ended, {done} done, {self._figures(elapsed)}"
        how = "finished" if done >= total else "stopped at"
        return f"{how} {done}/{total}, {self._figures(elapsed)}"

    def _figures(self, elapsed: float) -> str:
        """Failures, rate (when time has passed) and elapsed time, as in the rich bar."""
        rate = f"{self._done / elapsed:,.1f}/s, " if elapsed > 0 else ""
        return f"{self._failed} failed, {rate}{_clock_time(int(elapsed))} elapsed"


def _clock_time(seconds: int) -> str:
    """``h:mm:ss``, as rich's elapsed and remaining columns show time."""
    return str(timedelta(seconds=max(0, seconds)))


def progress_bar(
    progress: ProgressOption,
    total: int | None,
    description: str,
    console: Console | None = None,
) -> Bar | None:
    """A bar if ``progress`` asks for one here (see the module docstring), else None:
    rich's on a terminal (or the given console), plain lines for ``"always"`` elsewhere."""
    if not progress:
        return None
    if console is None:
        stderr = sys.stderr
        if stderr is None:  # pythonw: nowhere to write
            return None
        if not stderr.isatty():
            return PlainProgress(total, description, stderr) if progress == "always" else None
        from rich.console import Console

        console = Console(stderr=True, force_terminal=progress == "always" or None)
    return ProgressBar(total, description, console)
