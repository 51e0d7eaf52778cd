"""Executor: a ``concurrent.futures.Executor`` over a poolwise Pool, as a drop-in.

It accepts the stdlib's names (``max_workers``, ``mp_context``, ``initializer``,
``initargs``, ``max_tasks_per_child``) so that code written for ``ThreadPoolExecutor`` or
``ProcessPoolExecutor`` keeps working when the class name changes.
"""

from __future__ import annotations

import itertools
import time
from concurrent import futures
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from . import options as _options
from .pool import Mode, Pool

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from multiprocessing.context import BaseContext

__all__ = ["Executor"]

P = ParamSpec("P")
R = TypeVar("R")


def _call_group(fn: Callable[..., R], group: list[tuple[Any, ...]]) -> list[R]:
    """Run one chunk of ``Executor.map`` in a worker."""
    return [fn(*args) for args in group]


class Executor(futures.Executor):
    """A ``concurrent.futures.Executor`` that runs on a poolwise ``Pool``.

    Swap it in for ``ThreadPoolExecutor(max_workers=8)`` as
    ``Executor("threads", max_workers=8)``; futures work with ``as_completed``, ``wait``,
    callbacks and ``cancel`` as usual.

    Args:
        mode: where tasks run (see ``poolwise.Pool``).
        max_workers: the stdlib's name for ``workers``.
        mp_context: a multiprocessing context; its start method is used.
        initializer: called with ``initargs`` once in each worker.
        initargs: arguments for ``initializer``.
        max_tasks_per_child: the stdlib's name for ``max_tasks_per_worker``.
        pool_options: any other ``poolwise.Pool`` argument (``workers``, ``timeout``...).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        mode: Mode = "auto",
        max_workers: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[object, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        **pool_options: Any,
    ) -> None:
        _options.check_workers(max_workers, "max_workers")
        if max_workers is not None and pool_options.get("workers") not in (None, max_workers):
            raise ValueError("give max_workers= or workers=, not both")
        workers = max_workers if max_workers is not None else pool_options.pop("workers", None)
        pool_options.pop("workers", None)
        if mp_context is not None:
            pool_options.setdefault("start_method", mp_context.get_start_method())
        if max_tasks_per_child is not None:
            pool_options.setdefault("max_tasks_per_worker", max_tasks_per_child)
        known = {
            "timeout",
            "retries",
            "max_tasks_per_worker",
            "start_method",
            "progress",
            "address",
        }
        unknown = sorted(set(pool_options) - known)
        if unknown:
            raise TypeError(
                f"unsupported arguments to poolwise.Executor: {unknown}; it takes mode, "
                f"max_workers, mp_context, initializer, initargs, max_tasks_per_child and "
                f"{sorted(known | {'workers'})}"
            )
        self._pool = Pool(mode, workers, initializer=initializer, initargs=initargs, **pool_options)

    @property
    def pool(self) -> Pool:
        """The poolwise Pool underneath, for ``report()``."""
        return self._pool

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> futures.Future[R]:
        """Schedule ``fn(*args, **kwargs)``; returns its Future."""
        return self._pool.submit(fn, *args, **kwargs)

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[R]:
        """Like ``concurrent.futures.Executor.map``: all inputs are submitted now.

        ``chunksize`` groups inputs into one task each, as ``ProcessPoolExecutor`` does;
        ``timeout`` counts from this call. ``buffersize`` is not supported (Python 3.14).
        """
        if buffersize is not None:
            raise TypeError(
                "buffersize= is not supported; use poolwise.Pool.imap(), which reads a "
                "bounded number of inputs ahead"
            )
        _options.check_chunksize(chunksize)
        deadline = None if timeout is None else time.monotonic() + timeout
        calls = zip(*iterables, strict=False)
        if chunksize == 1:
            fs = [self.submit(fn, *args) for args in calls]
            return _results(fs, deadline, flatten=False)
        groups = iter(lambda: list(itertools.islice(calls, chunksize)), [])
        grouped = [self._pool.submit(_call_group, fn, group) for group in groups]
        return _results(grouped, deadline, flatten=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; wait for what runs (and cancel what waits, if asked)."""
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _results(
    fs: list[futures.Future[Any]], deadline: float | None, *, flatten: bool
) -> Iterator[Any]:
    """Yield results in order, like the stdlib's ``result_iterator``; cancel the rest on exit."""
    try:
        fs.reverse()  # pop from the end: drop references to futures already yielded
        while fs:
            future = fs.pop()
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            result = future.result(remaining)
            if flatten:
                yield from result
            else:
                yield result
            del future
    finally:
        for future in fs:
            future.cancel()
