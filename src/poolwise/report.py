"""Report: what a pool did and why, as text for people and a dict for JSON."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stats import PoolStats

__all__ = ["Report", "build_report"]


@dataclass(frozen=True)
class Report:
    """What a pool (``Pool.report()``) or one map (``map(..., report=True)``) did, and why.

    Attributes:
        mode: where tasks ran (``"threads"``, ``"processes"``...): with ``mode="auto"``,
            where the latest map ran.
        workers: the most workers that ran at once.
        chunksize: tasks per chunk in the latest map (the last size chosen).
        tasks_submitted: tasks handed to the pool.
        tasks_done: tasks that returned a result.
        tasks_failed: tasks whose outcome was an exception (after any retries).
        wall_seconds: seconds since the pool (or the map) started.
        task_seconds: seconds the workers spent in tasks (measured in the workers).
        backend: counters of the pool's backends (workers started, crashed, retired...).
        reasons: sentences naming each measured figure and the rule it triggered.
        tasks_retried: re-runs made for ``retries=``.
        retried_inputs: input indexes that needed a re-run (the first 1000).
        tasks_timed_out: tasks whose outcome was ``TaskTimeout`` (after any retries).
        cpu_seconds: CPU time of the worker threads while in tasks; well under
            ``task_seconds`` means the tasks mostly waited (I/O, sleeps, a lock).
    """

    mode: str
    workers: int
    chunksize: int | None
    tasks_submitted: int
    tasks_done: int
    tasks_failed: int
    wall_seconds: float
    task_seconds: float
    backend: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    tasks_retried: int = 0
    retried_inputs: list[int] = field(default_factory=list)
    tasks_timed_out: int = 0
    cpu_seconds: float = 0.0

    @property
    def utilisation(self) -> float:
        """Share of the workers' capacity spent in tasks since the pool started."""
        capacity = self.wall_seconds * self.workers
        return self.task_seconds / capacity if capacity > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        data["utilisation"] = self.utilisation
        return data

    def __str__(self) -> str:
        lines = [
            f"mode {self.mode}, {self.workers} workers, chunksize {self.chunksize or 'n/a'}",
            f"tasks: {self.tasks_submitted} submitted, {self.tasks_done} done, "
            f"{self.tasks_failed} failed ({self.tasks_timed_out} timed out), "
            f"{self.tasks_retried} retried"
            + (f" (inputs {_listed(self.retried_inputs)})" if self.retried_inputs else ""),
            f"time: {self.wall_seconds:.3f} s wall, {self.task_seconds:.3f} s in tasks "
            f"({self.utilisation:.0%} of the workers' capacity), "
            f"{self.cpu_seconds:.3f} s of it on the CPU",
        ]
        if self.backend:
            lines.append(
                "backend: "
                + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.backend.items())
            )
        lines.extend(f"- {reason}" for reason in self.reasons)
        return "\n".join(lines)


def build_report(stats: PoolStats, *, mode: str, workers: int, backend: dict[str, int]) -> Report:
    """The report of a pool or one run from its counters; ``mode`` and ``workers`` stand
    where no map has run yet. The reasons: each auto decision's, then the chunk size's."""
    reasons: list[str] = []
    for number, decision in enumerate(stats.decisions):
        reasons.append(
            f"mode auto chose {decision.mode}:"
            if number == 0
            else f"then switched to {decision.mode}:"
        )
        reasons += decision.reasons
    if stats.chunker is not None:
        reasons.append(stats.chunker.explain())
    return Report(
        mode=stats.mode or mode,
        workers=stats.workers or workers,
        chunksize=stats.chunksize,
        tasks_submitted=stats.submitted,
        tasks_done=stats.done,
        tasks_failed=stats.failed,
        tasks_timed_out=stats.timed_out,
        tasks_retried=stats.retried,
        retried_inputs=sorted(stats.retried_inputs),
        wall_seconds=time.perf_counter() - stats.started,
        task_seconds=stats.task_seconds,
        cpu_seconds=stats.cpu_seconds,
        backend=backend,
        reasons=reasons,
    )


def _listed(indexes: list[int], most: int = 10) -> str:
    shown = ", ".join(f"#{i}" for i in indexes[:most])
    return shown + (f" and {len(indexes) - most} more" if len(indexes) > most else "")
