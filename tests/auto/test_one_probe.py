"""profile() and mode="auto" are one probe and one decision: same figures, same mode (#12)."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

import pytest
from tasks import count_primes, nap, sha256_rounds

import poolwise
from poolwise import pool as pool_module

if TYPE_CHECKING:
    from collections.abc import Callable

    from poolwise.decide import ProbeFigures

profiling = importlib.import_module("poolwise.profiling")


def _auto_mode(fn: Callable[[Any], Any], inputs: list[Any]) -> str:
    with poolwise.Pool() as pool:
        pool.map(fn, inputs)
        return pool.report().mode


def _capture_figures(monkeypatch: pytest.MonkeyPatch) -> list[ProbeFigures]:
    """Record every ProbeFigures the probe builds, whoever asked for it."""
    seen: list[ProbeFigures] = []
    real = profiling.probe_figures

    def recording(*args: Any, **kwargs: Any) -> ProbeFigures:
        figures: ProbeFigures = real(*args, **kwargs)
        seen.append(figures)
        return figures

    monkeypatch.setattr(profiling, "probe_figures", recording)
    return seen


def test_profile_and_auto_run_the_same_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both measure through profiling.probe: the same stages, the same figures' shape."""
    seen = _capture_figures(monkeypatch)
    # GIL-releasing work: both probes run every stage (for pure Python, whether the thread
    # round is skipped depends on how many GIL-meter wake-ups each probe happened to see)
    inputs = [1 << 19] * 12
    poolwise.profile(sha256_rounds, inputs)
    _auto_mode(sha256_rounds, inputs)
    assert len(seen) == 2, "one probe each"
    from_profile, from_auto = seen
    assert from_profile.tasks == from_auto.tasks
    assert from_profile.total_tasks == from_auto.total_tasks == len(inputs)
    assert from_profile.scaling_threads == from_auto.scaling_threads
    assert (from_profile.thread_scaling is None) == (from_auto.thread_scaling is None)


@pytest.mark.parametrize(
    ("scaling", "share", "expected"),
    [(1.0, 1.0, "processes"), (1.9, 1.0, "threads"), (None, 0.01, "threads")],
)
def test_same_figures_give_the_same_mode(
    monkeypatch: pytest.MonkeyPatch, scaling: float | None, share: float, expected: str
) -> None:
    """With the measured figures pinned, profile() and auto decide alike: one decide()."""
    monkeypatch.setattr(profiling, "cpus", lambda: 2)
    monkeypatch.setattr(pool_module, "cpus", lambda: 2)
    real = profiling.probe_figures

    def pinned(*args: Any, **kwargs: Any) -> ProbeFigures:
        figures: ProbeFigures = real(*args, **kwargs)
        # the machine's load and the GIL meter pinned too: a busy machine would otherwise
        # make the round "cannot tell" and choose threads whatever the scaling
        return dataclasses.replace(
            figures,
            seconds_per_task=0.05,
            cpu_share=share,
            thread_scaling=scaling,
            round_cpus=None,
            idle_cpus=None,
            others_cpus=None,
        )

    monkeypatch.setattr(profiling, "probe_figures", pinned)
    inputs = [500] * 40
    assert poolwise.profile(count_primes, inputs).mode == expected
    assert _auto_mode(count_primes, inputs) == expected


def test_ground_truth_agrees_on_waiting_work() -> None:
    """Tasks that sleep 20 ms: 0% on the CPU, threads for both, whatever the machine does.
    (Tiny tasks are left to the pinned test above: a 10 us task's CPU share moves with
    every scheduler hiccup, so two separate probes of it can differ.)"""
    inputs = [0] * 12
    assert poolwise.profile(nap, inputs).mode == _auto_mode(nap, inputs) == "threads"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fn", "inputs"),
    [(count_primes, [100_000 + 4000 * i for i in range(40)]), (sha256_rounds, [1 << 20] * 40)],
)
def test_ground_truth_agrees_on_compute(
    monkeypatch: pytest.MonkeyPatch, fn: Callable[[Any], Any], inputs: list[Any]
) -> None:
    """GIL-holding and GIL-releasing compute: most of three of each, as the scaling round
    is timed on a shared machine."""
    monkeypatch.setattr(profiling, "cpus", lambda: 2)
    monkeypatch.setattr(pool_module, "cpus", lambda: 2)
    profiled = [poolwise.profile(fn, inputs).mode for _ in range(3)]
    chosen = [_auto_mode(fn, inputs) for _ in range(3)]
    assert max(set(profiled), key=profiled.count) == max(set(chosen), key=chosen.count)
