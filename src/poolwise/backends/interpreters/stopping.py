"""How interpreter workers stop: terminate(), an interpreter stuck in C, the program's end.

A task past its ``timeout`` is stopped inside its interpreter, by the guard thread there
(``child/interpreter_guard``): ``StopTask`` at its next bytecode. A task blocked in C
cannot be stopped: ``STOP_GRACE`` after its timeout it gets ``TaskTimeout``, its
interpreter is abandoned (destroyed when the task returns) and ``replace_abandoned``
starts a new worker for the rest of its chunk. ``terminate_workers`` raises ``StopTask``
in whatever runs and leaves a task blocked in C running, as threads do.

At the program's end, pools still open are terminated and their idle interpreters
destroyed; the guard of one still busy is stopped and waited for, since the runtime would
wait forever for a subinterpreter's thread killed half-way (``wait_at_exit``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from ..child.interpreter_protocol import QUIT, TERMINATE

if TYPE_CHECKING:
    from ..packing import Job
    from .group import WorkerGroup
    from .worker import Worker

__all__ = [
    "EXIT_WAIT",
    "EXIT_WAIT_BUSY",
    "join_workers",
    "replace_abandoned",
    "terminate_workers",
    "wait_at_exit",
]

#: Seconds the program's exit waits for workers to destroy their interpreters, and for a
#: busy worker to stop (StopTask stops Python code at once; a task blocked in C, never).
EXIT_WAIT = 1.0
EXIT_WAIT_BUSY = 0.1


def replace_abandoned(group: WorkerGroup, worker: Worker, job: Job | None, position: int) -> None:
    """A task stuck in C past its timeout got TaskTimeout; its interpreter is left to it.

    The rest of its chunk, from ``position``, goes to a new worker, which keeps the
    capacity.
    """
    rest: Job | None = None
    if job is not None and position < len(job.chunk):
        job.start = position
        rest = job
    with group.lock:
        worker.abandoned = True
        group.counters["interpreters_abandoned"] += 1
        group.active -= 1
        group.start_worker(first=rest)


def terminate_workers(group: WorkerGroup) -> None:
    """Stop running tasks with StopTask (at their next bytecode), in every worker not
    given up on; returns at once."""
    with group.lock:
        workers = list(group.workers)
    for worker in workers:
        if not worker.abandoned:
            worker.terminated = True
            worker.command(TERMINATE)


def join_workers(workers: list[Worker]) -> None:
    """Wait for workers to end, except those given up on or stopped by terminate()
    (they may be stuck in C)."""
    for worker in workers:
        if worker.abandoned or worker.terminated:
            continue
        for thread in (worker.thread, worker.reader):
            if thread is not threading.current_thread():
                thread.join()


def wait_at_exit(group: WorkerGroup) -> None:
    """At the end of the program, once terminated: let the workers destroy their
    interpreters (a little while: not one stuck in C).

    A worker still running then is stuck in C; its guard thread ended on terminate()
    (or when the worker was given up on). The runtime, as it ends, destroys each
    interpreter left and waits for that interpreter's threads: a guard not yet gone
    would be killed half-way and waited for forever. So this waits until they are gone.
    """
    with group.lock:
        workers = list(group.workers)
    start = time.monotonic()
    for worker in workers:
        while worker.thread.is_alive():
            waited = time.monotonic() - start
            if waited >= EXIT_WAIT or (worker.busy and waited >= EXIT_WAIT_BUSY):
                break
            worker.thread.join(0.01)
    for worker in workers:
        if worker.thread.is_alive():
            worker.command(QUIT)
            _wait_until_gone(worker.guard_tid, start + EXIT_WAIT)


def _wait_until_gone(native_id: int, deadline: float) -> None:
    """Wait (until ``deadline``) for the OS thread ``native_id`` of this process to end.

    Where /proc does not show threads (macOS), wait a moment: a guard ends within
    microseconds of its last command.
    """
    if not native_id:
        return
    if not os.path.isdir("/proc/self/task"):
        time.sleep(0.05)
        return
    while os.path.exists(f"/proc/self/task/{native_id}") and time.monotonic() < deadline:
        time.sleep(0.001)
