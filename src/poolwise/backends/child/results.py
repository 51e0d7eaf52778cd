"""A worker's side of a chunk's trip: call the function unless its argument never arrived,
and pack a batch of outcomes for the way back.

Runs inside process and interpreter workers, so it imports the standard library,
``transport``, ``errors`` and ``frames`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import NotPicklable
from ...transport import Unsent, dumps, dumps_apart, pack_exception
from . import frames as _frames

if TYPE_CHECKING:
    import pickle
    from collections.abc import Callable, Sequence

    from .run import Outcomes

__all__ = ["FN_CACHE_SIZE", "call_unless_unsent", "pack_result"]

#: Pickled functions kept per pool (by identity) so a map sends its function once per worker.
FN_CACHE_SIZE = 64


def call_unless_unsent(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, except that a task whose (first) argument is an Unsent marker raises."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if args and type(args[0]) is Unsent:
            raise args[0].error
        return fn(*args, **kwargs)

    return call


def pack_result(
    outcomes: Outcomes,
    first_index: int,
    place: Callable[[Sequence[pickle.PickleBuffer]], bytes] | None = None,
) -> bytes:
    """A RESULT frame's body: ``RESULT_PREFIX``, the text naming the segments that hold
    big result buffers, then pickled (values, packed errors, (seconds, CPU seconds)).

    ``place`` (process workers on Linux) puts buffers of 1 MiB or more in shared memory and
    names them (``segments.ResultSegments.place``); without it, or when /dev/shm is full,
    everything is in the pickle. ``first_index`` is the input index of the chunk's task 0
    (-1: none), for naming a result that will not pickle.
    """
    offset, values, errors = outcomes.offset, outcomes.values, outcomes.errors
    seconds = (outcomes.seconds, outcomes.cpu_seconds)
    packed = {pos: pack_exception(exc) for pos, exc in (errors or {}).items()}
    try:
        if place is not None:
            data, buffers = dumps_apart((values, packed, seconds))
            if buffers:
                try:
                    text = place(buffers)
                except OSError:  # /dev/shm full: the pipe still works
                    pass
                else:
                    prefix = _frames.RESULT_PREFIX.pack(offset, len(values), len(text))
                    return prefix + text + data
        return _frames.RESULT_PREFIX.pack(offset, len(values), 0) + dumps((values, packed, seconds))
    except Exception:
        pass
    # Some result would not pickle: that task's outcome becomes NotPicklable, not a hang.
    for pos, value in enumerate(values):
        if pos in packed:
            continue
        try:
            dumps(value)
        except Exception as exc:
            where = "result" if first_index < 0 else f"result of task #{first_index + offset + pos}"
            error = NotPicklable(
                where,
                f"{type(value).__module__}.{type(value).__qualname__}",
                f"{type(exc).__name__}: {exc}",
            )
            packed[pos] = pack_exception(error)
            values[pos] = None
    prefix = _frames.RESULT_PREFIX.pack(offset, len(values), 0)
    return prefix + dumps((values, packed, seconds))
