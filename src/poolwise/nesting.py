"""How deeply the running code is nested in poolwise's own worker threads.

A warm pool's worker that calls ``poolwise.map`` again must not queue onto the pool whose
threads it occupies: with every thread waiting on an inner map, nothing would run it (#15).
So each worker thread knows its depth (the depth of the code that made its pool, plus one)
and warm pools are kept per depth: the tasks of a pool at depth d only ever wait on pools
at depth d + 1, whose threads never wait on theirs. Process and interpreter workers start
again at depth 0: their warm pools are their own.
"""

from __future__ import annotations

import threading

__all__ = ["depth", "enter"]

_local = threading.local()


def depth() -> int:
    """0 outside any poolwise worker thread; 1 in a worker of a pool made there; and so on."""
    return getattr(_local, "depth", 0)


def enter(level: int) -> None:
    """Mark the calling thread (a pool's worker, for its whole life) as at ``level``."""
    _local.depth = level
