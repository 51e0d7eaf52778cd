"""Async: ``async def`` tasks on an event loop in a background thread, many in flight.

    submit ──run_coroutine_threadsafe──> loop thread: per chunk, one asyncio task per input
                                         (at most ``workers`` awaiting at once, all chunks
                                         together), outcomes delivered in input order

Coroutines wait for I/O without a thread each, so thousands of requests can be in flight
where threads would need thousands of stacks. A task's ``timeout`` cancels it
(``asyncio.timeout``): it stops at its next ``await``. Nothing is pickled. The loop is one
thread: a task that computes without awaiting holds up every other task, which is why
``mode="auto"`` measures plain functions and only sends ``async def`` ones here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .. import nesting
from ..errors import InitializerFailed, PoolClosed, TaskTimeout
from .base import Backend, Chunk, Outcomes, WorkerOptions, is_async_callable
from .initializer import run_initializer

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from .._types import Task

__all__ = ["DEFAULT_IN_FLIGHT", "TERMINATE_GRACE", "AsyncBackend"]

T = TypeVar("T")

#: Seconds terminate() waits for cancelled tasks to unwind before it stops the loop (a task
#: blocked in a plain call, which cancellation cannot reach, is left behind after this).
TERMINATE_GRACE = 5.0
#: Coroutines in flight when the caller does not say (a guess in the spirit of aiohttp's
#: 100 connections per session: enough to hide latency, few enough for a server's limits).
DEFAULT_IN_FLIGHT = 100


class AsyncBackend(Backend):
    """An event loop in a daemon thread; at most ``workers`` coroutines run at once."""

    mode: ClassVar[str] = "async"
    #: Measured on 2 cores: handing a chunk to the loop thread and its first task starting
    #: takes ~50 us; tasks of one chunk then start without a hand-off.
    chunk_overhead: ClassVar[float] = 5e-5

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: set[Future[None]] = set()
        self._closed = False
        #: The loop was asked to stop: it then closes, and may not be asked again.
        self._stopping = False
        self._init_error: InitializerFailed | None = None
        self._timed_out = 0
        self._cancelled = 0

    @classmethod
    def workers_for(cls, requested: int | None, cpus: int) -> int:
        return requested or DEFAULT_IN_FLIGHT

    def adapt(self, fn: Callable[..., T], first: Task | None) -> Callable[..., T]:
        """``fn``, if it is an ``async def`` function: a plain one would stall the loop."""
        if not is_async_callable(fn):
            name = getattr(fn, "__name__", repr(fn))
            raise TypeError(
                f"mode='async' runs async def functions and {name!r} is a plain one: use "
                "mode='threads' (or 'auto') for it"
            )
        return super().adapt(fn, first)

    # -- caller side -------------------------------------------------------------------

    def submit(self, chunk: Chunk) -> None:
        loop = self._started()
        if self._init_error is not None:
            raise self._init_error
        run = _Run(chunk)
        future = asyncio.run_coroutine_threadsafe(self._run_chunk(run), loop)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(lambda done: self._finished(done, run))

    def _finished(self, future: Future[None], run: _Run) -> None:
        with self._lock:
            self._running.discard(future)
        if future.cancelled() and not run.begun:
            run.chunk.cancel()  # cancelled before it started: its tasks get PoolClosed

    def _started(self) -> asyncio.AbstractEventLoop:
        """The loop, started (and the initializer run) on first use."""
        with self._lock:
            if self._closed:
                raise PoolClosed()
            if self._loop is not None:
                return self._loop
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._serve,
                args=(loop, ready, nesting.depth() + 1),
                name="poolwise-async",
                daemon=True,
            )
            self._thread.start()
            ready.wait()
            self._loop = loop
        # The initializer runs once, on the loop thread, before any task.
        asyncio.run_coroutine_threadsafe(self._initialize(), loop).result()
        return loop

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: threading.Event, depth: int) -> None:
        nesting.enter(depth)  # a task blocking on a nested map must not wait on this loop
        asyncio.set_event_loop(loop)
        self._slots = asyncio.Semaphore(self.workers)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _initialize(self) -> None:
        initializer = self.options.initializer
        if initializer is None:
            return
        try:
            if is_async_callable(initializer):
                await _awaited(initializer(*self.options.initargs))
            else:
                run_initializer(self.options)
        except InitializerFailed as exc:
            self._init_error = exc
        except Exception as exc:  # noqa: BLE001 - an async initializer's own error, kept
            name = getattr(initializer, "__qualname__", repr(initializer))
            error = InitializerFailed(name, f"{type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._init_error = error

    # -- loop thread -------------------------------------------------------------------

    async def _run_chunk(self, run: _Run) -> None:
        """Start every task of the chunk (bounded by the slots) and deliver their outcomes
        in order: each time the leading tasks are done, they go out together."""
        chunk = run.chunk
        run.begun = True
        if not chunk.begin():
            return
        count = len(chunk)
        outcomes: list[tuple[Any, BaseException | None, float] | None] = [None] * count
        done = asyncio.Event()
        next_out = 0

        def finished(position: int, outcome: tuple[Any, BaseException | None, float]) -> None:
            nonlocal next_out
            outcomes[position] = outcome
            start = next_out
            while next_out < count and outcomes[next_out] is not None:
                next_out += 1
            if next_out > start:
                _deliver(chunk, start, outcomes[start:next_out])
            if next_out == count:
                done.set()

        tasks = [
            asyncio.ensure_future(self._run_task(chunk, position, finished))
            for position in range(count)
        ]
        try:
            await done.wait()
        except asyncio.CancelledError:  # terminate(): what has no outcome gets PoolClosed
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for position in range(next_out, count):
                if outcomes[position] is None:
                    outcomes[position] = (None, PoolClosed(), 0.0)
            _deliver(chunk, next_out, outcomes[next_out:])
            raise

    async def _run_task(
        self,
        chunk: Chunk,
        position: int,
        finished: Callable[[int, tuple[Any, BaseException | None, float]], None],
    ) -> None:
        slots = self._slots
        assert slots is not None
        async with slots:
            started = time.perf_counter()
            args, kwargs = chunk.task(position)
            deadline = asyncio.timeout(chunk.timeout)
            try:
                awaitable = chunk.fn(*args, **kwargs)
                if not inspect.isawaitable(awaitable):
                    raise TypeError(
                        f"mode='async' awaits what the function returns, and it returned a "
                        f"{type(awaitable).__name__}: make it an async def function, or use "
                        "mode='threads' for a plain one"
                    )
                async with deadline:
                    value = await awaitable
            except TimeoutError as exc:
                if chunk.timeout is not None and deadline.expired():
                    self._timed_out += 1
                    error: BaseException = TaskTimeout(chunk.timeout, chunk.index_of(position))
                else:
                    error = exc
                finished(position, (None, error, time.perf_counter() - started))
                return
            except asyncio.CancelledError:
                raise  # terminate(): _run_chunk gives the outcome
            except BaseException as exc:  # noqa: BLE001 - the task's outcome, whatever it is
                finished(position, (None, exc, time.perf_counter() - started))
                return
            finished(position, (value, None, time.perf_counter() - started))

    # -- lifetime ----------------------------------------------------------------------

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            running = list(self._running)
        if loop is None or thread is None:
            return
        if cancel_pending:
            for future in running:
                future.cancel()
        if wait:
            # A chunk's coroutine gives its outcomes to the chunk; its future only says when.
            concurrent.futures.wait(running)
        self._stop_loop(loop)
        if wait and thread is not threading.current_thread():
            thread.join()

    def terminate(self) -> None:
        """Cancel every task (each stops at its next ``await``), give them a moment to
        deliver ``PoolClosed``, then stop the loop."""
        with self._lock:
            self._closed = True
            running = list(self._running)
            loop, thread = self._loop, self._thread
        for future in running:
            if future.cancel():
                self._cancelled += 1
        if loop is None or thread is None:
            return
        if thread is not threading.current_thread():
            concurrent.futures.wait(running, timeout=TERMINATE_GRACE)
        self._stop_loop(loop)
        if thread is not threading.current_thread():
            thread.join(timeout=TERMINATE_GRACE)

    def _stop_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask the loop to stop, once: its thread then closes it, and a closed loop refuses
        ``call_soon_threadsafe`` (terminate after join, or at exit after the finalizer)."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        loop.call_soon_threadsafe(loop.stop)

    def stats(self) -> dict[str, int]:
        return {"tasks_timed_out": self._timed_out, "chunks_cancelled": self._cancelled}


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class _Run:
    """A chunk handed to the loop, and whether its coroutine started (a coroutine cancelled
    before its first step never runs: its chunk must then be cancelled from outside)."""

    __slots__ = ("begun", "chunk")

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk
        self.begun = False


def _deliver(chunk: Chunk, offset: int, outcomes: list[Any]) -> None:
    values = [value for value, _, _ in outcomes]
    errors = {i: error for i, (_, error, _) in enumerate(outcomes) if error is not None}
    seconds = sum(took for _, _, took in outcomes)
    chunk.deliver(Outcomes(offset, values, errors or None, seconds))
