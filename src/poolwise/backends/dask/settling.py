"""Settling a finished Dask task: its future becomes one outcome per task of its chunk.

A Dask task ends in one of four ways, each handled here, and the backend's collector
(``backend.py``) picks which after it claimed the attempt:

* *finished*: ``run_chunk`` returned the pickled ``Outcome``; ``unpack`` reads it and
  ``deliver`` hands it to the chunk (an outcome that will not unpickle here becomes
  ``NotPicklable`` for every task without one);
* *KilledWorker*: the worker process died; ``fail_crashed`` gives each task without an
  outcome ``WorkerCrashed``, naming the worker (``lost_worker``);
* *another error*: every task without an outcome gets it;
* *cancelled*: the scheduler dropped the chunk (``fail_dropped``).

A chunk that a closing pool will not run is cancelled, or gets ``PoolClosed`` for each
task (``cancel``, ``fail_closed``). An initializer that raised in a worker is reported in
the ``Outcome`` and becomes the pool's ``InitializerFailed`` (``initializer_failed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ...errors import InitializerFailed, NotPicklable, PoolClosed, WorkerCrashed
from ...transport import load_exception, loads
from ..child.run import Outcomes

if TYPE_CHECKING:
    from ...transport import ExceptionPayload
    from ..base import Chunk
    from ..child.dask_messages import Outcome
    from ..packing import Job
    from .distributed_api import DaskFuture

__all__ = [
    "Fetched",
    "cancel",
    "deliver",
    "fail_all",
    "fail_closed",
    "fail_crashed",
    "fail_dropped",
    "fetch",
    "initializer_failed",
    "lost_worker",
    "unpack",
]


class Fetched(NamedTuple):
    """How a Dask task ended: its status, and its bytes or its error."""

    status: str
    data: bytes | None
    error: BaseException | None


def fetch(future: DaskFuture) -> Fetched:
    """Take a finished Dask task's result or error, then release its key."""
    status = future.status
    data: bytes | None = None
    error: BaseException | None = None
    if status == "finished":
        try:
            data = future.result()
        except BaseException as exc:  # noqa: BLE001 - e.g. the cluster closed meanwhile
            error = exc
    elif status == "error":
        error = future.exception()
    future.release()  # the scheduler forgets the key: nothing of it is re-run
    return Fetched(status, data, error)


def unpack(chunk: Chunk, data: bytes) -> tuple[Outcome, dict[int, BaseException]] | None:
    """The ``Outcome`` in ``data`` and its tasks' exceptions; None if it will not unpickle
    here, each task of ``chunk`` without an outcome then having ``NotPicklable``."""
    try:
        outcome: Outcome = loads(data)
        errors = {pos: load_exception(payload) for pos, payload in outcome.errors.items()}
    except Exception as exc:  # noqa: BLE001 - a result that pickled there, loads not here
        start = chunk.delivered
        where = f"results of {len(chunk) - start} task(s) from #{chunk.index_of(start)}"
        failed = NotPicklable(where, type(exc).__qualname__, f"unpickling here: {exc}")
        fail_all(chunk, failed)
        return None
    return outcome, errors


def deliver(chunk: Chunk, outcome: Outcome, errors: dict[int, BaseException]) -> bool:
    """Deliver a Dask task's outcomes; True if the rest of the chunk must be sent."""
    chunk.deliver(
        Outcomes(
            outcome.start, outcome.values, errors or None, outcome.seconds, outcome.cpu_seconds
        )
    )
    return outcome.resume_at is not None and chunk.delivered < len(chunk)


def lost_worker(error: BaseException) -> tuple[str, int | None]:
    """The address and pid of the worker a ``KilledWorker`` names (``"?"``, None if not)."""
    worker = getattr(error, "last_worker", None)
    pid: int | None = getattr(worker, "pid", None)
    return str(getattr(worker, "address", "?")), pid


def fail_crashed(chunk: Chunk, error: BaseException) -> None:
    """The worker holding ``chunk`` died: each task without an outcome gets WorkerCrashed."""
    address, pid = lost_worker(error)
    start = chunk.delivered
    note = f"Dask worker {address}"
    index = chunk.index_of(start)
    if len(chunk) - start > 1:
        last = chunk.index_of(len(chunk) - 1)
        span = "its inputs" if index is None else f"inputs #{index} to #{last}"
        note += f" ran {span} in one Dask task, so which one ended it is not known"
        index = None
    crash = WorkerCrashed(None, None, index, pid, note)
    crash.__cause__ = error
    fail_all(chunk, crash)


def fail_dropped(chunk: Chunk, status: str) -> None:
    """Cancelled by someone else (the scheduler restarted, or lost this client): each
    task without an outcome gets WorkerCrashed."""
    note = f"the Dask scheduler dropped this chunk (its future is {status})"
    chunk.fail_rest(lambda offset: WorkerCrashed(None, None, chunk.index_of(offset), None, note))


def initializer_failed(initializer: object, payload: ExceptionPayload) -> InitializerFailed:
    """The pool's ``InitializerFailed`` for the packed exception a worker sent back."""
    name = getattr(initializer, "__qualname__", "initializer")
    error = InitializerFailed(name, f"{payload[1]}: {payload[2]}")
    error.__cause__ = load_exception(payload)
    return error


def cancel(job: Job) -> None:
    """A job that will never run: cancelled if it never began, else PoolClosed."""
    if not job.begun:
        job.chunk.cancel()
    else:
        fail_closed(job.chunk)


def fail_closed(chunk: Chunk) -> None:
    """Each task of ``chunk`` without an outcome gets a ``PoolClosed`` of its own."""
    chunk.fail_rest(lambda _offset: PoolClosed())


def fail_all(chunk: Chunk, error: BaseException) -> None:
    """Every task of ``chunk`` without an outcome gets ``error``."""
    chunk.fail_rest(lambda _offset: error)
