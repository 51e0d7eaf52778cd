"""The reader thread: turns the frames an interpreter worker sends into outcomes.

One reader per worker blocks on its result pipe (``_interpqueues`` has no blocking get
in 3.13: it would poll) and reads to the end of the pipe, which the worker thread closes
once the interpreter is gone. RESULT frames are delivered to their chunk as they come,
while the chunk still runs; the other frames say that a task timed out, that the
interpreter was abandoned (``stopping.replace_abandoned``), that a chunk was stopped or
failed, or that the initializer raised.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ...errors import InitializerFailed, NotPicklable, PoolClosed, PoolwiseError
from ...transport import load_exception, loads
from ..child import frames as _frames
from .stopping import replace_abandoned

if TYPE_CHECKING:
    from .group import WorkerGroup
    from .worker import Worker

__all__ = ["read_results"]


def read_results(group: WorkerGroup, worker: Worker) -> None:
    """Deliver what the worker's interpreter sends, until its pipe closes."""
    try:
        while True:
            frame = _frames.read_frame(worker.result_r)
            if frame is None:
                return
            try:
                _on_frame(group, worker, *frame)
            except BaseException as exc:  # noqa: BLE001 - see below
                # A bug here must not hang callers: every task still waiting gets it;
                # the pipe is still drained so the interpreter never blocks on it.
                error = PoolwiseError(f"the interpreter pool's reader failed: {exc!r}")
                error.__cause__ = exc
                group.break_pool(error)
    finally:
        os.close(worker.result_r)


def _on_frame(group: WorkerGroup, worker: Worker, kind: int, key: int, body: bytes) -> None:
    """Act on one frame from ``worker``'s interpreter."""
    if kind == _frames.RESULT:
        with worker.lock:
            job = worker.inflight.get(key)
        if job is None:
            return  # its chunk was finished otherwise (terminate)
        chunk = job.chunk
        offset, count = _frames.RESULT_PREFIX.unpack_from(body)
        try:
            payload = memoryview(body)[_frames.RESULT_PREFIX.size :]
            values, packed, (seconds, cpu) = loads(payload)
            errors = {pos: load_exception(p) for pos, p in packed.items()} or None
        except Exception as exc:  # noqa: BLE001 - a result that loads there, not here
            where = f"results of {count} task(s) from #{chunk.index_of(offset)}"
            failed = NotPicklable(where, type(exc).__qualname__, f"unpickling here: {exc}")
            values, errors = [None] * count, dict.fromkeys(range(count), failed)
            seconds = cpu = 0.0
        chunk.deliver(offset, values, errors, seconds, cpu)
        if chunk.delivered >= len(chunk):
            with worker.lock:
                worker.inflight.pop(key, None)
    elif kind == _frames.GUARD:
        worker.guard_tid = key
    elif kind == _frames.TIMED_OUT:
        group.count("tasks_timed_out")
    elif kind in (_frames.STOPPED, _frames.FAILED):
        with worker.lock:
            job = worker.inflight.pop(key, None)
        if job is not None:
            if kind == _frames.STOPPED:
                job.chunk.fail_rest(lambda _offset: PoolClosed())
            else:
                text = body.decode(errors="replace")
                bug = PoolwiseError(f"an interpreter worker failed:\n{text}")
                job.chunk.fail_rest(lambda _offset: bug)
    elif kind == _frames.ABANDONED:
        (position,) = _frames.POSITION.unpack(body)
        with worker.lock:
            job = worker.inflight.pop(key, None)
        replace_abandoned(group, worker, job, position)
    elif kind == _frames.INIT_FAILED:
        payload = loads(body)
        cause = load_exception(payload)
        name = getattr(group.options.initializer, "__qualname__", "initializer")
        error = InitializerFailed(name, f"{payload[1]}: {payload[2]}")
        error.__cause__ = cause
        group.break_pool(error)
