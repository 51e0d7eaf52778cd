"""Which failed tasks run again: ``retries=`` and ``retry_on=``."""

from __future__ import annotations

from typing import TypeAlias

from .errors import NotPicklable, PoolClosed

__all__ = ["RetryOn", "RetryPolicy", "check_retry_on"]

#: What ``retry_on=`` accepts.
RetryOn: TypeAlias = type[BaseException] | tuple[type[BaseException], ...] | None

#: Failures a re-run cannot mend: the same arguments will not pickle the next time either,
#: and a closed pool runs nothing. Retried only when ``retry_on`` names them.
_NEVER_BY_DEFAULT = (NotPicklable, PoolClosed)


def check_retry_on(
    retry_on: object,
) -> tuple[type[BaseException], ...] | None:
    """``retry_on`` as a tuple of exception types, or a TypeError saying what is accepted."""
    if retry_on is None:
        return None
    kinds = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise TypeError(
                f"retry_on={retry_on!r} must be an exception class or a tuple of them, "
                "e.g. retry_on=(ConnectionError, poolwise.WorkerCrashed)"
            )
    return kinds


class RetryPolicy:
    """Up to ``retries`` more runs for a task whose outcome was an exception.

    Without ``retry_on`` every Exception qualifies (the task's own, ``WorkerCrashed``,
    ``TaskTimeout``) except the ones a re-run cannot mend; with it, only those types.
    """

    __slots__ = ("retries", "retry_on")

    def __init__(self, retries: int, retry_on: tuple[type[BaseException], ...] | None) -> None:
        self.retries = retries
        self.retry_on = retry_on

    def __bool__(self) -> bool:
        return self.retries > 0

    def wants(self, error: BaseException, runs_so_far: int) -> bool:
        """Whether a task that failed with ``error`` after ``runs_so_far`` runs runs again."""
        if runs_so_far > self.retries:
            return False
        if self.retry_on is not None:
            return isinstance(error, self.retry_on)
        return isinstance(error, Exception) and not isinstance(error, _NEVER_BY_DEFAULT)
