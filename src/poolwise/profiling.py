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

import cloudpickle

from .chunking import Chunker
from .decide import ProbeFigures, decide
from .system import cpus, gil_enabled

if TYPE_CHECKING:
    import pickle
    from collections.abc import Callable, Iterable

__all__ = [
    "PROBE_SECONDS",
    "PROBE_TASKS",
    "SCALING_MIN_TASK",
    "SCALING_ROUNDS",
    "SCALING_SECONDS",
    "Profile",
    "pickling_cost",
    "probe_figures",
    "profile",
    "scaling_round_size",
    "thread_scaling",
]

#: Tasks timed one by one on the calling thread (a guess: enough to average out one
#: slow first call, such as an import inside the function).
PROBE_TASKS = 3
#: Tasks per thread in the scaling round at least (a guess: 3 keeps an uneven finish
#: small)...
SCALING_ROUNDS = 1
#: ...and enough for the round to last this long, when the sample has them: shorter rounds
#: let one scheduler hiccup decide (seen: 1.67x-2.05x for hashlib at 45 ms on 2 cores).
SCALING_SECONDS = 0.05
#: Bytes a second a big buffer travels to a process worker: through shared memory since
#: issue #7, where a fresh 64 MB segment costs ~45 ms to fill on 2 cores (the kernel zeroing
#: new pages dominates) and each task's mapping ~4 ms more. A ``share()``d buffer is sent
#: as its name, so it costs nothing here.
TRANSFER_BYTES_PER_SECOND = 1.3e9
#: A serial probe stops early once it has run this long (and at least one task): a slow
#: first task is measured well enough, and probing must not delay the rest (seconds).
PROBE_SECONDS = 0.005
#: Tasks shorter than this are not timed on threads: a round would measure the queue, not
#: the work (seconds; about the threads backend's chunk cost, 3e-5 s, times 3).
SCALING_MIN_TASK = 1e-4
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


def scaling_round_size(cpus: int, per_task: float, remaining: int | None) -> int:
    """Tasks for the round on ``cpus`` threads: whole rounds, about SCALING_SECONDS long,
    at least SCALING_ROUNDS per thread, and no more than a quarter of what remains."""
    wanted = max(SCALING_ROUNDS * cpus, math.ceil(SCALING_SECONDS * cpus / max(per_task, 1e-9)))
    if remaining is not None:
        wanted = min(wanted, max(cpus, remaining // 4))
    return math.ceil(wanted / cpus) * cpus


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


def thread_scaling(
    tasks: int, seconds: float, cpu_seconds: float, per_task: float, cpu_share: float
) -> float | None:
    """How many times one thread's rate ``tasks`` ran at in ``seconds`` on several threads.

    The rate alone over-states it when the one-thread baseline ran slow (a busy machine):
    the cores the process kept busy (CPU seconds over wall seconds, over the share of a
    task spent on the CPU) bound it, since work that holds the GIL keeps one core busy
    however many threads wait for it.
    """
    if seconds <= 0:
        return None
    by_rate = (tasks / seconds) * per_task
    by_cores = cpu_seconds / seconds / max(cpu_share, 1e-9)
    return min(by_rate, by_cores)


def _timed_on_threads(
    fn: Callable[[Any], Any], inputs: list[Any], threads: int
) -> tuple[float, float]:
    """Wall and process CPU seconds to run ``inputs`` on ``threads`` threads, each once."""
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
    began, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began, time.process_time() - cpu


def _pickle_seconds(obj: object) -> tuple[float, int]:
    """Seconds and bytes to send ``obj`` to a process, without copying its big buffers.

    Protocol 5 hands large buffers (NumPy arrays, bytes-likes) to a callback instead of
    copying them, so measuring a 64 MB array costs microseconds; their bytes are charged at
    TRANSFER_BYTES_PER_SECOND instead.
    """
    buffers: list[pickle.PickleBuffer] = []
    started = time.perf_counter()
    header = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    seconds = time.perf_counter() - started
    size = len(header) + sum(memoryview(buffer).nbytes for buffer in buffers)
    # dumps here, loads there (about as long again), plus the big buffers' bytes
    return 2 * seconds + (size - len(header)) / TRANSFER_BYTES_PER_SECOND, size


def pickling_cost(
    fn: object, item: object, result: object
) -> tuple[float | None, int, float | None]:
    """Seconds and bytes to send one task's argument and result to a process and back,
    and seconds to send the function; None where something cannot be pickled."""
    try:
        fn_seconds, _ = _pickle_seconds(fn)
        item_seconds, item_bytes = _pickle_seconds(item)
        result_seconds, result_bytes = _pickle_seconds(result)
    except Exception:  # noqa: BLE001 - anything that fails to pickle means "cannot travel"
        return None, 0, None
    return item_seconds + result_seconds, item_bytes + result_bytes, fn_seconds


def probe_figures(
    fn: object,
    item: object,
    result: object,
    tasks: int,
    per_task: float,
    share: float,
    scaling: float | None,
    threads: int,
    total: int | None,
) -> ProbeFigures:
    """The probe's timings, plus what one task would cost to send to a process."""
    pickle_seconds, pickle_bytes, fn_seconds = pickling_cost(fn, item, result)
    return ProbeFigures(
        tasks=tasks,
        seconds_per_task=per_task,
        cpu_share=share,
        thread_scaling=scaling,
        scaling_threads=threads,
        pickle_seconds=pickle_seconds,
        pickle_bytes=pickle_bytes,
        total_tasks=total,
        function_pickle_seconds=fn_seconds,
    )


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
    wanted = scaling_round_size(usable, per_task, None)
    scaling_inputs = sample[ran : ran + wanted]
    if usable > 1 and len(scaling_inputs) >= usable and per_task >= SCALING_MIN_TASK:
        threads = min(usable, len(scaling_inputs))
        seconds, cpu_seconds = _timed_on_threads(fn, scaling_inputs, threads)
        ran += len(scaling_inputs)
        scaling = thread_scaling(len(scaling_inputs), seconds, cpu_seconds, per_task, share)

    figures = probe_figures(
        fn, first[0], results[0], len(first), per_task, share, scaling, threads, len(sample)
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
