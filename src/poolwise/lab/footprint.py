"""Memory footprint: the memory each worker adds, for threads and for processes by start method.

The seed says a process has a large memory footprint and a thread a small one. Measured
here as USS (memory no other process shares: what the worker really adds) and, on Linux,
PSS (shared pages split among the processes that map them), from psutil's
``memory_full_info()``:

- a thread: this process's USS before and after starting N threads that each ran a tiny
  task and now wait (a thread's stack and interpreter state live in this process);
- a process: the sum of the N workers' USS (and PSS), per start method. A forked child
  shares its parent's pages until it writes to them (copy-on-write), so its USS can be
  small; a spawned child is a new interpreter.

- a subinterpreter (Python 3.13+): like a thread, this process's USS before and after N
  interpreters each ran a tiny task (an interpreter has its own modules and objects, so it
  adds more than a thread's stack, and no second process).

Both with the primitives themselves (``threading.Thread``, ``multiprocessing`` ``Process``,
a bare interpreter) and with poolwise pools, whose process and interpreter workers also
import poolwise and cloudpickle.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import select
import threading
import time
from typing import TYPE_CHECKING, Any

from .base import (
    DEPENDS,
    HOLDS,
    NOT_HERE,
    LabSettings,
    Measurement,
    Series,
    Verdict,
    interpreters_unavailable,
    worker_counts,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    import psutil

__all__ = ["EXPERIMENT", "FootprintExperiment"]

#: Most workers per kind: the quick lab stops at 4 (or the usable CPUs, if fewer), the full
#: one goes on to 8 whatever the CPUs, since idle workers need memory, not cores.
QUICK_MAX_WORKERS = 4
FULL_MAX_WORKERS = 8
#: The verdict holds when the lightest process worker adds at least this many times a
#: thread's memory. A guess: "large" against "small" should be an order of magnitude, and 5x
#: leaves room for noise. Measured on 2 cores (Python 3.11, Linux): a thread adds 4 KB (one
#: stack page), a forked process ~2.4 MB, a forkserver one ~3 MB, a spawned one ~7 MB.
HEAVIER_FACTOR = 5.0
#: A thread adds at least one 4 KB page of stack; a smaller (or negative) measured difference
#: is noise in this process's own heap, so ratios divide by no less than this (MB).
THREAD_FLOOR_MB = 4096 / 2**20
#: Seconds each task of a poolwise process pool lasts, so that N tasks submitted together
#: overlap and start N workers (a free worker would otherwise take them all).
POOL_TASK_SECONDS = 0.05
#: Seconds to wait for a worker to start and report (spawn on a loaded machine can be slow).
START_TIMEOUT = 60.0

#: The target of a raw worker process is ``builtins.exec`` of this snippet, so that a spawn
#: or forkserver child does not import the lab: a target defined in this module would
#: charge the lab's own imports (``base``, dataclasses, inspect) to each process, a measured
#: 1.2 MB on a spawn child's ~7 MB. The child runs a tiny task, reports its pid, then waits
#: until the parent sends a word or goes away (EOF), so it never outlives the parent.
_CHILD_SNIPPET = """
import os
sum(range(1000))
conn.send(os.getpid())
try:
    conn.recv()
except EOFError:
    pass
"""

_USS = "MB per worker (USS)"
_PSS = "MB per worker (PSS)"


def _thread_body(ready: threading.Semaphore, stop: threading.Event) -> None:
    """A raw thread's life here: a tiny task, then wait to be stopped."""
    sum(range(1000))
    ready.release()
    stop.wait()


def _pid_after(seconds: float) -> int:
    """A poolwise process pool's task: last ``seconds`` (so tasks overlap), say who ran it."""
    time.sleep(seconds)
    return os.getpid()


def _meet(started_fd: int, release_fd: int) -> int:
    """A poolwise interpreters pool's task: say it started, wait to be released (so N tasks
    run on N workers at once), say which thread ran it (each worker is one thread)."""
    os.write(started_fd, b"!")
    os.read(release_fd, 1)
    return threading.get_ident()


def _memory(process: psutil.Process) -> tuple[float, float | None]:
    """USS and PSS (None where psutil has no PSS: macOS, Windows) of ``process`` in MB."""
    info = process.memory_full_info()
    pss = getattr(info, "pss", None)
    return info.uss / 2**20, None if pss is None else pss / 2**20


def _total(pids: Iterable[int]) -> tuple[float, float | None]:
    """Summed USS and PSS (MB) of the processes ``pids``."""
    import psutil

    uss, pss = 0.0, 0.0
    has_pss = True
    for pid in pids:
        one_uss, one_pss = _memory(psutil.Process(pid))
        uss += one_uss
        if one_pss is None:
            has_pss = False
        else:
            pss += one_pss
    return uss, pss if has_pss else None


#: One sweep: for each worker count, the memory (USS, PSS) its workers added in MB.
_Sweep = dict[int, tuple[float, float | None]]


def _threads_sweep(counts: list[int]) -> _Sweep:
    """This process's added USS/PSS with 1..max(counts) raw threads started and waiting."""
    import psutil

    me = psutil.Process()
    base_uss, base_pss = _memory(me)
    ready = threading.Semaphore(0)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    sweep: _Sweep = {}
    try:
        for count in range(1, max(counts) + 1):
            thread = threading.Thread(target=_thread_body, args=(ready, stop), daemon=True)
            thread.start()
            threads.append(thread)
            if not ready.acquire(timeout=START_TIMEOUT):
                raise RuntimeError(f"a thread did not start within {START_TIMEOUT} s")
            if count in counts:
                uss, pss = _memory(me)
                sweep[count] = _added(uss, base_uss, pss, base_pss)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return sweep


def _added(
    uss: float, base_uss: float, pss: float | None, base_pss: float | None
) -> tuple[float, float | None]:
    if pss is None or base_pss is None:
        return uss - base_uss, None
    return uss - base_uss, pss - base_pss


def _stop_process(process: BaseProcess, conn: Connection) -> None:
    """Tell a raw worker to exit, wait for it, and kill it if it does not go."""
    with contextlib.suppress(OSError):  # it is gone already
        conn.send(None)
    conn.close()
    process.join(timeout=5)
    if process.is_alive():
        process.kill()
        process.join()


def _processes_sweep(method: str, counts: list[int]) -> _Sweep:
    """Summed USS/PSS of 1..max(counts) raw worker processes started with ``method``."""
    from ..backends.processes.popen import worker_process_class

    context: Any = multiprocessing.get_context(method)
    # poolwise's Process classes: multiprocessing's own, except that a spawn child does not
    # re-run the parent's main module, which here is the lab's (the poolwise CLI, pytest),
    # not the user's program. The child imports that small class module instead (measured
    # ~1 MB of a spawn child's ~7 MB USS); fork gets multiprocessing's class unchanged.
    process_class = worker_process_class(method)
    pids: list[int] = []
    sweep: _Sweep = {}
    with contextlib.ExitStack() as cleanup:
        for count in range(1, max(counts) + 1):
            parent_end, child_end = context.Pipe()
            cleanup.callback(parent_end.close)
            with child_end:  # once started, the child holds its own end
                process = process_class(
                    target=exec, args=(_CHILD_SNIPPET, {"conn": child_end}), daemon=True
                )
                process.start()
            cleanup.callback(_stop_process, process, parent_end)
            if not parent_end.poll(START_TIMEOUT):
                raise RuntimeError(f"a {method} process did not start within {START_TIMEOUT} s")
            pids.append(parent_end.recv())
            if count in counts:
                sweep[count] = _total(pids)
    return sweep


def _pool_threads_sweep(counts: list[int]) -> _Sweep:
    """Like ``_threads_sweep``, with the threads of a poolwise pool."""
    import psutil

    import poolwise

    me = psutil.Process()
    base_uss, base_pss = _memory(me)
    sweep: _Sweep = {}
    with poolwise.Pool("threads", max(counts)) as pool:
        for count in counts:
            # ``count`` tasks that wait together make the pool run ``count`` threads.
            ready = threading.Semaphore(0)
            stop = threading.Event()
            futures = [pool.submit(_thread_body, ready, stop) for _ in range(count)]
            try:
                for _ in range(count):
                    if not ready.acquire(timeout=START_TIMEOUT):
                        raise RuntimeError(f"a pool thread did not start in {START_TIMEOUT} s")
                uss, pss = _memory(me)
                sweep[count] = _added(uss, base_uss, pss, base_pss)
            finally:
                stop.set()
            for future in futures:
                future.result()
    return sweep


def _pool_processes_sweep(method: str, counts: list[int]) -> _Sweep:
    """Summed USS/PSS of the workers of a poolwise process pool, grown to each count."""
    import poolwise

    pids: set[int] = set()
    sweep: _Sweep = {}
    with poolwise.Pool("processes", max(counts), start_method=method) as pool:
        for count in counts:
            futures = [pool.submit(_pid_after, POOL_TASK_SECONDS) for _ in range(count)]
            pids.update(future.result() for future in futures)
            # Keyed by the workers that really ran (a free worker may take two tasks).
            sweep[len(pids)] = _total(pids)
    return sweep


def _interpreters_sweep(counts: list[int]) -> _Sweep:
    """This process's added USS/PSS with 1..max(counts) bare interpreters, each having run
    a tiny task (``sum(range(1000))``)."""
    import psutil

    from ..backends.interpreters import primitives

    api = primitives()
    assert not isinstance(api, str), api
    me = psutil.Process()
    base_uss, base_pss = _memory(me)
    made: list[Any] = []
    sweep: _Sweep = {}
    try:
        for count in range(1, max(counts) + 1):
            made.append(api.create())
            failure = api.exec(made[-1], "sum(range(1000))", {})
            if failure is not None:
                raise RuntimeError(f"an interpreter failed its first task: {failure.text}")
            if count in counts:
                uss, pss = _memory(me)
                sweep[count] = _added(uss, base_uss, pss, base_pss)
    finally:
        for interpreter in made:
            api.destroy(interpreter)
    return sweep


def _pool_interpreters_sweep(counts: list[int]) -> _Sweep:
    """This process's added USS/PSS with a poolwise interpreters pool grown to each count.

    The pool's modules are imported here before the baseline, so the figure is what the
    workers add. Each round's tasks meet through pipes (interpreters share no Python
    objects, but file descriptors are the process's): all run at once, on distinct workers.
    """
    import psutil

    import poolwise
    from poolwise.backends import backend_class

    backend_class("interpreters")
    me = psutil.Process()
    base_uss, base_pss = _memory(me)
    threads: set[int] = set()
    sweep: _Sweep = {}
    started_r, started_w = os.pipe()
    release_r, release_w = os.pipe()
    try:
        with poolwise.Pool("interpreters", max(counts)) as pool:
            for count in counts:
                futures = [pool.submit(_meet, started_w, release_r) for _ in range(count)]
                try:
                    for _ in range(count):
                        if not select.select([started_r], [], [], START_TIMEOUT)[0]:
                            raise RuntimeError(
                                f"an interpreter worker did not start in {START_TIMEOUT} s"
                            )
                        os.read(started_r, 1)
                    uss, pss = _memory(me)
                finally:
                    os.write(release_w, b"!" * count)
                threads.update(future.result() for future in futures)
                sweep[len(threads)] = _added(uss, base_uss, pss, base_pss)
    finally:
        for fd in (started_r, started_w, release_r, release_w):
            os.close(fd)
    return sweep


def _forkserver_mb() -> float | None:
    """USS of multiprocessing's forkserver process (started once, shared by every pool)."""
    import psutil

    for child in psutil.Process().children():
        try:
            if any("multiprocessing.forkserver" in part for part in child.cmdline()):
                return _memory(child)[0]
        except psutil.Error:
            continue
    return None


def _counts(settings: LabSettings) -> list[int]:
    if settings.full:
        return worker_counts(min(settings.cpus, FULL_MAX_WORKERS), beyond=FULL_MAX_WORKERS)
    return worker_counts(min(settings.cpus, QUICK_MAX_WORKERS))


class FootprintExperiment:
    """Memory added per worker, per kind of worker, against the number of workers."""

    key = "memory-footprint"
    row = "Memory footprint"
    claim = "Processes have a large memory footprint; threads a small one"

    def run(self, settings: LabSettings) -> Measurement:
        counts = _counts(settings)
        methods = [
            m
            for m in multiprocessing.get_all_start_methods()
            if m in ("fork", "spawn", "forkserver")
        ]
        sweeps: dict[str, Callable[[], _Sweep]] = {}
        # poolwise first, as in the starting-time row: a poolwise program's first pool
        # starts the forkserver (and has it preload poolwise's worker module).
        for method in methods:
            sweeps[f"poolwise processes pool ({method})"] = functools.partial(
                _pool_processes_sweep, method, counts
            )
        sweeps["poolwise threads pool"] = functools.partial(_pool_threads_sweep, counts)
        measurement = Measurement()
        unavailable = interpreters_unavailable()
        if unavailable is None:
            sweeps["poolwise interpreters pool"] = functools.partial(
                _pool_interpreters_sweep, counts
            )
        else:
            measurement.notes.append(unavailable)
        for method in methods:
            sweeps[f"process ({method})"] = functools.partial(_processes_sweep, method, counts)
        sweeps["thread"] = functools.partial(_threads_sweep, counts)
        if unavailable is None:
            sweeps["interpreter"] = functools.partial(_interpreters_sweep, counts)

        figures = measurement.figures
        for kind, sweep_of in sweeps.items():
            sweep = sweep_of()
            most = max(sweep)
            uss, pss = sweep[most]
            figures[f"{kind}: {_USS}"] = round(uss / most, 4)
            if pss is not None:
                figures[f"{kind}: {_PSS}"] = round(pss / most, 4)
            measurement.series.append(
                Series(
                    kind,
                    [float(n) for n in sorted(sweep)],
                    [round(sweep[n][0], 3) for n in sorted(sweep)],
                    "workers",
                    "MB added (USS)",
                )
            )
        figures["workers (most)"] = max(counts)
        server = _forkserver_mb() if "forkserver" in methods else None
        if server is not None:
            figures["forkserver process, once: MB (USS)"] = round(server, 3)
        return measurement

    def judge(self, measurement: Measurement) -> Verdict:
        figures = measurement.figures
        thread = float(figures[f"thread: {_USS}"])
        processes = {
            name.split(": ")[0]: float(value)
            for name, value in figures.items()
            if name.startswith("process (") and name.endswith(_USS)
        }
        if not processes:
            return Verdict(DEPENDS, "no process start method could be measured here")
        lightest, light_mb = min(processes.items(), key=lambda item: item[1])
        heaviest, heavy_mb = max(processes.items(), key=lambda item: item[1])
        base = max(thread, THREAD_FLOOR_MB)
        # In KB: a thread adds a few pages; its MB figure would read 0.00.
        thread_text = f"{thread * 1024:.0f} KB" if thread * 1024 >= 1 else "under 1 KB"
        light_ratio, heavy_ratio = light_mb / base, heavy_mb / base
        if light_ratio >= HEAVIER_FACTOR:
            return Verdict(
                HOLDS,
                f"a thread added {thread_text} (USS); the lightest process worker, {lightest}, "
                f"added {light_mb:.2f} MB ({light_ratio:.0f}x) and {heaviest} "
                f"{heavy_mb:.2f} MB ({heavy_ratio:.0f}x)",
            )
        if heavy_ratio < HEAVIER_FACTOR:
            return Verdict(
                NOT_HERE,
                f"every process worker added under {HEAVIER_FACTOR:.0f}x a thread's "
                f"{thread_text} (USS): {heaviest}, the heaviest, {heavy_mb:.2f} MB",
            )
        return Verdict(
            DEPENDS,
            f"{lightest} added only {light_mb:.2f} MB (USS, {light_ratio:.1f}x a thread's "
            f"{thread_text}): its pages stay shared with the parent until written "
            f"(copy-on-write); {heaviest} added {heavy_mb:.2f} MB ({heavy_ratio:.0f}x): "
            "it depends on the start method",
        )


EXPERIMENT = FootprintExperiment()
