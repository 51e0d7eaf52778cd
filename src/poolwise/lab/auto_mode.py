"""What ``mode="auto"`` makes of a lab workload: where it ran it, and how fast.

The CPU- and I/O-bound rows time fixed modes on warmed pools; beside them, each workload
also runs once on a fresh ``mode="auto"`` pool, so the lab shows whether auto would have
picked the mode that measured best, and what probing and start-up cost it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..pool import Pool

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["AutoTrial", "auto_note", "try_auto"]


@dataclass(frozen=True)
class AutoTrial:
    """One run of a workload on a fresh ``mode="auto"`` pool."""

    label: str
    mode: str
    workers: int
    tasks: int
    seconds: float
    #: The workload's best fixed mode (measured on warmed pools), and its rate over this.
    best_mode: str = ""
    best_over_auto: float = 0.0


def try_auto(
    label: str,
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    star: bool,
    workers: int | None = None,
) -> AutoTrial:
    """Run ``inputs`` on a new auto pool (probing and start-up inside the timing)."""
    started = time.perf_counter()
    with Pool("auto", workers) as pool:
        if star:
            pool.starmap(fn, inputs)
        else:
            pool.map(fn, inputs)
        report = pool.report()
    seconds = time.perf_counter() - started
    return AutoTrial(label, report.mode, report.workers, len(inputs), seconds)


def auto_note(trials: Sequence[AutoTrial]) -> str:
    """One sentence: per workload, auto's choice and its speed against the best fixed mode."""
    parts = [
        f"{trial.label} {trial.mode} x{trial.workers}, "
        f"{1 / trial.best_over_auto:.0%} of warmed {trial.best_mode}"
        for trial in trials
    ]
    return "mode='auto' (fresh pool, probing and start-up timed): " + "; ".join(parts) + "."
