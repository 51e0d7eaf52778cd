"""What code that runs tasks needs of a chunk, and the worker's own copy of one.

``run_timed_tasks`` and the watchdog read a chunk's function, tasks, timeout and input
indexes, nothing else: ``TimedChunk`` names that much, so the parent's ``base.Chunk``
(threads, serial) and a worker's ``WorkerChunk`` (built from a CHUNK frame or a Dask
task, with no sink to deliver to) both fit.

Runs inside workers: imports the standard library only.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["TimedChunk", "WorkerChunk"]


class TimedChunk(Protocol):
    """A chunk as ``run_timed_tasks`` and ``Watchdog`` see it."""

    @property
    def fn(self) -> Callable[..., Any]: ...

    @property
    def tasks(self) -> Sequence[Any]: ...

    @property
    def unary(self) -> bool: ...

    @property
    def timeout(self) -> float | None: ...

    def __len__(self) -> int: ...

    def index_of(self, offset: int) -> int | None:
        """The input index of ``tasks[offset]``, for error messages."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerChunk:
    """A chunk as a worker holds it: its outcomes go back through a flush, not a sink."""

    fn: Callable[..., Any]
    #: ``(args, kwargs)`` pairs, or single arguments when ``unary``.
    tasks: Sequence[Any]
    #: Input index of ``tasks[0]``; None for a lone ``submit``.
    first_index: int | None
    unary: bool
    #: Seconds each task may run, or None.
    timeout: float | None

    def __len__(self) -> int:
        return len(self.tasks)

    def index_of(self, offset: int) -> int | None:
        """The input index of ``tasks[offset]``, for error messages."""
        return None if self.first_index is None else self.first_index + offset
