"""How many tasks travel together: sized from measured task times, like joblib's auto batching.

A chunk's fixed cost (the backend's ``chunk_overhead``: a queue hand-off for threads, a
pipe round trip for processes) should stay a small share of the chunk's work, so tiny
tasks travel in large chunks. When the number of inputs is known, chunks shrink as the
inputs left shrink (guided self-scheduling): no chunk is larger than a
``1 / CHUNKS_PER_WORKER`` share of one worker's part of what is left, so the last chunks
are small and no worker is handed the whole tail while the others idle (#13). They do not
shrink below BALANCE_SECONDS of measured work, where a smaller chunk would only add cost.
"""

from __future__ import annotations

import math

from .units import duration

__all__ = [
    "BALANCE_SECONDS",
    "CHUNKS_PER_WORKER",
    "MAX_CHUNK_TASKS",
    "OVERHEAD_SHARE",
    "SETTLED_TASK_SECONDS",
    "Chunker",
]

#: Target share of a chunk's time spent on its fixed cost (1%: a guess that keeps the cost
#: invisible while chunks stay short enough for progress and balance).
OVERHEAD_SHARE = 0.01
#: With a known length, each worker gets at least this many chunks (multiprocessing.Pool
#: uses 4 in its default chunksize), so that uneven tasks still balance.
CHUNKS_PER_WORKER = 4
#: Upper bound on a chunk when the input length is unknown, to keep memory flat.
MAX_CHUNK_TASKS = 10_000
#: Chunks near the end shrink no further than this much measured work (seconds): at worst
#: one worker finishes that much later than the others, while 20,000 tasks of 1 us do not
#: turn into hundreds of chunks (a guess: about 7 processes chunk round trips).
BALANCE_SECONDS = 0.002
#: A task measured alone this long (seconds) is measured well enough: the worker's cost per
#: delivery (~15 us for a first call, more when 64 workers share 2 CPUs) is a small part.
SETTLED_TASK_SECONDS = 0.001


class Chunker:
    """Chooses the size of the next chunk from the task times measured so far.

    Args:
        workers: workers in the pool.
        overhead: the backend's fixed cost per chunk, in seconds.
        total: number of inputs, if known.
        fixed: the caller's ``chunksize``; when set, every chunk has that size.
        limit: an upper bound from elsewhere (``max_tasks_per_worker``).
    """

    def __init__(
        self,
        workers: int,
        overhead: float,
        total: int | None = None,
        fixed: int | None = None,
        limit: int | None = None,
    ) -> None:
        self._fixed = fixed
        self._limit = limit
        self._workers = workers
        self._total = total
        #: Inputs handed out in chunks so far (``took``), for the guided size.
        self._taken = 0
        self._target = overhead / OVERHEAD_SHARE
        cap = MAX_CHUNK_TASKS
        if total is not None:
            cap = max(1, math.ceil(total / (CHUNKS_PER_WORKER * workers)))
        if limit is not None:
            cap = min(cap, limit)
        self._cap = cap
        self._tasks = 0
        self._seconds = 0.0
        #: The same, from deliveries of several tasks only (see ``seconds_per_task``).
        self._batched_tasks = 0
        self._batched_seconds = 0.0
        #: The size chosen last, for the report.
        self.last = fixed or 1

    @property
    def sized(self) -> bool:
        """Whether sizes come from a measurement (or the caller): until then chunks are of
        one task, and a run should not queue many of them."""
        return self._fixed is not None or self._tasks > 0

    @property
    def settled(self) -> bool:
        """Whether sizes can be trusted to fill many workers: the caller fixed them, or a
        delivery of several tasks was measured, or single tasks took long enough
        (``SETTLED_TASK_SECONDS``) that a worker's own cost per delivery cannot hide in
        them."""
        if self._fixed is not None or self._batched_tasks:
            return True
        return bool(self._tasks) and self._seconds / self._tasks >= SETTLED_TASK_SECONDS

    @property
    def seconds_per_task(self) -> float | None:
        """Mean measured time of one task, or None before the first measurement.

        A delivery of one task also times the worker's first call and its own loop, which
        for a task under a microsecond is most of it (measured: ~15 us for ``x -> x``); the
        first chunks of a map are one task each, one per worker, so on 64 workers they
        would make tiny tasks look 30x slower than they are and chunks 30x too small. Once
        deliveries of several tasks are measured, their mean counts when it is lower.
        """
        if not self._tasks:
            return None
        mean = self._seconds / self._tasks
        if self._batched_tasks:
            return min(mean, self._batched_seconds / self._batched_tasks)
        return mean

    def took(self, tasks: int) -> None:
        """Record that a chunk of ``tasks`` inputs was taken (the rest shrinks)."""
        self._taken += tasks

    def observe(self, tasks: int, seconds: float) -> None:
        """Record that ``tasks`` tasks took ``seconds`` of worker time."""
        self._tasks += tasks
        self._seconds += seconds
        if tasks > 1:
            self._batched_tasks += tasks
            self._batched_seconds += seconds

    def explain(self) -> str:
        """Why the last chunk had the size it had, naming the measured figure."""
        if self._fixed is not None:
            return f"chunksize {self.last}: as asked"
        per_task = self.seconds_per_task
        if per_task is None:
            return "chunksize 1: nothing measured yet, so one task at a time"
        took = f"tasks took {duration(per_task)} each"
        wanted = max(1, int(self._target / max(per_task, 1e-9)))
        if self.last >= wanted:
            if wanted == 1:
                return (
                    f"chunksize 1: {took}, more than the {duration(self._target)} a chunk "
                    f"needs to keep its fixed cost under {OVERHEAD_SHARE:.0%}"
                )
            return (
                f"chunksize {self.last}: {took}, so chunks of {self.last} keep a chunk's "
                f"fixed cost near {OVERHEAD_SHARE:.0%} of its time"
            )
        return (
            f"chunksize {self.last}: {took}; chunks of {wanted} would hide a chunk's cost "
            f"best, but larger than {self._cap} would leave some workers idle at the end"
        )

    def next_size(self) -> int:
        if self._fixed is not None:
            size = self._fixed if self._limit is None else min(self._fixed, self._limit)
        elif not self._tasks:
            size = 1  # nothing measured yet: a slow task must not be batched blindly
        else:
            per_task = max(self.seconds_per_task or 0.0, 1e-9)
            size = min(self._guided_cap(per_task), max(1, int(self._target / per_task)))
        self.last = size
        return size

    def _guided_cap(self, per_task: float) -> int:
        """The largest chunk now: a share of what is left, once the length is known."""
        # Splitting for balance below BALANCE_SECONDS of work gains nothing and costs a
        # round trip per chunk: with tiny tasks the cost per task would grow with the
        # number of workers (20,000 tasks on 64 workers: chunks of 78).
        if self._total is None:
            return self._cap
        floor = max(1, int(BALANCE_SECONDS / per_task))
        if self._limit is not None:
            floor = min(floor, self._limit)
        left = max(1, self._total - self._taken)
        guided = math.ceil(left / (CHUNKS_PER_WORKER * self._workers))
        return max(min(self._cap, guided), min(floor, MAX_CHUNK_TASKS))
