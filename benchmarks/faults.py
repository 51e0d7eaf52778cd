"""What faults cost: timeouts, crashes and the price of ``timeout=`` on tiny tasks.

Measures, on this machine, one run each (best of a few for the overhead):

- timeout -> replacement: from a task's deadline to the moment the next task starts on a
  fresh worker (processes: the worker is killed and a new one started; threads: the
  watchdog hands the queue to a replacement thread).
- crash recovery: seconds per crash when every task of a map kills its worker
  (``os._exit``), beside pebble's ProcessPool, which also survives crashes.
  (``ProcessPoolExecutor`` and ``multiprocessing.Pool`` do not: the first crash breaks the
  executor or hangs the pool, so they have no row.)
- the overhead of ``timeout=`` on 20,000 tiny tasks (``x -> x``), per mode.

    uv run --group bench python benchmarks/faults.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import poolwise

TINY_TASKS = 20_000
CRASHES = 20
TIMEOUT = 0.2


def identity(x: int) -> int:
    return x


def started_at() -> float:
    return time.monotonic()


def hang(path: str) -> None:
    Path(path).write_text(repr(time.monotonic()))
    while True:
        pass


def crash(x: int) -> int:
    os._exit(3)


def timeout_to_replacement(mode: str) -> float:
    """Seconds from the deadline of a hung task to the next task starting."""
    with tempfile.TemporaryDirectory() as folder:
        marker = os.path.join(folder, "started")
        with poolwise.Pool(mode, 1, timeout=TIMEOUT) as pool:  # type: ignore[arg-type]
            pool.submit(identity, 0).result()  # the worker is up
            hung = pool.submit(hang, marker)
            following = pool.submit(started_at)
            next_start = following.result(timeout=60)
            hung.exception(timeout=60)
            deadline = float(Path(marker).read_text()) + TIMEOUT
    return next_start - deadline


def poolwise_crash_cost() -> float:
    with poolwise.Pool("processes", poolwise.cpus()) as pool:
        pool.map(identity, range(4))
        started = time.perf_counter()
        futures = [pool.submit(crash, x) for x in range(CRASHES)]
        for future in futures:
            assert isinstance(future.exception(timeout=60), poolwise.WorkerCrashed)
        return (time.perf_counter() - started) / CRASHES


def pebble_crash_cost() -> float | None:
    try:
        from pebble import ProcessPool
    except ImportError:
        return None
    with ProcessPool(max_workers=poolwise.cpus()) as pool:
        pool.map(identity, range(4)).result()
        started = time.perf_counter()
        futures = [pool.schedule(crash, args=(x,)) for x in range(CRASHES)]
        for future in futures:
            assert future.exception(timeout=60) is not None
        return (time.perf_counter() - started) / CRASHES


def tiny_seconds(mode: str, timeout: float | None, repeats: int = 5) -> float:
    best = float("inf")
    with poolwise.Pool(mode, poolwise.cpus()) as pool:  # type: ignore[arg-type]
        pool.map(identity, range(100))
        for _ in range(repeats):
            started = time.perf_counter()
            pool.map(identity, range(TINY_TASKS), timeout=timeout)
            best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    print(f"poolwise.cpus() = {poolwise.cpus()}; timeout = {TIMEOUT} s")
    for mode in ("processes", "threads"):
        lag = timeout_to_replacement(mode)
        print(f"timeout -> next task starts on a replacement ({mode}): {lag * 1e3:.1f} ms")
    ours = poolwise_crash_cost()
    print(f"crash recovery, poolwise processes: {ours * 1e3:.1f} ms per crash")
    theirs = pebble_crash_cost()
    if theirs is not None:
        print(f"crash recovery, pebble ProcessPool: {theirs * 1e3:.1f} ms per crash")
    for mode in ("processes", "threads", "serial"):
        plain = tiny_seconds(mode, None)
        timed = tiny_seconds(mode, 60.0)
        print(
            f"{TINY_TASKS} tiny tasks, {mode}: {plain * 1e3:.1f} ms, with timeout= "
            f"{timed * 1e3:.1f} ms ({(timed / plain - 1) * 100:+.0f}%)"
        )


if __name__ == "__main__":
    main()
