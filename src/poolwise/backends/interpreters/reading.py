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

from ...errors import PoolClosed, PoolwiseError
from ..child import frames as _frames
from ..packing import deliver_result, initializer_failed
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
        deliver_result(chunk, body)
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
        error = initializer_failed(body, group.options.initializer)
        group.break_pool(error)
