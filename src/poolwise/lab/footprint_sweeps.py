"""Sweeps of the memory N workers add, per kind of worker, in MB of USS and PSS.

USS is memory no other process shares (what a worker really adds); PSS, on Linux, splits
shared pages among the processes that map them. Both come from psutil's
``memory_full_info()``. A thread or an interpreter lives in this process, so its sweep is
this process's growth over a baseline taken before it started; a process's is the sum over
the worker processes. Raw primitives (``threading.Thread``, ``multiprocessing`` ``Process``,
a bare interpreter) and poolwise pools each have a sweep; every worker is stopped on the
way out, also when measuring fails.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    import psutil

__all__ = [
    "POOL_TASK_SECONDS",
    "START_TIMEOUT",
    "Sweep",
    "forkserver_mb",
    "interpreters_sweep",
    "memory_mb",
    "pool_interpreters_sweep",
    "pool_processes_sweep",
    "pool_threads_sweep",
    "processes_sweep",
    "threads_sweep",
    "total_mb",
]

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


def memory_mb(process: psutil.Process) -> tuple[float, float | None]:
    """USS and PSS (None where psutil has no PSS: macOS, Windows) of ``process`` in MB."""
    info = process.memory_full_info()
    pss = getattr(info, "pss", None)
    return info.uss / 2**20, None if pss is None else pss / 2**20


def total_mb(pids: Iterable[int]) -> tuple[float, float | None]:
    """Summed USS and PSS (MB) of the processes ``pids``."""
    import psutil

    uss, pss = 0.0, 0.0
    has_pss = True
    for pid in pids:
        one_uss, one_pss = memory_mb(psutil.Process(pid))
        uss += one_uss
        if one_pss is None:
            has_pss = False
        else:
            pss += one_pss
    return uss, pss if has_pss else None


class _Growth:
    """This process's memory growth (USS, PSS in MB) over what it had when this was made."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self._uss, self._pss = memory_mb(self._me)

    def now(self) -> tuple[float, float | None]:
        """What this process has added since (PSS None where there is none)."""
        uss, pss = memory_mb(self._me)
        if pss is None or self._pss is None:
            return uss - self._uss, None
        return uss - self._uss, pss - self._pss


#: One sweep: for each worker count, the memory (USS, PSS) its workers added in MB.
Sweep = dict[int, tuple[float, float | None]]


def threads_sweep(counts: list[int]) -> Sweep:
    """This process's added USS/PSS with 1..max(counts) raw threads started and waiting."""
    growth = _Growth()
    ready = threading.Semaphore(0)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    sweep: Sweep = {}
    try:
        for count in range(1, max(counts) + 1):
            thread = threading.Thread(target=_thread_body, args=(ready, stop), daemon=True)
            thread.start()
            threads.append(thread)
            if not ready.acquire(timeout=START_TIMEOUT):
                raise RuntimeError(f"a thread did not start within {START_TIMEOUT} s")
            if count in counts:
                sweep[count] = growth.now()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return sweep


def _stop_process(process: BaseProcess, conn: Connection) -> None:
    """Tell a raw worker to exit, wait for it, and kill it if it does not go."""
    with contextlib.suppress(OSError):  # it is gone already
        conn.send(None)
    conn.close()
    process.join(timeout=5)
    if process.is_alive():
        process.kill()
        process.join()


def processes_sweep(method: str, counts: list[int]) -> Sweep:
    """Summed USS/PSS of 1..max(counts) raw worker processes started with ``method``."""
    from ..backends.processes import worker_process_class

    context: Any = multiprocessing.get_context(method)
    # poolwise's Process classes: multiprocessing's own, except that a spawn child does not
    # re-run the parent's main module, which here is the lab's (the poolwise CLI, pytest),
    # not the user's program. The child imports that small class module instead (measured
    # ~1 MB of a spawn child's ~7 MB USS); fork gets multiprocessing's class unchanged.
    process_class = worker_process_class(method)
    pids: list[int] = []
    sweep: Sweep = {}
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
                sweep[count] = total_mb(pids)
    return sweep


def pool_threads_sweep(counts: list[int]) -> Sweep:
    """Like ``threads_sweep``, with the threads of a poolwise pool."""
    import poolwise

    growth = _Growth()
    sweep: Sweep = {}
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
                sweep[count] = growth.now()
            finally:
                stop.set()
            for future in futures:
                future.result()
    return sweep


def pool_processes_sweep(method: str, counts: list[int]) -> Sweep:
    """Summed USS/PSS of the workers of a poolwise process pool, grown to each count."""
    import poolwise

    pids: set[int] = set()
    sweep: Sweep = {}
    with poolwise.Pool("processes", max(counts), start_method=method) as pool:
        for count in counts:
            futures = [pool.submit(_pid_after, POOL_TASK_SECONDS) for _ in range(count)]
            pids.update(future.result() for future in futures)
            # Keyed by the workers that really ran (a free worker may take two tasks).
            sweep[len(pids)] = total_mb(pids)
    return sweep


def interpreters_sweep(counts: list[int]) -> Sweep:
    """This process's added USS/PSS with 1..max(counts) bare interpreters, each having run
    a tiny task (``sum(range(1000))``)."""
    from ..backends.interpreters import primitives

    api = primitives()
    assert not isinstance(api, str), api
    growth = _Growth()
    made: list[Any] = []
    sweep: Sweep = {}
    try:
        for count in range(1, max(counts) + 1):
            made.append(api.create())
            failure = api.exec(made[-1], "sum(range(1000))", {})
            if failure is not None:
                raise RuntimeError(f"an interpreter failed its first task: {failure.text}")
            if count in counts:
                sweep[count] = growth.now()
    finally:
        for interpreter in made:
            api.destroy(interpreter)
    return sweep


def pool_interpreters_sweep(counts: list[int]) -> Sweep:
    """This process's added USS/PSS with a poolwise interpreters pool grown to each count.

    The pool's modules are imported here before the baseline, so the figure is what the
    workers add. Each round's tasks meet through pipes (interpreters share no Python
    objects, but file descriptors are the process's): all run at once, on distinct workers.
    """
    import poolwise
    from poolwise.backends import backend_class

    backend_class("interpreters")
    growth = _Growth()
    threads: set[int] = set()
    sweep: Sweep = {}
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
                    added = growth.now()
                finally:
                    os.write(release_w, b"!" * count)
                threads.update(future.result() for future in futures)
                sweep[len(threads)] = added
    finally:
        for fd in (started_r, started_w, release_r, release_w):
            os.close(fd)
    return sweep


def forkserver_mb() -> float | None:
    """USS of multiprocessing's forkserver process (started once, shared by every pool)."""
    import psutil

    for child in psutil.Process().children():
        try:
            if any("multiprocessing.forkserver" in part for part in child.cmdline()):
                return memory_mb(child)[0]
        except psutil.Error:
            continue
    return None
