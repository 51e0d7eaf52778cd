"""poolwise beside its peers: wall time of the same work on every pool library, one run each.

What it measures: for each workload, each peer creates its pool (or executor), maps one
module-level function over the inputs, collects the results and shuts the pool down. All
of that is inside the timed region (``time.perf_counter``), so worker start-up counts.
poolwise runs through ``poolwise.Pool(mode, workers)`` rather than the warm
``poolwise.map``, so it pays its start-up on every measurement like everyone else.
Every peer uses its own defaults (chunk size, start method, data transport); only the
number of workers is set: ``poolwise.cpus()`` for CPU work, 64 for the sleeps. Costs paid
once per program (importing the libraries, starting the forkserver process) are paid before
any timing and printed at the top. The task functions live in this module, which imports
only the standard library at the top, so spawn/forkserver workers re-import it cheaply.

Workloads:
    tiny       20,000 tasks of ``x -> x``: per-task overhead and chunking.
    primes     32 pure-Python prime counts (~75 ms each): CPU-bound work that holds the GIL.
    sha256     48 tasks of sha256 over 4 MiB, 8 rounds: CPU work that releases the GIL.
    sleeps     400 sleeps of 10 ms on 64 workers: I/O-like waiting.
    numpy-sum  16 sums over one 64 MiB NumPy array passed to every task: data transport
               (poolwise-processes-share puts it in shared memory first, copy timed).
    bigresult  16 tasks each returning a new 16 MiB NumPy array: results on the way back.
    uneven     60 small then 4 big prime counts: balance at the end of a map.
    skewed     160 prime counts with lognormal limits: heavy-tailed task times.

How to read it: one table per workload, one row per peer. ``seconds`` is the wall time of
one run; ``x best`` is that time divided by the fastest correct peer's (1.00 is the best;
2.00 took twice as long). Every result list is compared with the expected one: a fast wrong
answer shows ``WRONG`` and is never the best; a peer that raised or is not installed shows
the error instead of a time; warnings a peer logged during its run are shown in its note.
One run per cell on a shared machine is noisy: treat differences under ~20% as ties.
``--repeat N`` keeps the fastest of N runs per cell (each with a fresh pool). Use it for
bigresult: the first peer to allocate its 256 MiB of results pays for growing the heap
(seen: 0.3 s against 0.03 s for the same peer run later), whichever peer that is.

    uv run --group bench python benchmarks/peers.py [--only tiny,primes] \
        [--peers poolwise-processes,mpire] [--quick] [--repeat N] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import inspect
import json
import logging
import multiprocessing
import os
import platform
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import Console

    Task = Callable[[Any], Any]
    Runner = Callable[[Task, list[Any], int], Sequence[Any]]

SLEEP_SECONDS = 0.01
IO_WORKERS = 64
QUICK_IO_WORKERS = 16
MIB = 1 << 20

# -- task functions (module level, so every peer can pickle them by reference) ------------


def identity(x: int) -> int:
    return x


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    divisor = 3
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 2
    return True


def count_primes(limit: int) -> int:
    """How many primes are below ``limit``, by trial division (slow on purpose)."""
    return sum(1 for n in range(limit) if _is_prime(n))


@dataclass(frozen=True)
class HashJob:
    """One sha256 task. Not a tuple: mpire would unpack a tuple into several arguments."""

    seed: int
    size: int
    rounds: int


def sha256_rounds(job: HashJob) -> str:
    """sha256 over ``job.rounds`` copies of a ``job.size``-byte block (hashlib drops the GIL)."""
    block = bytes([job.seed % 256]) * job.size
    digest = hashlib.sha256()
    for _ in range(job.rounds):
        digest.update(block)
    return digest.hexdigest()


def sleep_then_return(x: int) -> int:
    time.sleep(SLEEP_SECONDS)
    return x


def array_sum(array: Any) -> int:
    return int(array.sum())


@dataclass(frozen=True)
class ArrayJob:
    """One bigresult task (not a tuple: mpire would unpack it into two arguments)."""

    value: int
    length: int


def filled_array(job: ArrayJob) -> Any:
    """A new float64 array of ``job.length`` items, each ``job.value``."""
    import numpy as np

    return np.full(job.length, job.value, dtype=np.float64)


# -- workloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    fn: Task
    inputs: list[Any]
    expected: list[Any]
    workers: int
    what: str


def primes_below(limit: int) -> list[int]:
    """Prime counts below every n <= limit, by a sieve: the check for ``count_primes``."""
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\0\0"
    for n in range(2, int(limit**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit + 1, n)))
    counts, running = [0] * (limit + 1), 0
    for n in range(limit + 1):
        counts[n] = running
        running += sieve[n]
    return counts


def build_tiny(quick: bool, cpus: int) -> Workload:
    inputs = list(range(2_000 if quick else 20_000))
    return Workload("tiny", identity, inputs, list(inputs), cpus, f"{len(inputs):,} x -> x")


def build_primes(quick: bool, cpus: int) -> Workload:
    base, step, tasks = (30_000, 100, 8) if quick else (100_000, 250, 32)
    limits = [base + step * i for i in range(tasks)]
    counts = primes_below(max(limits))
    expected = [counts[limit] for limit in limits]
    what = f"{tasks} prime counts below ~{base:,} (trial division)"
    return Workload("primes", count_primes, limits, expected, cpus, what)


def build_sha256(quick: bool, cpus: int) -> Workload:
    size, rounds, tasks = (1 * MIB, 4, 8) if quick else (4 * MIB, 8, 48)
    jobs = [HashJob(seed, size, rounds) for seed in range(tasks)]
    expected = [hashlib.sha256(bytes([job.seed % 256]) * size * rounds).hexdigest() for job in jobs]
    what = f"{tasks} x sha256 over {size // MIB} MiB x {rounds} rounds"
    return Workload("sha256", sha256_rounds, jobs, expected, cpus, what)


def build_sleeps(quick: bool, cpus: int) -> Workload:
    tasks, workers = (40, QUICK_IO_WORKERS) if quick else (400, IO_WORKERS)
    inputs = list(range(tasks))
    what = f"{tasks} sleeps of {SLEEP_SECONDS * 1000:.0f} ms"
    return Workload("sleeps", sleep_then_return, inputs, list(inputs), workers, what)


def build_numpy_sum(quick: bool, cpus: int) -> Workload:
    import numpy as np

    tasks, megabytes = (4, 6.4) if quick else (16, 64)
    length = int(megabytes * MIB) // 8
    array = np.arange(length, dtype=np.int64)
    total = length * (length - 1) // 2  # exact: int64 sums of arange cannot round
    what = f"{tasks} sums over one {megabytes:g} MiB int64 array (same object each task)"
    return Workload("numpy-sum", array_sum, [array] * tasks, [total] * tasks, cpus, what)


def build_bigresult(quick: bool, cpus: int) -> Workload:
    """Big results: each task returns a new 16 MiB array."""
    tasks, megabytes = (4, 4) if quick else (16, 16)
    jobs = [ArrayJob(value, megabytes * MIB // 8) for value in range(tasks)]
    what = f"{tasks} tasks each returning a new {megabytes} MiB float64 array"
    return Workload(
        "bigresult", filled_array, jobs, [filled_array(job) for job in jobs], cpus, what
    )


def build_uneven(quick: bool, cpus: int) -> Workload:
    """Many small tasks, then a few big ones last: the shape static chunking gets wrong."""
    small, big, n_small, n_big = (2_000, 40_000, 20, 2) if quick else (2_000, 150_000, 60, 4)
    limits = [small] * n_small + [big] * n_big
    counts = primes_below(big)
    what = f"{n_small} x {small:,} then {n_big} x {big:,} prime counts (big ones last)"
    return Workload("uneven", count_primes, limits, [counts[n] for n in limits], cpus, what)


def build_skewed(quick: bool, cpus: int) -> Workload:
    """Heavy-tailed task times: prime counts whose limits are lognormal (seeded)."""
    import random

    rng = random.Random(13)
    tasks, median = (40, 5_000) if quick else (160, 8_000)
    limits = [min(400_000, int(median * rng.lognormvariate(0, 1.2))) for _ in range(tasks)]
    counts = primes_below(max(limits))
    what = f"{tasks} prime counts, limits lognormal around {median:,} (max {max(limits):,})"
    return Workload("skewed", count_primes, limits, [counts[n] for n in limits], cpus, what)


WORKLOADS: dict[str, Callable[[bool, int], Workload]] = {
    "tiny": build_tiny,
    "primes": build_primes,
    "sha256": build_sha256,
    "sleeps": build_sleeps,
    "numpy-sum": build_numpy_sum,
    "bigresult": build_bigresult,
    "uneven": build_uneven,
    "skewed": build_skewed,
}

# -- peers: create, map, shut down; each imports its library only when it runs ------------


def poolwise_runner(
    mode: Literal["auto", "serial", "threads", "processes"], start_method: str | None = None
) -> Runner:
    def run(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
        import poolwise

        # auto chooses its own number of workers (threads for waiting work go past the CPUs)
        count = None if mode == "auto" else workers
        with poolwise.Pool(mode, count, start_method=start_method) as pool:
            return pool.map(fn, inputs)

    return run


def run_poolwise_shared(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
    """poolwise processes with each distinct array input put in shared memory first (the
    copy into it is timed too)."""
    import poolwise

    shares: dict[int, Any] = {}
    for item in inputs:
        if id(item) not in shares:
            shares[id(item)] = poolwise.share(item)
    try:
        with poolwise.Pool("processes", workers) as pool:
            return pool.map(fn, [shares[id(item)] for item in inputs])
    finally:
        for shared in shares.values():
            shared.close()


def run_cf_threads(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as executor:
        return list(executor.map(fn, inputs))


def run_cf_processes(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as executor:
        return list(executor.map(fn, inputs))


def run_mp_pool(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
    pool = multiprocessing.Pool(workers)
    try:
        results = pool.map(fn, inputs)
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
    return results


def _shutdown_loky() -> None:
    """joblib keeps loky's executor for reuse; stop it so start-up counts in every run."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def joblib_runner(
    backend: Literal["loky", "threading"],
) -> Runner:
    def run(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
        from joblib import Parallel, delayed

        try:
            return list(Parallel(n_jobs=workers, backend=backend)(delayed(fn)(x) for x in inputs))
        finally:
            if backend == "loky":
                _shutdown_loky()

    return run


def run_mpire(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
    from mpire import WorkerPool

    with WorkerPool(n_jobs=workers) as pool:
        return list(pool.map(fn, inputs))


def run_pebble_threads(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
    from pebble import ThreadPool

    with ThreadPool(max_workers=workers) as pool:
        return list(pool.map(fn, inputs).result())


def run_pebble_processes(fn: Task, inputs: list[Any], workers: int) -> Sequence[Any]:
    from pebble import ProcessPool

    with ProcessPool(max_workers=workers) as pool:
        return list(pool.map(fn, inputs).result())


@dataclass(frozen=True)
class Peer:
    run: Runner
    #: How its workers start: "in-caller", "threads", "loky", or whose default start
    #: method it uses ("poolwise", "stdlib", "mpire"), resolved by ``start_methods()``.
    start: str
    serial: bool = False
    #: The workloads it applies to (None: all).
    workloads: tuple[str, ...] | None = None


PEERS: dict[str, Peer] = {
    "poolwise-auto": Peer(poolwise_runner("auto"), "auto"),
    "poolwise-serial": Peer(poolwise_runner("serial"), "in-caller", serial=True),
    "poolwise-threads": Peer(poolwise_runner("threads"), "threads"),
    "poolwise-processes": Peer(poolwise_runner("processes"), "poolwise"),
    # the same start method as the stdlib's default peers, to tell method from overhead
    "poolwise-processes-fork": Peer(poolwise_runner("processes", "fork"), "fork"),
    # the array in shared memory with poolwise.share(), copy included in the time
    "poolwise-processes-share": Peer(run_poolwise_shared, "poolwise", workloads=("numpy-sum",)),
    "cf-threads": Peer(run_cf_threads, "threads"),
    "cf-processes": Peer(run_cf_processes, "stdlib"),
    "mp-pool": Peer(run_mp_pool, "stdlib"),
    "joblib-loky": Peer(joblib_runner("loky"), "loky"),
    "joblib-threading": Peer(joblib_runner("threading"), "threads"),
    "mpire": Peer(run_mpire, "mpire"),
    "pebble-threads": Peer(run_pebble_threads, "threads"),
    "pebble-processes": Peer(run_pebble_processes, "stdlib"),
}


def mpire_start_method() -> str:
    try:
        from mpire import WorkerPool
    except ImportError:
        return "?"
    return str(inspect.signature(WorkerPool).parameters["start_method"].default)


def poolwise_start_method() -> str:
    from poolwise.system import default_start_method  # not public API; fine in-repo

    return default_start_method()


def start_methods() -> dict[str, str]:
    """Each peer's ``start`` kind -> what it means on this machine."""
    return {
        "in-caller": "in-caller",
        "threads": "threads",
        "fork": "fork",
        "auto": "measured",
        "loky": "loky",
        "poolwise": poolwise_start_method(),
        "stdlib": multiprocessing.get_start_method(),
        "mpire": mpire_start_method(),
    }


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Result:
    workload: str
    peer: str
    workers: int
    start: str
    tasks: int
    seconds: float | None = None
    ratio: float | None = None
    error: str | None = None
    #: Warnings or errors the peer logged during its run (its results were still right).
    logged: str | None = None


class LogCollector(logging.Handler):
    """Catches what peers log (WARNING and up) during a run, for the row's note."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")

    def summary(self) -> str | None:
        if not self.messages:
            return None
        return f"logged {len(self.messages)}x, first: {self.messages[0]}"[:160]


def _same(got: object, want: object) -> bool:
    try:
        if type(want).__name__ == "ndarray":
            import numpy as np

            return bool(np.array_equal(got, want))
        return bool(got == want)
    except Exception:
        return False


def check(results: Sequence[Any], expected: list[Any]) -> str | None:
    """None when ``results`` equal ``expected`` in order, else what is wrong."""
    results = list(results)
    if len(results) != len(expected):
        return f"WRONG: {len(results)} results for {len(expected)} tasks"
    for index, (got, want) in enumerate(zip(results, expected, strict=True)):
        if not _same(got, want):
            return f"WRONG: result #{index} is {got!r:.40}, expected {want!r:.40}"
    return None


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(exc, ModuleNotFoundError):
        return f"not installed: {first}"
    return f"{type(exc).__name__}: {first}"[:200]


def measure(workload: Workload, name: str, start: str, repeat: int = 1) -> Result:
    """The fastest of ``repeat`` timed runs, each one: create the pool, map, shut it down;
    then check the results (the first error is kept)."""
    best = _measure_once(workload, name, start)
    for _ in range(repeat - 1):
        if best.error is not None:
            break
        again = _measure_once(workload, name, start)
        if again.error is not None or (again.seconds or 0) < (best.seconds or 0):
            best = again
    return best


def _measure_once(workload: Workload, name: str, start: str) -> Result:
    """One timed run: create the pool, map, shut it down; then check the results."""
    peer = PEERS[name]
    workers = 1 if peer.serial else workload.workers
    result = Result(workload.name, name, workers, start, len(workload.inputs))
    gc.collect()
    collector = LogCollector()
    logging.getLogger().addHandler(collector)
    started = time.perf_counter()
    try:
        output = peer.run(workload.fn, workload.inputs, workload.workers)
        result.seconds = time.perf_counter() - started
        result.error = check(output, workload.expected)
    except Exception as exc:
        result.error = short_error(exc)
    finally:
        logging.getLogger().removeHandler(collector)
    result.logged = collector.summary()
    return result


_POOLWISE_BACKENDS = tuple(
    f"poolwise.backends.{name}" for name in ("serial", "threads", "processes")
)


def prepare() -> dict[str, float]:
    """Pay the once-per-program costs before any timing: library imports, the forkserver.

    Returns their seconds, for the facts at the top. Failures are left for the peer's rows.
    """
    costs: dict[str, float] = {}
    # poolwise.pool and the backends: what `import poolwise` defers until the first pool
    modules = ("poolwise", "poolwise.pool", *_POOLWISE_BACKENDS, "concurrent.futures")
    for module in (*modules, "joblib", "mpire", "pebble"):
        started = time.perf_counter()
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        costs[f"import {module}"] = time.perf_counter() - started
    if "forkserver" in {poolwise_start_method(), multiprocessing.get_start_method()}:
        started = time.perf_counter()
        boot_forkserver()
        costs["start the forkserver (and one child)"] = time.perf_counter() - started
    return costs


def boot_forkserver() -> None:
    """Start the shared forkserver through poolwise, as a poolwise program's first pool does.

    poolwise asks the forkserver to preload its worker module when it starts it; a
    forkserver started by someone else first serves poolwise workers that import it
    themselves (~40 ms of CPU each).
    """
    import poolwise

    with poolwise.Pool("processes", 1) as pool:
        pool.submit(time.sleep, 0).result()


def add_ratios(results: list[Result]) -> None:
    """Each correct time divided by the best correct time of the workload."""
    times = [r.seconds for r in results if r.seconds is not None and r.error is None]
    if not times:
        return
    best = min(times)
    for r in results:
        if r.seconds is not None and r.error is None:
            r.ratio = r.seconds / best if best > 0 else None


# -- output -------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(quick: bool, costs: dict[str, float]) -> dict[str, Any]:
    import poolwise

    return {
        "poolwise.cpus()": poolwise.cpus(),
        "os.cpu_count()": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "start methods": {
            "poolwise": poolwise_start_method(),
            "stdlib default (cf-processes, mp-pool, pebble-processes)": (
                multiprocessing.get_start_method()
            ),
            "mpire default": mpire_start_method(),
            "joblib-loky": "loky (spawn-like)",
        },
        "versions": {
            name: _version(name) for name in ("poolwise", "joblib", "mpire", "pebble", "numpy")
        },
        "once-per-program costs, paid before timing": {
            what: f"{seconds:.3f} s" for what, seconds in costs.items()
        },
        "quick": quick,
    }


def print_facts(console: Console, facts: dict[str, Any]) -> None:
    console.rule("[bold]poolwise vs peers")
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        console.print(f"[dim]{key}:[/dim] {value}")


def print_table(console: Console, workload: Workload, results: list[Result]) -> None:
    from rich.table import Table

    title = f"{workload.name}: {workload.what}, {workload.workers} workers"
    table = Table(title=title, title_justify="left")
    table.add_column("peer")
    table.add_column("workers", justify="right")
    table.add_column("start")
    table.add_column("seconds", justify="right")
    table.add_column("x best", justify="right")
    table.add_column("note", overflow="fold")
    for r in results:
        seconds = "-" if r.seconds is None else f"{r.seconds:.4f}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        style = "bold green" if r.ratio == 1.0 else ("red" if r.error else None)
        note = "; ".join(text for text in (r.error, r.logged) if text)
        table.add_row(r.peer, str(r.workers), r.start, seconds, ratio, note, style=style)
    console.print(table)


# -- command line -------------------------------------------------------------------------


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        type=lambda text: _names(text, list(WORKLOADS), "workload"),
        default=list(WORKLOADS),
        help=f"comma-separated workloads (default: all): {','.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--peers",
        type=lambda text: _names(text, list(PEERS), "peer"),
        default=list(PEERS),
        help=f"comma-separated peers (default: all): {','.join(PEERS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="~10x fewer tasks, smaller data, 16 sleep workers: a smoke run of seconds",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="time each cell N times (a fresh pool each time) and keep the fastest",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    return parser.parse_args(argv)


def run_workload(
    console: Console,
    workload: Workload,
    names: list[str],
    starts: dict[str, str],
    repeat: int = 1,
) -> list[Result]:
    results = []
    for name in names:
        applies = PEERS[name].workloads
        if applies is not None and workload.name not in applies:
            continue
        with console.status(f"{workload.name}: {name}"):
            results.append(measure(workload, name, starts[PEERS[name].start], repeat))
    add_ratios(results)
    print_table(console, workload, results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console.width = 120  # logs and pipes: keep each table row on one line
    facts = machine_facts(args.quick, prepare())
    import poolwise  # imported (and timed) by prepare()

    print_facts(console, facts)
    starts = start_methods()
    cpus = poolwise.cpus()
    results: list[Result] = []
    for name in args.only:
        try:
            workload = WORKLOADS[name](args.quick, cpus)
        except Exception as exc:
            console.print(f"[red]{name}: could not build the workload: {short_error(exc)}")
            continue
        results += run_workload(console, workload, args.peers, starts, args.repeat)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"machine": facts, "results": [asdict(r) for r in results]}, file, indent=2)
        console.print(f"[dim]wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
