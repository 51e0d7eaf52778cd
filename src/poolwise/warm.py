"""``poolwise.map``, ``imap`` and ``starmap``: run on a warm pool kept per mode and size.

A loop that calls ``poolwise.map`` many times pays the workers' start-up once, as loky's
reusable executor does. A warm pool is shut down after ``IDLE_TIMEOUT`` seconds unused,
and at interpreter exit. Ctrl-C (or any BaseException that is not an Exception) during a
call terminates that pool, so no worker keeps running abandoned work.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeVar, Unpack, overload

from . import nesting
from . import options as _options
from .options import RunOptions
from .pool import Mode, Pool

if TYPE_CHECKING:
    from .options import MapOptions
    from .report import Report

__all__ = [
    "IDLE_TIMEOUT",
    "WarmPool",
    "imap",
    "map",
    "shutdown_warm_pools",
    "starmap",
    "warm_pools",
]

R = TypeVar("R")
T = TypeVar("T")

#: Seconds a warm pool may sit unused before its workers are stopped (loky's default, 300).
IDLE_TIMEOUT = 300.0

_lock = threading.Lock()


class _Key(NamedTuple):
    mode: str
    workers: int | None
    #: nesting.depth() of the callers: a worker's nested map never waits on its own pool.
    depth: int


_pools: dict[_Key, Pool] = {}
_last_used: dict[_Key, float] = {}
_users: dict[_Key, int] = {}
_wakeup = threading.Condition(_lock)
_reaper: threading.Thread | None = None


def _acquire(mode: str, workers: int | None) -> tuple[_Key, Pool]:
    global _reaper
    _options.check_mode(mode)
    _options.check_workers(workers)
    key = _Key(mode, workers, nesting.depth())
    retired: list[Pool] = []
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = Pool(mode, workers)  # type: ignore[arg-type]
            _pools[key] = pool
            _last_used[key] = time.monotonic()
            # One warm pool per mode and depth while idle: a loop over workers=1..8 must
            # not leave 8 pools (38 processes) for the reaper's 5 minutes (#15).
            idle_alike = [
                other
                for other in _pools
                if other != key
                and (other.mode, other.depth) == (key.mode, key.depth)
                and not _users.get(other, 0)
            ]
            for other in idle_alike:
                retired.append(_pools.pop(other))
                _users.pop(other, None)
                _last_used.pop(other, None)
        _users[key] = _users.get(key, 0) + 1
        if _reaper is None:
            _reaper = threading.Thread(target=_reap, name="poolwise-warm-reaper", daemon=True)
            _reaper.start()
    for old in retired:
        threading.Thread(target=old.terminate, name="poolwise-warm-retire", daemon=True).start()
    return key, pool


def _release(key: _Key, pool: Pool, broken: bool) -> None:
    with _lock:
        _users[key] -= 1
        _last_used[key] = time.monotonic()
        if broken and _pools.get(key) is pool:
            del _pools[key]
        _wakeup.notify()
    if broken:
        pool.terminate()


def _reap() -> None:
    """Stop warm pools that nobody used for IDLE_TIMEOUT seconds."""
    with _lock:
        while True:
            now = time.monotonic()
            wait = IDLE_TIMEOUT
            for key in list(_pools):
                if _users.get(key, 0):
                    continue
                idle = now - _last_used.get(key, now)
                if idle >= IDLE_TIMEOUT:
                    threading.Thread(target=_pools.pop(key).terminate, daemon=True).start()
                else:
                    wait = min(wait, IDLE_TIMEOUT - idle)
            _wakeup.wait(timeout=wait)


class WarmPool(NamedTuple):
    """One warm pool as ``warm_pools()`` reports it."""

    pool: Pool
    #: Calls using it right now (an ``imap`` not yet finished counts until closed).
    users: int
    #: Seconds since a call last gave it back (0 while in use).
    idle_seconds: float


def warm_pools(depth: int = 0) -> dict[tuple[str, int | None], WarmPool]:
    """The warm pools alive now, by (mode, workers asked for): what the reaper will stop
    and when, for tools and tests that watch a long-lived program.

    ``depth`` 1 lists the pools that maps nested in a warm pool's worker threads use (2,
    maps nested in those, and so on): each depth has pools of its own, so that a nested map
    never waits on the threads it runs in.
    """
    now = time.monotonic()
    with _lock:
        return {
            (key.mode, key.workers): WarmPool(
                pool,
                _users.get(key, 0),
                0.0 if _users.get(key, 0) else now - _last_used.get(key, now),
            )
            for key, pool in _pools.items()
            if key.depth == depth
        }


def shutdown_warm_pools() -> None:
    """Stop every warm pool now (also done at interpreter exit)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.terminate()


atexit.register(shutdown_warm_pools)


class _Lease(Iterator[R]):
    """Results of one warm ``imap``; gives the pool back when done, dropped or broken."""

    def __init__(self, key: _Key, pool: Pool, results: Iterator[R]) -> None:
        self._key = key
        self._pool = pool
        self._results: Iterator[R] | None = results

    def __next__(self) -> R:
        if self._results is None:
            raise StopIteration
        try:
            return next(self._results)
        except (StopIteration, Exception):
            self._end(broken=False)
            raise
        except BaseException:
            self._end(broken=True)  # Ctrl-C mid-run: stop the workers with the run
            raise

    def _end(self, broken: bool) -> None:
        if self._results is not None:
            self._results = None
            _release(self._key, self._pool, broken)

    def close(self) -> None:
        """Stop early; tasks not yet started are skipped."""
        results, self._results = self._results, None
        if results is not None:
            getattr(results, "close", lambda: None)()
            _release(self._key, self._pool, False)

    def __del__(self) -> None:
        self.close()


def _on_warm_pool(
    mode: str, workers: int | None, start: Callable[[Pool], Iterator[R]]
) -> _Lease[R]:
    """Start a run on the warm pool for (mode, workers); the lease gives the pool back."""
    key, pool = _acquire(mode, workers)
    try:
        results = start(pool)
    except BaseException:
        _release(key, pool, broken=False)
        raise
    return _Lease(key, pool, results)


def imap(
    fn: Callable[..., R],
    *iterables: Iterable[object],
    mode: Mode = "auto",
    workers: int | None = None,
    **options: Unpack[MapOptions],
) -> Iterator[R]:
    """Lazily ``fn`` over the inputs on a warm pool; see ``poolwise.map``.

    .. versionadded:: 0.1
    """
    return _on_warm_pool(mode, workers, lambda pool: pool.imap(fn, *iterables, **options))


def _with_warm_pool(mode: str, workers: int | None, call: Callable[[Pool], T]) -> T:
    """``call(pool)`` on the warm pool for (mode, workers), giving the pool back after."""
    key, pool = _acquire(mode, workers)
    broken = False
    try:
        return call(pool)
    except Exception:
        raise
    except BaseException:
        broken = True  # Ctrl-C mid-run: stop the workers with the run
        raise
    finally:
        _release(key, pool, broken)


@overload
def map(
    fn: Callable[..., R],
    *iterables: Iterable[object],
    mode: Mode = ...,
    workers: int | None = ...,
    report: Literal[False] = ...,
    **options: Unpack[MapOptions],
) -> list[R]: ...


@overload
def map(
    fn: Callable[..., R],
    *iterables: Iterable[object],
    mode: Mode = ...,
    workers: int | None = ...,
    report: Literal[True],
    **options: Unpack[MapOptions],
) -> tuple[list[R], Report]: ...


def map(
    fn: Callable[..., R],
    *iterables: Iterable[object],
    mode: Mode = "auto",
    workers: int | None = None,
    report: bool = False,
    **options: Unpack[MapOptions],
) -> list[R] | tuple[list[R], Report]:
    """``fn`` over the inputs, like the builtin ``map``, as a list, on a warm pool.

    Args:
        fn: the function to call; with several iterables it takes one item from each.
        iterables: the inputs.
        mode: where tasks run: ``"auto"`` (measure the first tasks, then choose),
            ``"serial"``, ``"threads"``, ``"processes"``, ``"interpreters"``, ``"async"``
            or ``"dask"``.
        workers: how many workers; None picks from ``poolwise.cpus()`` for the mode.
        report: also return a ``Report`` of this call: ``(results, report)``.
        **options: ``timeout`` (per-task limit in seconds), ``chunksize`` (tasks sent
            together; None sizes chunks from measured task times), ``ordered`` (results in
            input order, or False: in completion order), ``progress`` (a progress bar on
            stderr: True on a terminal, "always" also plain lines off one), ``retries``
            (how many more times to run a task that failed: raised, crashed its worker or
            timed out), ``retry_on`` (exception types that qualify for a retry; default:
            any Exception but ``NotPicklable``) and ``return_exceptions`` (True: a failed
            input's exception stands at its position, every other result is kept).
    Raises:
        ValueError, TypeError: an argument is invalid; nothing was started.
        Exception: the first failing task's own exception (in input order), with the
            worker's traceback as ``__cause__``.

    .. versionadded:: 0.1
    """
    checked = RunOptions().from_call(report=report, **options)
    return _with_warm_pool(mode, workers, lambda pool: pool.collect(fn, iterables, checked))


@overload
def starmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[object]],
    *,
    mode: Mode = ...,
    workers: int | None = ...,
    report: Literal[False] = ...,
    **options: Unpack[MapOptions],
) -> list[R]: ...


@overload
def starmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[object]],
    *,
    mode: Mode = ...,
    workers: int | None = ...,
    report: Literal[True],
    **options: Unpack[MapOptions],
) -> tuple[list[R], Report]: ...


def starmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[object]],
    *,
    mode: Mode = "auto",
    workers: int | None = None,
    report: bool = False,
    **options: Unpack[MapOptions],
) -> list[R] | tuple[list[R], Report]:
    """``fn(*args)`` for each ``args`` in ``iterable``, as a list, on a warm pool (the
    arguments as for ``poolwise.map``).

    .. versionadded:: 0.1
    """
    checked = RunOptions().from_call(report=report, **options)
    return _with_warm_pool(
        mode, workers, lambda pool: pool.collect(fn, (iterable,), checked, star=True)
    )
