"""What the tasks of a worker that died get: ``WorkerCrashed`` (or ``TaskTimeout``), or
another try.

Before each task a worker writes (chunk id, position, start time) into its clock slot,
so when it dies the dispatcher knows which task it was running. That task gets
``WorkerCrashed`` (``TaskTimeout`` if the dispatcher killed it for its timeout, see
``deadlines``); the tasks after it, and the chunks queued behind, go back to the queue.
A task is never silently run twice.

Runs on the dispatcher thread, after the worker's last frames were read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import TaskTimeout, WorkerCrashed
from ..child.run import Outcomes

if TYPE_CHECKING:
    from ..packing import Job
    from .handle import WorkerHandle

__all__ = ["settle_crash"]


def settle_crash(worker: WorkerHandle) -> list[Job]:
    """Deliver the crash to the task ``worker`` was running (it holds work, it exited).

    Empties ``worker.running`` and returns the jobs to send again, in order, each with
    ``start`` set to its first task without an outcome.
    """
    exitcode = worker.exitcode
    head = worker.running[0]
    chunk = head.chunk
    position = chunk.delivered
    task = worker.running_task()
    if task is not None and task[0] == head.chunk_id:
        position = max(position, task[1])
    signum = -exitcode if exitcode is not None and exitcode < 0 else None
    code = exitcode if signum is None else None
    start = chunk.delivered
    # Tasks from `start` to `position - 1` finished, but their results died with the
    # worker before the next flush; like the task that was running, their outcome is
    # the crash (naming the task that was running), never a silent re-run.
    count = position - start + 1
    timed_out = worker.stopping_task == (head.chunk_id, position)
    note = f"stopped because task #{chunk.index_of(position)} timed out" if timed_out else None
    crash = WorkerCrashed(code, signum, chunk.index_of(position), worker.pid, note)
    errors: dict[int, BaseException] = dict.fromkeys(range(count), crash)
    if timed_out and chunk.timeout is not None:
        errors[count - 1] = TaskTimeout(chunk.timeout, chunk.index_of(position))
    chunk.deliver(Outcomes(start, [None] * count, errors))
    again = list(worker.running)
    worker.running.clear()
    if position + 1 < len(chunk):
        head.start = position + 1
    else:
        again.pop(0)
    for job in again:
        if job is not head:
            job.start = job.chunk.delivered
    return again
