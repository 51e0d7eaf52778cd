"""mode="auto": probe with the first real tasks, decide, run the rest where it fits.

    inputs ─┬─ first PROBE_TASKS ──> serial run (this thread): wall and CPU time
            ├─ next round ─────────> threads run on cpus() threads: scaling
            │                        (skipped when the tasks mostly wait, or 1 CPU)
            ├─ decide() ───────────> mode, workers, reasons (decide.py)
            └─ the rest ───────────> a run on the chosen mode

Every probed task is a real task: its result is kept and yielded first, in input order,
and no input runs twice. Probe runs are ordinary map runs, so timeouts, retries and
errors behave as in any mode.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

from .decide import IO_CPU_SHARE, Decision, decide
from .profiling import (
    PROBE_SECONDS,
    PROBE_TASKS,
    SCALING_MIN_TASK,
    probe_figures,
    scaling_round_size,
)
from .system import gil_enabled

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .outcomes import MapRun, PoolStats
    from .progress import ProgressBar

__all__ = ["AutoRun"]


class _SharedBar:
    """One progress bar across the probe runs and the main run: only AutoRun closes it."""

    def __init__(self, bar: ProgressBar) -> None:
        self.bar = bar

    def advance(self, done: int, failed: int) -> None:
        self.bar.advance(done, failed)

    def close(self) -> None:
        pass


class AutoRun:
    """A map run whose mode is chosen from its own first tasks."""

    def __init__(
        self,
        run_on: Callable[..., MapRun],
        fn: Callable[..., Any],
        tasks: Iterator[Any],
        total: int | None,
        unary: bool,
        cpus: int,
        workers: int | None,
        chunksize: int | None,
        stats: PoolStats,
        make_bar: Callable[[], ProgressBar | None] | None,
    ) -> None:
        self._run_on = run_on
        self._fn = fn
        self._tasks = tasks
        self._total = total
        self._unary = unary
        self._cpus = cpus
        self._workers = workers
        self._chunksize = chunksize
        self._stats = stats
        self._make_bar = make_bar
        self.decision: Decision | None = None

    def __iter__(self) -> Iterator[Any]:
        bar = self._make_bar() if self._make_bar is not None else None
        try:
            yield from self._results(None if bar is None else _SharedBar(bar))
        finally:
            if bar is not None:
                bar.close()

    def collect(self) -> list[Any]:
        return list(self)

    def _results(self, bar: _SharedBar | None) -> Iterator[Any]:
        # 1. The first tasks on this thread, one at a time (a slow one is enough): wall
        # time against the thread's CPU time.
        shared = (lambda: bar) if bar is not None else None
        first: list[Any] = []
        probed: list[Any] = []
        wall = cpu = 0.0
        while len(first) < PROBE_TASKS and (not first or wall < PROBE_SECONDS):
            one = list(itertools.islice(self._tasks, 1))
            if not one:
                break
            run = self._run_on("serial", 1, iter(one), 1, len(first), 1, shared)
            cpu_start, wall_start = time.thread_time(), time.perf_counter()
            results, error = _drain(run)
            wall += time.perf_counter() - wall_start
            cpu += time.thread_time() - cpu_start
            first += one
            probed += results
            if error is not None:
                yield from probed
                raise error
        if not first:
            return
        per_task = wall / len(first)
        share = min(1.0, cpu / wall) if wall > 0 else 1.0

        # 2. A round on cpus() threads, unless the tasks mostly wait (threads then anyway).
        scaling: float | None = None
        threads = self._cpus
        scaled: list[Any] = []
        left = None if self._total is None else self._total - len(first)
        if self._cpus > 1 and share >= IO_CPU_SHARE and per_task >= SCALING_MIN_TASK:
            wanted = scaling_round_size(self._cpus, per_task, left)
            second = list(itertools.islice(self._tasks, wanted))
            if len(second) >= self._cpus:
                run = self._run_on(
                    "threads", self._cpus, iter(second), len(second), len(first), 1, shared
                )
                started = time.perf_counter()
                scaled, error = _drain(run)
                seconds = time.perf_counter() - started
                if error is not None:
                    yield from probed
                    yield from scaled
                    raise error
                scaling = (len(second) / seconds) * per_task if seconds > 0 else None
            else:
                scaled_inputs = second  # too few to measure: they join the rest
                self._tasks = itertools.chain(scaled_inputs, self._tasks)
        done = len(first) + len(scaled)

        # 3. Decide from the figures; 4. run the rest there.
        item = first[0] if self._unary else first[0][0]
        figures = probe_figures(
            self._fn, item, probed[0], len(first), per_task, share, scaling, threads, self._total
        )
        decision = decide(figures, self._cpus, gil_enabled())
        self.decision = decision
        self._stats.decision = decision
        yield from probed
        yield from scaled
        remaining = None if self._total is None else max(0, self._total - done)
        rest = self._run_on(
            decision.mode,
            self._workers or decision.workers,
            self._tasks,
            remaining,
            done,
            self._chunksize,
            shared,
        )
        yield from rest


def _drain(run: MapRun) -> tuple[list[Any], BaseException | None]:
    """The run's results, and the error that stopped it (raised later, in input order)."""
    results: list[Any] = []
    try:
        for value in run:
            results.append(value)  # noqa: PERF402 - kept when a later task raises
    except Exception as exc:  # noqa: BLE001 - raised by the caller after the results before it
        return results, exc
    return results, None
