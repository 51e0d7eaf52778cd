"""What travels between a pool and a Dask worker besides the pickled bytes: Spec, Outcome.

The pool sends ``run_chunk(spec, fn bytes, init bytes, task bytes, buffers)`` as one Dask
task (``dask/sending.py``); the worker answers with one ``Outcome``, pickled by the
worker itself (``dask_results.py``) so that a result that cannot travel fails only its
own task. Both are plain named tuples: they pickle by the standard library alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ...transport import ExceptionPayload

__all__ = ["Outcome", "Spec"]


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
