"""``await pool.amap(...)`` and ``async for ... in pool.aimap(...)``: maps for callers that
are coroutines, on any mode, without blocking their event loop."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Protocol, TypeVar, Unpack

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator

    from .options import MapOptions

__all__ = ["AsyncMaps"]

R = TypeVar("R")


class _Maps(Protocol):
    """What the async maps need of the pool they belong to."""

    def map(
        self, fn: Callable[..., R], *iterables: Iterable[object], **options: Unpack[MapOptions]
    ) -> list[R]: ...

    def imap(
        self, fn: Callable[..., R], *iterables: Iterable[object], **options: Unpack[MapOptions]
    ) -> Iterator[R]: ...


class AsyncMaps:
    """The coroutine-friendly maps of ``Pool``: each runs the pool's own ``map``/``imap`` on
    a thread of the caller's loop (``asyncio.to_thread``)."""

    async def amap(
        self: _Maps,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        **options: Unpack[MapOptions],
    ) -> list[R]:
        """``map`` for a caller that is itself a coroutine: ``await pool.amap(fn, xs)``.

        The map runs on a thread of the caller's loop (``asyncio.to_thread``), so the loop
        goes on meanwhile. Cancelling the caller does not stop the tasks already handed out.
        """
        return await asyncio.to_thread(functools.partial(self.map, fn, *iterables, **options))

    async def aimap(
        self: _Maps,
        fn: Callable[..., R],
        *iterables: Iterable[object],
        **options: Unpack[MapOptions],
    ) -> AsyncIterator[R]:
        """``imap`` for a caller that is itself a coroutine: ``async for r in pool.aimap(...)``.

        Arguments are checked at once; each result is awaited on a thread of the caller's
        loop. Leaving the ``async for`` early skips the chunks not yet started.
        """
        results = self.imap(fn, *iterables, **options)
        end = object()
        try:
            while True:
                value = await asyncio.to_thread(next, results, end)
                if value is end:
                    return
                yield value  # type: ignore[misc]
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
