"""profile(fn, sample_inputs): measure a few real tasks and say where the rest should run.

(Named ``profiling`` rather than DESIGN.md's ``profile.py``: a submodule called ``profile``
would shadow the public function ``poolwise.profile`` once anything imported it.)

Probing runs real tasks and never runs one twice: the first tasks on the calling thread
(wall time against the thread's CPU time), then a round on ``cpus()`` threads at once (does
the work scale on threads, i.e. release the GIL?), and pickles one task's arguments and
result (what a process worker would cost). While the first tasks run, ``GilMeter`` asks
the GIL itself whether they hold it; while the thread round runs, ``LoadMeter`` notes how
busy the machine was. When other programs left no idle CPU the thread round cannot tell
"holds the GIL" from "no free CPU", and the GIL meter does (a round on processes, if
enough work is left, where it has no figure) (#14). ``decide.py`` turns those figures
into a mode, a number of workers and the reasons, in words.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from .backends import backend_class
from .backends.base import WorkerOptions
from .chunking import Chunker
from .decide import IO_CPU_SHARE, TINY_TASK, ProbeFigures, decide, wants_process_round
from .gil_meter import GilMeter
from .machine_load import LoadMeter
from .maprun import MAX_READ_AHEAD
from .options import RunOptions, shape_inputs
from .runs import Backends, RunFactory
from .stats import PoolStats
from .system import cpus, gil_enabled

if TYPE_CHECKING:
    import pickle
    from collections.abc import Callable, Generator, Iterable, Iterator

    from .machine_load import RoundLoad
    from .maprun import MapRun
    from .progress import Bar
    from .stats import Measured

__all__ = [
    "PROBE_SECONDS",
    "PROBE_TASKS",
    "ROUND_OVERRUN",
    "ROUND_SHARE",
    "SCALING_MIN_TASK",
    "SCALING_ROUNDS",
    "SCALING_SECONDS",
    "SURELY_HELD",
    "SURE_WAKEUPS",
    "Probed",
    "Profile",
    "pickling_cost",
    "probe",
    "probe_figures",
    "profile",
    "round_scaling",
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
#: The thread round is skipped when at least SURE_WAKEUPS of the GIL meter's wake-ups
#: were measured and at least SURELY_HELD of them waited for the GIL (pure Python measured
#: 0.75-1.0, on 2 busy CPUs too; C code that releases it 0-0.03).
SURE_WAKEUPS = 2
SURELY_HELD = 0.6
#: A thread round takes no more inputs once it has run this many times SCALING_SECONDS...
ROUND_OVERRUN = 2
#: ...nor more than this share of a map's inputs, when their number is known (a guess).
ROUND_SHARE = 0.25
#: Bytes a second a big buffer travels to a process worker: through shared memory since
#: issue #7, where a fresh 64 MB segment costs ~45 ms to fill on 2 cores (the kernel zeroing
#: new pages dominates) and each task's mapping ~4 ms more. A ``share()``d buffer is sent
#: as its name, so it costs nothing here.
TRANSFER_BYTES_PER_SECOND = 1.3e9
#: A serial probe stops early once it has run this long (and at least one task): a slow
#: first task is measured well enough, and probing must not delay the rest (seconds).
PROBE_SECONDS = 0.002
#: Tasks shorter than this are not timed on threads: a round would measure the queue, not
#: the work (seconds; about the threads backend's chunk cost, 3e-5 s, times 3).
SCALING_MIN_TASK = TINY_TASK


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


def scaling_round_size(cpus: int, per_task: float) -> int:
    """Tasks for the round on ``cpus`` threads: whole rounds, about SCALING_SECONDS long,
    at least SCALING_ROUNDS per thread.

    Bounded by time, not by the size of the map: the round's tasks are real tasks, so a
    short map that the round finishes has lost at most SCALING_SECONDS of parallelism, and
    ``profile()`` and auto measure alike whatever the number of inputs (#12).
    """
    wanted = max(SCALING_ROUNDS * cpus, math.ceil(SCALING_SECONDS * cpus / max(per_task, 1e-9)))
    return math.ceil(wanted / cpus) * cpus


def thread_scaling(
    task_cpu_seconds: float, seconds: float, cpu_seconds: float, cpu_share: float
) -> float | None:
    """How many times one thread's rate a round on several threads ran at, ``seconds`` long.

    The work done is the tasks' own CPU time over the share of a task spent on the CPU
    (one thread's seconds of it), whatever the tasks' sizes: a round that took a few big
    tasks is measured as well as one of equal ones. This process's CPU time bounds it too,
    since work that holds the GIL keeps one core busy however many threads wait for it.
    """
    if seconds <= 0:
        return None
    return min(task_cpu_seconds, cpu_seconds) / max(cpu_share, 1e-9) / seconds


def round_scaling(workers: int, per_task: float, share: float, measured: Measured) -> float | None:
    """How many times one thread's rate ``workers`` processes ran at, from the time each
    task of their round took in its worker (the pool's start-up excluded: it is paid once,
    the rate is not).

    A task that waited for a CPU another program held took longer than ``per_task``; the
    rate alone over-states scaling when that one-thread baseline ran slow (a cold first
    task), so the CPU the tasks got bounds it.
    """
    if not measured.count or measured.seconds <= 0:
        return None
    by_rate = workers * per_task / (measured.seconds / measured.count)
    by_cores = workers * (measured.cpu_seconds / measured.seconds) / max(share, 1e-9)
    return min(float(workers), by_rate, by_cores)


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
    load: RoundLoad | None = None,
) -> ProbeFigures:
    """The probe's timings, plus what one task would cost to send to a process."""
    pickle_seconds, pickle_bytes, fn_seconds = pickling_cost(fn, item, result)
    return ProbeFigures(
        round_cpus=None if load is None else load.own_cpus,
        idle_cpus=None if load is None else load.idle_cpus,
        others_cpus=None if load is None else load.others_cpus,
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


@dataclass
class Probed:
    """What a probe measured, and where the inputs it did not run continue."""

    figures: ProbeFigures
    #: Inputs the probe ran (each once; their results were yielded).
    taken: int
    #: The inputs after those.
    rest: Iterator[Any]


def probe(
    runs: RunFactory,
    tasks: Iterator[Any],
    *,
    total: int | None,
    first_index: int,
    cpus: int,
    progress: Callable[[], Bar | None] | None = None,
) -> Generator[list[Any], None, Probed | None]:
    """Run the first tasks to measure them, yielding their results in input order.

    The one probe of ``profile()`` and ``mode="auto"``: the first tasks one at a time on
    the calling thread (stopping after PROBE_TASKS or PROBE_SECONDS), then, unless they
    mostly wait or are tiny, a round on ``cpus`` threads; both are ordinary runs on the
    serial and threads backends, so timeouts, retries and errors behave as in any map.
    ``total`` counts the inputs from ``first_index`` on, when known. Returns None when
    there were no inputs. A task's error is raised after the results before it.
    """
    try:
        head = next(tasks)
    except StopIteration:
        return None
    tasks = itertools.chain((head,), tasks)
    # 1. The first tasks on this thread, one at a time (a slow one is enough): their time
    # and CPU time, from the same clocks every run reads (run_tasks).
    run = runs.start(
        "serial", 1, tasks, total=None, first_index=first_index, chunksize=1, progress=progress
    )
    measured = run.measured
    probed: list[Any] = []
    # Does the task hold the GIL? Asked of the GIL itself (#14); a build running without
    # one has none to ask, and a late wake-up there is only a busy CPU (#16).
    gil = GilMeter() if gil_enabled() else None
    try:
        with gil if gil is not None else contextlib.nullcontext():
            for batch in run.batches():
                probed += batch
                if measured.count >= PROBE_TASKS or measured.seconds >= PROBE_SECONDS:
                    run.stop_taking()
    except Exception:
        yield probed
        raise
    yield probed
    serial_tasks = run.taken
    per_task = measured.seconds / max(1, measured.count)
    share = min(1.0, measured.cpu_seconds / measured.seconds) if measured.seconds > 0 else 1.0

    # 2. A round on cpus threads, unless the tasks mostly wait (threads then anyway).
    scaling: float | None = None
    load: RoundLoad | None = None
    taken = serial_tasks
    # Work the GIL meter caught holding the GIL cannot scale on threads: a round there
    # would only run its tasks one at a time (measured: 0.2-0.3 s of a 2.5 s map).
    held = gil.held_share() if gil is not None and gil.wakeups >= SURE_WAKEUPS else None
    plainly_held = held is not None and held >= SURELY_HELD
    if cpus > 1 and share >= IO_CPU_SHARE and per_task >= SCALING_MIN_TASK and not plainly_held:
        # Its tasks' results are handed over only after the round: it reads ahead too.
        bound = runs.options.buffersize or MAX_READ_AHEAD
        wanted = min(scaling_round_size(cpus, per_task), max(cpus, bound // cpus * cpus))
        if total is not None:
            # Never most of a short map: its later tasks may be far bigger than the first
            # (a map whose big tasks come last would run them all on threads here).
            left = total - serial_tasks
            wanted = min(wanted, max(cpus, math.ceil(left * ROUND_SHARE / cpus) * cpus))
        second = list(itertools.islice(tasks, wanted))
        if len(second) >= cpus:
            rest = iter(second)
            run = runs.start(
                "threads",
                cpus,
                rest,
                total=len(second),
                first_index=first_index + taken,
                chunksize=1,
                progress=progress,
            )
            # The meter first: its first use imports psutil (~40 ms of this thread's CPU),
            # which inside the timed round read as threads not scaling (0.2x, #16).
            meter = LoadMeter()
            started, cpu = time.perf_counter(), time.process_time()
            # Sized from the first tasks; bounded in time too, for when later ones are
            # bigger (a map whose big tasks come last must not run them all here).
            scaled, error = _drain(run, stop_after=SCALING_SECONDS * ROUND_OVERRUN)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            load = meter.stop()
            yield scaled
            if error is not None:
                raise error
            taken += run.taken
            tasks = itertools.chain(rest, tasks)  # what the round did not take
            # The tasks' CPU time and this process's, over wall time: not the tasks' wall
            # times, since tasks of uneven size that ran alone never waited for the GIL.
            scaling = thread_scaling(run.measured.cpu_seconds, seconds, cpu, share)
        else:  # too few to measure: they join the rest
            tasks = itertools.chain(second, tasks)

    item = head if runs.unary else head[0]
    figures = probe_figures(
        runs.fn, item, probed[0], serial_tasks, per_task, share, scaling, cpus, total, load
    )
    if gil is not None:
        figures = dataclasses.replace(
            figures, gil_held_share=gil.held_share(), gil_held_time=gil.held_time_share()
        )
    # 3. The thread round could not tell (no idle CPU): measure processes, if worth it.
    if wants_process_round(figures, cpus, gil_enabled()):
        # read ahead no further than the thread round may (seen: 25 inputs taken under
        # buffersize=4 on a busy machine)
        bound = runs.options.buffersize or MAX_READ_AHEAD
        size = min(scaling_round_size(cpus, per_task), max(cpus, bound // cpus * cpus))
        third = list(itertools.islice(tasks, size))
        if len(third) >= cpus:
            run = runs.start(
                "processes",
                cpus,
                iter(third),
                total=len(third),
                first_index=first_index + taken,
                chunksize=1,
                progress=progress,
            )
            results, error = _drain(run)
            yield results
            if error is not None:
                raise error
            taken += len(third)
            figures = dataclasses.replace(
                figures, process_scaling=round_scaling(cpus, per_task, share, run.measured)
            )
        else:
            tasks = itertools.chain(third, tasks)
    return Probed(figures, taken, tasks)


def _drain(run: MapRun, stop_after: float | None = None) -> tuple[list[Any], BaseException | None]:
    """The run's results, and the error that stopped it (raised later, in input order);
    it takes no more inputs once ``stop_after`` seconds have passed."""
    results: list[Any] = []
    deadline = None if stop_after is None else time.perf_counter() + stop_after
    try:
        for batch in run.batches():
            results.extend(batch)
            if deadline is not None and time.perf_counter() >= deadline:
                run.stop_taking()
    except Exception as exc:  # noqa: BLE001 - raised by the caller after the results before it
        return results, exc
    return results, None


def profile(fn: Callable[[Any], Any], sample_inputs: Iterable[Any]) -> Profile:
    """Run a few of ``sample_inputs`` through ``fn`` to choose a mode for the rest.

    This is ``mode="auto"``'s probe and decision, with nothing run afterwards: a few inputs
    run one by one, then (for work that computes) a short round on ``cpus()`` threads, each
    input once and never more than the sample. It decides as auto would for a map over
    ``sample_inputs``. The figures and the rules they triggered are in ``reasons``.

    .. versionadded:: 0.1
    """
    if not callable(fn):
        raise TypeError(f"fn={fn!r} is not callable; pass a function (or any callable)")
    sample = list(sample_inputs)
    if not sample:
        raise ValueError("sample_inputs is empty; profile() needs at least one input to run")
    usable = cpus()
    inputs = shape_inputs(fn, (sample,), star=False)
    backends = Backends(WorkerOptions())
    runs = RunFactory(backends, fn, inputs, RunOptions(), PoolStats())
    try:
        measuring = probe(runs, inputs.tasks, total=len(sample), first_index=0, cpus=usable)
        while True:
            try:
                next(measuring)
            except StopIteration as end:
                probed: Probed = end.value
                break
    finally:
        backends.shutdown(wait=True, cancel_pending=True)
    figures = probed.figures
    decision = decide(figures, usable, gil_enabled())
    tasks_left = max(1, len(sample) - probed.taken)
    chunker = Chunker(
        decision.workers, backend_class(decision.mode).chunk_overhead, total=tasks_left
    )
    chunker.observe(figures.tasks, figures.seconds_per_task * figures.tasks)
    chunksize = chunker.next_size() if decision.mode != "serial" else max(1, tasks_left)
    return Profile(
        mode=decision.mode,
        workers=decision.workers,
        chunksize=chunksize,
        reasons=decision.reasons,
        figures={**asdict(figures), "cpus": usable, "gil_enabled": gil_enabled()},
        tasks_run=probed.taken,
    )
