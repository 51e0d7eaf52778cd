"""profile(fn, sample_inputs): measure a few real tasks and say where the rest should run.

(Named ``profiling`` rather than DESIGN.md's ``profile.py``: a submodule called ``profile``
would shadow the public function ``poolwise.profile`` once anything imported it.)

Probing runs real tasks and never runs one twice: the first tasks on the calling thread
(wall time against the thread's CPU time), then a round on ``cpus()`` threads at once (does
the work scale on threads, i.e. release the GIL?), and pickles one task's arguments and
result (what a process worker would cost). ``decide.py`` turns those figures into a mode,
a number of workers and the reasons, in words.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .chunking import Chunker
from .decide import ProbeFigures, decide
from .system import cpus, gil_enabled
from .transport import dumps

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["PROBE_TASKS", "SCALING_ROUNDS", "Profile", "profile"]

#: Tasks timed one by one on the calling thread (a guess: enough to average out one
#: slow first call, such as an import inside the function).
PROBE_TASKS = 3
#: Tasks per thread in the scaling round at least (a guess: 3 keeps an uneven finish
#: small)...
SCALING_ROUNDS = 3
#: ...and enough for the round to last this long, when the sample has them: shorter rounds
#: let one scheduler hiccup decide (seen: 1.67x-2.05x for hashlib at 45 ms on 2 cores).
SCALING_SECONDS = 0.15
#: Fixed cost of one chunk per mode, for sizing chunks (see each backend).
_CHUNK_OVERHEAD = {"serial": 1e-6, "threads": 3e-5, "processes": 3e-4}


@dataclass
class Profile:
    """What ``profile()`` measured and chose.

    Attributes:
        mode: where the rest of the work should run.
        workers: how many workers.
        chunksize: tasks per chunk for that mode.
        reasons: each measured figure and the rule it triggered, in words.
        figures: the measurements (CPU share, scaling on threads, pickling cost...).
        tasks_run: how many of the sample's inputs ran to measure.

    .. versionadded:: 0.1
    """

    mode: str
    workers: int
    chunksize: int
    reasons: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    tasks_run: int = 0

    def __str__(self) -> str:
        head = f"mode {self.mode}, {self.workers} workers, chunksize {self.chunksize}"
        return "\n".join([head, *(f"- {reason}" for reason in self.reasons)])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timed_serially(
    fn: Callable[[Any], Any], inputs: list[Any]
) -> tuple[list[float], float, list[Any]]:
    """Each task's wall time, their total CPU time on this thread, and their results."""
    walls = []
    cpu = 0.0
    results = []
    for item in inputs:
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        results.append(fn(item))
        walls.append(time.perf_counter() - wall_start)
        cpu += time.thread_time() - cpu_start
    return walls, cpu, results


def _timed_on_threads(fn: Callable[[Any], Any], inputs: list[Any], threads: int) -> float:
    """Wall seconds to run ``inputs`` on ``threads`` threads, each task exactly once."""
    lock = threading.Lock()
    queue = list(reversed(inputs))
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            try:
                fn(item)
            except BaseException as exc:  # noqa: BLE001 - measured work may fail; kept
                errors.append(exc)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began


def _pickling(fn: object, item: object, result: object) -> tuple[float | None, int, float | None]:
    """Seconds and bytes to pickle one task's argument and result, and the function's
    seconds; None where something cannot be pickled."""
    try:
        started = time.perf_counter()
        dumps(fn)
        fn_seconds = time.perf_counter() - started
        started = time.perf_counter()
        size = len(dumps(item)) + len(dumps(result))
        # dumps now, loads on the other side: about as long again
        return 2 * (time.perf_counter() - started), size, fn_seconds
    except Exception:  # noqa: BLE001 - anything that fails to pickle means "cannot travel"
        return None, 0, None


def profile(fn: Callable[[Any], Any], sample_inputs: Iterable[Any]) -> Profile:
    """Run a few of ``sample_inputs`` through ``fn`` to choose a mode for the rest.

    A few inputs run one by one, then a round of about ``SCALING_SECONDS`` on ``cpus()``
    threads (each input once, never more than the sample). The figures and the rules they
    triggered are in ``reasons``.

    .. versionadded:: 0.1
    """
    if not callable(fn):
        raise TypeError(f"fn={fn!r} is not callable; pass a function (or any callable)")
    sample = list(sample_inputs)
    if not sample:
        raise ValueError("sample_inputs is empty; profile() needs at least one input to run")
    usable = cpus()
    first = sample[:PROBE_TASKS]
    walls, cpu, results = _timed_serially(fn, first)
    wall = sum(walls)
    # The median: one slow first call (an import inside fn) must not set the baseline.
    per_task = statistics.median(walls)
    share = min(1.0, cpu / wall) if wall > 0 else 1.0
    ran = len(first)

    scaling: float | None = None
    threads = usable
    wanted = max(SCALING_ROUNDS * usable, math.ceil(SCALING_SECONDS * usable / max(per_task, 1e-9)))
    scaling_inputs = sample[ran : ran + wanted]
    if usable > 1 and len(scaling_inputs) >= usable and per_task > 0:
        threads = min(usable, len(scaling_inputs))
        seconds = _timed_on_threads(fn, scaling_inputs, threads)
        ran += len(scaling_inputs)
        scaling = (len(scaling_inputs) / seconds) / (1.0 / per_task) if seconds > 0 else None

    pickle_seconds, pickle_bytes, fn_seconds = _pickling(fn, first[0], results[0])
    figures = ProbeFigures(
        tasks=len(first),
        seconds_per_task=per_task,
        cpu_share=share,
        thread_scaling=scaling,
        scaling_threads=threads,
        pickle_seconds=pickle_seconds,
        pickle_bytes=pickle_bytes,
        total_tasks=len(sample),
        function_pickle_seconds=fn_seconds,
    )
    decision = decide(figures, usable, gil_enabled())
    tasks_left = max(1, len(sample) - ran)
    chunker = Chunker(decision.workers, _CHUNK_OVERHEAD[decision.mode], total=tasks_left)
    chunker.observe(len(first), wall)
    chunksize = chunker.next_size() if decision.mode != "serial" else max(1, tasks_left)
    return Profile(
        mode=decision.mode,
        workers=decision.workers,
        chunksize=chunksize,
        reasons=decision.reasons,
        figures={**asdict(figures), "cpus": usable, "gil_enabled": gil_enabled()},
        tasks_run=ran,
    )
