"""Stopping a worker whose task ran past its timeout: SIGTERM, then SIGKILL.

A process worker cannot be told to stop one task: its task may be blocked in C. The
dispatcher reads each timed worker's clock slot (``WorkerHandle.running_task``); past the
deadline it sends SIGTERM, and ``TERM_GRACE`` later SIGKILL. The worker's exit then goes
the way of any crash (``crashes.settle_crash``), which names the task that timed out
(``WorkerHandle.stopping_task``) and gives it ``TaskTimeout``.

Runs on the dispatcher thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .handle import WorkerHandle

__all__ = ["START_POLL", "TERM_GRACE", "check_deadlines"]

#: Seconds between SIGTERM and SIGKILL for a worker whose task timed out. The contract is
#: "stopped within timeout + 0.5 s"; this leaves 0.3 s for detection and reaping.
TERM_GRACE = 0.2
#: How often to look at a worker that holds a timed chunk it has not started yet (seconds).
START_POLL = 0.05


def check_deadlines(timed: set[WorkerHandle], now: float) -> tuple[float | None, int]:
    """Signal the workers of ``timed`` whose task ran past its timeout.

    Drops from ``timed`` the workers that hold no timed work any more. Returns the
    seconds until the next deadline (None: nothing timed runs) and how many tasks timed
    out in this look.
    """
    nearest: float | None = None
    timed_out = 0
    for worker in list(timed):
        if worker.gone or not worker.running:
            timed.discard(worker)
            continue
        wait, stopped = _check_worker(worker, now)
        timed_out += stopped
        if wait is not None and (nearest is None or wait < nearest):
            nearest = wait
    return nearest, timed_out


def _check_worker(worker: WorkerHandle, now: float) -> tuple[float | None, bool]:
    """Seconds until this worker needs a look again, and whether its task timed out now."""
    if worker.kill_at is not None:  # SIGTERM sent: SIGKILL once the grace is over
        if now < worker.kill_at:
            return worker.kill_at - now, False
        worker.kill_at = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)
        return None, False
    head = worker.running[0]
    timeout = head.chunk.timeout
    if timeout is None or worker.stopping_task is not None:
        return None, False
    task = worker.running_task()
    if task is None:
        return 0.001, False  # caught it between two tasks; look again
    chunk_id, position, started = task
    if chunk_id != head.chunk_id:
        return START_POLL, False  # not started yet
    deadline = started + timeout
    if now < deadline:
        return deadline - now, False
    worker.stopping_task = (head.chunk_id, position)
    worker.kill_at = now + TERM_GRACE
    with contextlib.suppress(ProcessLookupError):
        os.kill(worker.pid, signal.SIGTERM)
    return TERM_GRACE, True
