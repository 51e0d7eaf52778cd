"""mode="auto": probe with the first real tasks, decide, run the rest where it fits.

    inputs ─┬─ first PROBE_TASKS ──> serial run (this thread): wall and CPU time
            ├─ next round ─────────> threads run on cpus() threads: scaling
            │                        (skipped when the tasks mostly wait, or 1 CPU)
            ├─ decide() ───────────> mode, workers, reasons (decide.py)
            └─ the rest ───────────> a run on the chosen mode, watched: if the CPU time
                                     per task moves DRIFT_FACTOR-fold, the run takes no
                                     more inputs and the next ones are probed again

Every probed task is a real task: its result is kept and yielded in input order, and no
input runs twice. Probe runs are ordinary map runs, so timeouts, retries and errors behave
as in any mode. A pool remembers the figures per function, so a later map of the same
function skips the probe (the watch still guards it).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .backends import backend_class
from .decide import IO_CPU_SHARE, Decision, ProbeFigures, decide
from .profiling import SCALING_MIN_TASK, probe
from .system import gil_enabled
from .units import duration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .options import Inputs
    from .progress import Bar
    from .runs import RunFactory
    from .stats import Measured

__all__ = [
    "DRIFT_FACTOR",
    "MAX_REPROBES",
    "AutoRun",
    "FiguresByFunction",
    "async_decision",
    "reusable",
]

#: The work "changed character" when a stretch of tasks takes this many times more (or
#: less) CPU time per task than the first stretch after the decision (a guess: wide enough
#: that run-to-run noise, ~1.5x on a busy machine, never triggers it).
DRIFT_FACTOR = 4.0
#: Tasks in a stretch at least (per worker: twice, so every worker contributes)...
DRIFT_TASKS = 16
#: ...and seconds of task time in it at least, so that a stretch of tiny tasks is not noise.
DRIFT_SECONDS = 0.05
#: Below this CPU time per task on both sides, a change is not worth a new mode (seconds).
DRIFT_FLOOR = 1e-4
#: Probes a run makes after its first, at most: bounds what changing work can cost.
MAX_REPROBES = 3


def reusable(figures: ProbeFigures, cpus: int) -> bool:
    """Whether a later map of the same function may decide from these figures alone:
    only when nothing the rules need went unmeasured (the scaling round can be skipped
    for lack of inputs)."""
    return (
        figures.thread_scaling is not None
        or figures.seconds_per_task < SCALING_MIN_TASK
        or figures.cpu_share < IO_CPU_SHARE
        or cpus <= 1
    )


class _SharedBar:
    """One progress bar across the probe runs and the main run: only AutoRun closes it."""

    def __init__(self, bar: Bar) -> None:
        self.bar = bar

    def advance(self, done: int, failed: int) -> None:
        self.bar.advance(done, failed)

    def close(self) -> None:
        pass


class _DriftWatch:
    """Notices when the CPU time per task of a run moves DRIFT_FACTOR-fold.

    The first stretch of the run sets the baseline (measured the same way as what
    follows, in the same mode); each later stretch is compared with it. A look costs a
    few attribute reads, taken once per batch of results.
    """

    def __init__(self, measured: Measured, workers: int, mode: str) -> None:
        self._measured = measured
        self._mode = mode
        self._stretch = max(DRIFT_TASKS, 2 * workers)
        self._mark = measured.copy()
        self._baseline: float | None = None

    def change(self) -> str | None:
        """Why the work needs measuring again, or None while it has not changed."""
        now = self._measured
        if now.count - self._mark.count < self._stretch:
            return None
        stretch = now.since(self._mark)
        if stretch.seconds < DRIFT_SECONDS:
            return None
        self._mark = now.copy()
        per_task = stretch.cpu_seconds / stretch.count
        if self._baseline is None:
            self._baseline = per_task
            return None
        before = self._baseline
        high, low = max(per_task, before), min(per_task, before)
        if high < DRIFT_FLOOR or high < DRIFT_FACTOR * low:
            return None
        return (
            f"after {now.count} tasks on {self._mode}, the CPU time per task went from "
            f"{duration(before)} to {duration(per_task)} (a {high / max(low, 1e-9):.0f}x change, "
            f"over {DRIFT_FACTOR:.0f}x): the work changed, so the next tasks were measured again"
        )


def async_decision(name: str, requested: int | None) -> Decision:
    """What auto decides for a coroutine function, without measuring: nothing to measure
    (it waits by construction) and nothing else can await it."""
    workers = backend_class("async").workers_for(requested, 0)
    return Decision(
        "async",
        workers,
        [
            f"{name} is an async def function: it runs on an event loop (mode async), "
            f"up to {workers} at once; threads or processes could not await it"
        ],
    )


class AutoRun:
    """A map run whose mode is chosen from its own first tasks."""

    def __init__(
        self,
        runs: RunFactory,
        inputs: Inputs,
        *,
        cpus: int,
        workers: int | None,
        make_bar: Callable[[], Bar | None] | None,
        known: ProbeFigures | None = None,
        remember: Callable[[ProbeFigures], None] | None = None,
    ) -> None:
        self._runs = runs
        self._tasks = inputs.tasks
        self._total = inputs.total
        self._cpus = cpus
        self._workers = workers
        self.stats = runs.stats
        self._make_bar = make_bar
        self._known = known
        self._remember = remember
        #: Every decision of this run: the first, and one per new probe after a change.
        self.decisions: list[Decision] = []
        #: Iterated by the caller (imap): the runs read a bounded number of inputs ahead.
        self._lazy = True

    def __iter__(self) -> Iterator[Any]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Any]]:
        """The results in lists as they arrive, in input order, reading a bounded number
        of inputs ahead (``imap``)."""
        bar = self._make_bar() if self._make_bar is not None else None
        try:
            yield from self._batches(None if bar is None else _SharedBar(bar))
        finally:
            if bar is not None:
                bar.close()

    def collect(self) -> list[Any]:
        """Every result, in order, as a list (``map``)."""
        self._lazy = False
        results: list[Any] = []
        bar = self._make_bar() if self._make_bar is not None else None
        try:
            for batch in self._batches(None if bar is None else _SharedBar(bar)):
                results.extend(batch)
        finally:
            if bar is not None:
                bar.close()
        return results

    def _batches(self, bar: _SharedBar | None) -> Iterator[list[Any]]:
        shared = (lambda: bar) if bar is not None else None
        done = 0  # inputs taken so far; the next run starts at this input index
        figures = self._known
        why_again: str | None = None
        while True:
            if figures is None:
                probed = yield from probe(
                    self._runs,
                    self._tasks,
                    total=None if self._total is None else self._total - done,
                    first_index=done,
                    cpus=self._cpus,
                    progress=shared,
                )
                if probed is None:
                    return
                figures, self._tasks = probed.figures, probed.rest
                done += probed.taken
                if self._remember is not None and reusable(figures, self._cpus):
                    self._remember(figures)
                decision = decide(figures, self._cpus, gil_enabled())
            else:
                # Measured by an earlier map of this function: decide for this map's size.
                total = None if self._total is None else self._total + figures.tasks
                decision = decide(
                    dataclasses.replace(figures, total_tasks=total), self._cpus, gil_enabled()
                )
                decision.reasons.insert(0, "as measured in an earlier map of this function:")
            if why_again is not None:
                decision.reasons.insert(0, why_again)
            self.decisions.append(decision)
            self.stats.set_decisions(list(self.decisions))

            remaining = None if self._total is None else max(0, self._total - done)
            workers = self._workers or decision.workers
            run = self._runs.start(
                decision.mode,
                workers,
                self._tasks,
                total=remaining,
                first_index=done,
                chunksize=self._runs.options.chunksize,
                progress=shared,
            )
            run.lazy = self._lazy
            watch = None
            if len(self.decisions) <= MAX_REPROBES:
                watch = _DriftWatch(run.measured, workers, decision.mode)
            why_again = None
            for batch in run.batches():
                yield batch
                if watch is not None and (why_again := watch.change()) is not None:
                    run.stop_taking()
                    watch = None
            done += run.taken
            if why_again is None:
                return
            figures = None


class FiguresByFunction:
    """The latest probe figures of the last few functions a pool mapped (bounded: a pool
    that maps a new lambda per call must not grow)."""

    #: Functions remembered at most.
    SIZE = 32

    def __init__(self) -> None:
        self._figures: OrderedDict[Any, ProbeFigures] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, fn: Callable[..., Any]) -> ProbeFigures | None:
        try:
            with self._lock:
                return self._figures.get(fn)
        except TypeError:  # an unhashable callable: measured each time
            return None

    def put(self, fn: Callable[..., Any], figures: ProbeFigures) -> None:
        try:
            with self._lock:
                self._figures[fn] = figures
                self._figures.move_to_end(fn)
                while len(self._figures) > self.SIZE:
                    self._figures.popitem(last=False)
        except TypeError:
            pass
