"""The outcomes of one Dask task, gathered in the worker and pickled for the trip back.

Outcomes are pickled here, in the worker, not by Dask: a result that cannot travel
becomes that task's ``NotPicklable`` instead of a failed Dask task that loses the whole
chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import NotPicklable
from ...transport import dumps, pack_exception, type_name
from .dask_messages import Outcome

if TYPE_CHECKING:
    from .run import Outcomes

__all__ = ["GatheredOutcomes"]


class GatheredOutcomes:
    """The outcomes of one Dask task, gathered from ``run_tasks``' flushes (in order)."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.values: list[Any] = []
        self.errors: dict[int, BaseException] = {}
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def flush(self, outcomes: Outcomes) -> None:
        """Add a batch of outcomes (the next ones after those gathered so far)."""
        base = outcomes.offset - self.start
        if outcomes.errors:
            for position, error in outcomes.errors.items():
                self.errors[base + position] = error
        self.values.extend(outcomes.values)
        self.seconds += outcomes.seconds
        self.cpu_seconds += outcomes.cpu_seconds

    def packed(self, first_index: int, resume_at: int | None, timed_out: int) -> bytes:
        """Everything, pickled; a result that will not pickle becomes its task's
        ``NotPicklable`` (the others still travel)."""
        errors = {position: pack_exception(exc) for position, exc in self.errors.items()}
        outcome = Outcome(
            self.start,
            self.values,
            errors,
            self.seconds,
            self.cpu_seconds,
            resume_at,
            timed_out,
        )
        try:
            return dumps(outcome)
        except Exception:  # noqa: BLE001 - found out below, value by value
            pass
        for position, value in enumerate(self.values):
            if position in errors:
                continue
            try:
                dumps(value)
            except Exception as exc:  # noqa: BLE001 - that task's NotPicklable
                index = self.start + position
                where = "result" if first_index < 0 else f"result of task #{first_index + index}"
                error = NotPicklable(where, type_name(value), f"{type(exc).__name__}: {exc}")
                errors[position] = pack_exception(error)
                self.values[position] = None
        return dumps(outcome._replace(errors=errors))
