"""Rates swept over modes and worker counts, shared by the rows that measure throughput
(I/O-bound, video streaming): each mode's best, the chart series, auto against the best.

``Rates`` maps (workload, mode) to {workers: tasks per second}; serial is at 1 worker.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .base import Series

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .auto_mode import AutoTrial

__all__ = ["ModeBest", "Rates", "auto_against_best", "best_of", "rate_series"]

Rates = dict[tuple[str, str], dict[int, float]]


@dataclass(frozen=True)
class ModeBest:
    """One mode's best throughput on a workload (rounded as the figures show it)."""

    rate: float  # tasks per second
    workers: int  # where it was reached
    speedup: float  # over serial


def best_of(rates: Rates, name: str, mode: str) -> ModeBest:
    """Where ``mode`` ran workload ``name`` fastest, and its speed-up over serial."""
    serial = rates[name, "serial"][1]
    workers, best = max(rates[name, mode].items(), key=lambda item: item[1])
    return ModeBest(round(best, 1), workers, round(best / serial, 2))


def rate_series(rates: Rates, y_label: Callable[[str], str]) -> list[Series]:
    """One chart line per (workload, mode): rate against workers."""
    series = []
    for (name, mode), by_workers in rates.items():
        counts = sorted(by_workers)
        series.append(
            Series(
                name=f"{name} {mode}",
                x=[float(n) for n in counts],
                y=[by_workers[n] for n in counts],
                x_label="workers",
                y_label=y_label(name),
            )
        )
    return series


def auto_against_best(trial: AutoTrial, rates: Rates, name: str, modes: Sequence[str]) -> AutoTrial:
    """``trial`` with the best fixed mode on workload ``name`` and that mode's best rate
    over auto's (probing and start-up included in auto's)."""
    best_mode = max(modes, key=lambda mode: max(rates[name, mode].values()))
    best = max(rates[name, best_mode].values())
    return replace(trial, best_mode=best_mode, best_over_auto=best / (trial.tasks / trial.seconds))
