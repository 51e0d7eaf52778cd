"""progress=True: a rich progress bar on stderr for one map run.

Done/total, rate and time left when the number of inputs is known; a spinner with a count
when it is not (a generator). Failures are counted beside the done tasks. The bar only
draws on a terminal: in a log file or CI it would be noise, so ``progress=True`` is quiet
there and ``progress="always"`` draws anyway (rich then prints the final state).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["Bar", "ProgressBar", "ProgressOption", "check_progress", "progress_bar"]

#: What ``progress=`` accepts.
ProgressOption = bool | Literal["always"]


def check_progress(progress: object) -> ProgressOption:
    if progress is True or progress is False:
        return progress
    if progress == "always":
        return "always"
    raise ValueError(
        f"progress={progress!r} must be True (a bar on a terminal), False, or 'always' "
        "(a bar even when stderr is not a terminal)"
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


def progress_bar(
    progress: ProgressOption,
    total: int | None,
    description: str,
    console: Console | None = None,
) -> ProgressBar | None:
    """A bar if ``progress`` asks for one here (see the module docstring), else None."""
    if not progress:
        return None
    if progress is True and console is None and not sys.stderr.isatty():
        return None
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, force_terminal=progress == "always" or None)
    return ProgressBar(total, description, console)
