"""Run the lab's experiments in order and collect one ``RowResult`` each.

Experiments load by name only when asked for (``--only``), so a missing optional extra
(NumPy) only affects its own row; an experiment that fails becomes a row with the error,
not a crash of the whole lab.
"""

from __future__ import annotations

import importlib
import os
import time
import traceback
from typing import TYPE_CHECKING, Any

from ..machine_load import LoadMeter, busy_note
from .base import DEPENDS, LabSettings, Measurement, NamedFigures, RowResult, Verdict

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .base import Experiment

__all__ = ["EXPERIMENTS", "load_experiment", "run_lab"]

#: key -> "module:attribute" of each experiment, in the seed table's order.
EXPERIMENTS: dict[str, str] = {
    "memory-sharing": "poolwise.lab.memory_sharing:EXPERIMENT",
    "memory-footprint": "poolwise.lab.footprint:EXPERIMENT",
    "cpu-bound": "poolwise.lab.cpu_bound:EXPERIMENT",
    "io-bound": "poolwise.lab.io_bound:EXPERIMENT",
    "starting-time": "poolwise.lab.startup:EXPERIMENT",
    "interruptibility": "poolwise.lab.interrupt:EXPERIMENT",
    "video-streaming": "poolwise.lab.video_streaming:EXPERIMENT",
}


def load_experiment(key: str) -> Experiment[Any]:
    """The experiment registered as ``key``."""
    module, _, name = EXPERIMENTS[key].partition(":")
    experiment: Experiment[Any] = getattr(importlib.import_module(module), name)
    return experiment


def run_lab(
    settings: LabSettings,
    only: Sequence[str] | None = None,
    on_start: Callable[[str, str], None] | None = None,
) -> list[RowResult]:
    """Run the experiments (all, or ``only`` those keys) and return their rows in order."""
    keys = list(only) if only else list(EXPERIMENTS)
    unknown = [key for key in keys if key not in EXPERIMENTS]
    if unknown:
        raise ValueError(
            f"unknown lab row(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}"
        )
    rows = []
    for key in keys:
        experiment = load_experiment(key)
        if on_start is not None:
            on_start(key, experiment.row)
        rows.append(_run_one(experiment, settings))
    return rows


#: Most runs of a row whose figures fall near a verdict's threshold: it is measured again
#: until two runs agree (#14), so a verdict printed is not one run's coin toss.
MAX_RUNS = 3


def _run_one(experiment: Experiment[Any], settings: LabSettings) -> RowResult:
    started = time.perf_counter()
    meter = LoadMeter(tree=True)  # how much CPU other programs took meanwhile (#14)
    try:
        measurement, verdict = _measure_until_sure(experiment, settings)
        error = None
    except Exception as exc:  # noqa: BLE001 - one failed row must not end the lab
        measurement = Measurement(NamedFigures())
        verdict = Verdict(DEPENDS, f"could not be measured here: {type(exc).__name__}: {exc}")
        error = "".join(traceback.format_exception(exc))
    load = meter.stop()
    machine_cpus = os.cpu_count() or 1
    note = busy_note(load, machine_cpus)
    if note is not None:
        measurement.notes.append(note)
    return RowResult(
        others_share=None if load is None else min(1.0, load.others_cpus / machine_cpus),
        key=experiment.key,
        row=experiment.row,
        claim=experiment.claim,
        measurement=measurement,
        verdict=verdict,
        seconds=time.perf_counter() - started,
        error=error,
    )


def _measure_until_sure(
    experiment: Experiment[Any], settings: LabSettings
) -> tuple[Measurement[Any], Verdict]:
    """Measure and judge; while the figures sit near a threshold (the experiment's
    ``near_threshold``), measure again until two runs give the same verdict.

    Three different verdicts make the row "depends", saying it varied between runs.
    """
    near = getattr(experiment, "near_threshold", None)
    runs: list[tuple[Measurement[Any], Verdict]] = []
    while True:
        measurement: Measurement[Any] = experiment.run(settings)
        runs.append((measurement, experiment.judge(measurement)))
        if near is None or not near(measurement):
            break
        statuses = [verdict.status for _, verdict in runs]
        if len(runs) > 1 and statuses.count(statuses[-1]) >= 2:
            break
        if len(runs) >= MAX_RUNS:
            seen = ", ".join(dict.fromkeys(statuses))
            last_measurement, last = runs[-1]
            return last_measurement, Verdict(
                DEPENDS,
                f"the verdict varied between {len(runs)} runs here ({seen}), its figures "
                f"being near a threshold; the last run: {last.status}: {last.reason}",
            )
    measurement, verdict = runs[-1]
    if len(runs) > 1:
        statuses = [v.status for _, v in runs]
        measurement.notes.append(
            f"measured {len(runs)} times, its figures being near a threshold: "
            f"{statuses.count(verdict.status)} of {len(runs)} runs gave this verdict"
        )
    return measurement, verdict
