"""Executor: a ``concurrent.futures.Executor`` over a poolwise Pool, as a drop-in.

It accepts the stdlib's names (``max_workers``, ``mp_context``, ``initializer``,
``initargs``, ``max_tasks_per_child``) so that code written for ``ThreadPoolExecutor`` or
``ProcessPoolExecutor`` keeps working when the class name changes.
"""

from __future__ import annotations

import atexit
import collections
import functools
import itertools
import threading
import time
import weakref
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
        if not isinstance(mode, str):
            raise TypeError(
                f"poolwise.Executor's first argument is the mode, not {mode!r}: for "
                f"ThreadPoolExecutor({mode!r}) write poolwise.Executor('threads', "
                f"max_workers={mode!r}) (or 'processes', or 'auto' to measure)"
            )
        _options.check_workers(max_workers, "max_workers")
        if max_workers is not None and pool_options.get("workers") not in (None, max_workers):
            raise ValueError("give max_workers= or workers=, not both")
        workers = max_workers if max_workers is not None else pool_options.pop("workers", None)
        pool_options.pop("workers", None)
        if mp_context is not None:
            if not callable(getattr(mp_context, "get_start_method", None)):
                raise TypeError(
                    f"mp_context={mp_context!r} must be a multiprocessing context, such as "
                    "multiprocessing.get_context('spawn'); or give start_method='spawn'"
                )
            method = mp_context.get_start_method()
            if pool_options.get("start_method") not in (None, method):
                raise ValueError(
                    f"mp_context starts processes with {method!r} but start_method="
                    f"{pool_options['start_method']!r}: give one of them"
                )
            pool_options["start_method"] = method
        if max_tasks_per_child is not None:
            pool_options.setdefault("max_tasks_per_worker", max_tasks_per_child)
        known = {
            "timeout",
            "retries",
            "max_tasks_per_worker",
            "start_method",
            "progress",
            "address",
            "native_threads",
        }
        unknown = sorted(set(pool_options) - known)
        if unknown:
            raise TypeError(
                f"unsupported arguments to poolwise.Executor: {unknown}; it takes mode, "
                f"max_workers, mp_context, initializer, initargs, max_tasks_per_child and "
                f"{sorted(known | {'workers'})}"
            )
        self._pool = Pool(mode, workers, initializer=initializer, initargs=initargs, **pool_options)
        _finish_at_exit(self._pool)

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
        """Like ``concurrent.futures.Executor.map``: all inputs are submitted now, or, with
        ``buffersize`` (Python 3.14's name), at most that many ahead of the results taken.

        ``chunksize`` groups inputs into one task each, as ``ProcessPoolExecutor`` does;
        ``timeout`` counts from this call.
        """
        _options.check_chunksize(chunksize)
        _options.check_optional_positive_int(buffersize, "buffersize")
        deadline = None if timeout is None else time.monotonic() + timeout
        calls = zip(*iterables, strict=False)
        submits: Iterator[Callable[[], futures.Future[Any]]]
        if chunksize == 1:
            submits = (functools.partial(self.submit, fn, *args) for args in calls)
        else:
            groups = iter(lambda: list(itertools.islice(calls, chunksize)), [])
            group_call: Callable[..., Any] = _call_group
            submits = (
                functools.partial(self._pool.submit, group_call, fn, group) for group in groups
            )
        fs = collections.deque(
            submit() for submit in itertools.islice(submits, buffersize)
        )  # buffersize None: every input now
        more = None if buffersize is None else submits
        return _results(fs, more, deadline, flatten=chunksize != 1)

    def terminate_workers(self) -> None:
        """Stop the workers now (Python 3.14): their tasks and the queued ones are not run."""
        self._pool.terminate()

    def kill_workers(self) -> None:
        """As ``terminate_workers`` (Python 3.14); poolwise's terminate already ends a worker
        that ignores SIGTERM with SIGKILL."""
        self._pool.terminate()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; wait for what runs (and cancel what waits, if asked)."""
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


#: Pools of live executors: their submitted work finishes before the interpreter exits.
_LIVE_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _finish_at_exit(pool: Pool) -> None:
    """Have the interpreter's exit wait for ``pool``'s submitted work, as the stdlib's
    executors do ("all pending futures are executed before the interpreter exits"), even
    after ``shutdown(wait=False)``. Registered after the backends' own exit hooks, so it
    runs before them (atexit runs the last registered first)."""
    global _exit_hook_registered
    _LIVE_POOLS.add(pool)
    with _exit_hook_lock:
        if not _exit_hook_registered:
            _exit_hook_registered = True
            atexit.register(_finish_all)


def _finish_all() -> None:
    for pool in list(_LIVE_POOLS):
        pool.shutdown(wait=True)


def _results(
    fs: collections.deque[futures.Future[Any]],
    more: Iterator[Callable[[], futures.Future[Any]]] | None,
    deadline: float | None,
    *,
    flatten: bool,
) -> Iterator[Any]:
    """Yield results in order, like the stdlib's ``result_iterator``: no reference to a
    result or its future is kept once yielded, and leaving early (a timeout, ``close()``)
    cancels the future that was awaited and those after it. ``more`` submits the next
    input each time a result is taken (``buffersize``)."""
    try:
        while fs:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if more is not None and (submit := next(more, None)) is not None:
                fs.append(submit())  # one in for the one about to come out
            # no local holds the popped future: it holds the result (CPython #14406)
            if flatten:
                yield from _result_or_cancel(fs.popleft(), remaining)
            else:
                yield _result_or_cancel(fs.popleft(), remaining)
    finally:
        for future in fs:
            future.cancel()


def _result_or_cancel(future: futures.Future[Any], timeout: float | None) -> Any:
    """``future.result(timeout)``; the future is cancelled if that raises (a timeout)."""
    try:
        try:
            return future.result(timeout)
        finally:
            future.cancel()
    finally:
        del future  # a reference cycle through the traceback otherwise keeps it alive
