"""Where the outcome of a lone ``submit`` goes: a Future the caller holds."""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from .backends.base import Chunk
from .errors import PoolClosed, TaskTimeout

if TYPE_CHECKING:
    from .backends.base import Backend, Outcomes
    from .retrying import RetryPolicy
    from .stats import PoolStats

__all__ = ["WAIT_SLICE", "FutureSink", "PoolFuture"]

R = TypeVar("R")

#: Longest blocking wait without a look at pending signals (seconds): Ctrl-C reaches the
#: caller within this, even when it arrived just before the wait began.
WAIT_SLICE = 0.1


class PoolFuture(Future[R]):
    """A ``concurrent.futures.Future`` whose waits notice Ctrl-C promptly.

    ``result()`` and ``exception()`` wait in slices of ``WAIT_SLICE`` seconds: a signal
    that arrives just before a plain Future starts waiting is only handled when the wait
    ends, which for ``result()`` without a timeout can be never.
    """

    def result(self, timeout: float | None = None) -> R:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return super().result(self._slice(deadline))
            except TimeoutError:
                if self.done() or _passed(deadline):
                    raise  # the task's own TimeoutError (TaskTimeout), or ours

    def exception(self, timeout: float | None = None) -> BaseException | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return super().exception(self._slice(deadline))
            except TimeoutError:
                if _passed(deadline):
                    raise

    @staticmethod
    def _slice(deadline: float | None) -> float:
        if deadline is None:
            return WAIT_SLICE
        return max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))


def _passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class FutureSink:
    """Outcome of a lone ``submit``: the Future the caller holds (after any retries)."""

    __slots__ = ("backend", "future", "policy", "runs", "stats")

    def __init__(
        self, future: Future[Any], stats: PoolStats, backend: Backend, policy: RetryPolicy
    ) -> None:
        self.future = future
        self.stats = stats
        self.backend = backend
        self.policy = policy
        self.runs = 0

    def begin(self, chunk: Chunk) -> bool:
        self.runs += 1
        return self.runs > 1 or self.future.set_running_or_notify_cancel()

    def cancel(self, chunk: Chunk) -> None:
        self.future.cancel()
        # A Future cancel() refuses once running; it then still needs an outcome.
        if not self.future.done():
            self.future.set_exception(PoolClosed())

    def deliver(self, chunk: Chunk, outcomes: Outcomes) -> None:
        values, errors = outcomes.values, outcomes.errors
        if not values:
            return
        if errors and self.policy.wants(errors[0], self.runs):
            self.stats.add_retry(None)
            try:
                self.backend.submit(Chunk(chunk.fn, chunk.tasks, None, self, timeout=chunk.timeout))
            except BaseException as exc:  # noqa: BLE001 - the pool closed: that is the outcome
                self.future.set_exception(exc)
            return
        timed_out = 1 if errors and isinstance(errors[0], TaskTimeout) else 0
        self.stats.add_outcomes(
            1, 1 if errors else 0, outcomes.seconds, outcomes.cpu_seconds, timed_out
        )
        if errors:
            self.future.set_exception(errors[0])
        else:
            self.future.set_result(values[0])
