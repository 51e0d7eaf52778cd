"""The dispatcher's side of work stealing, without workers: a chunk given back is sent
again under a new id, so a second REVOKE can never name a copy that is running (#13)."""

from __future__ import annotations

import collections
import itertools
import types
from typing import Any

from poolwise.backends.base import Chunk, Outcomes, WorkerOptions
from poolwise.backends.buffers import BufferStore
from poolwise.backends.packing import FunctionCache, Job
from poolwise.backends.processes.dispatcher import Dispatcher


class _Sink:
    def begin(self, chunk: Chunk) -> bool:
        return True

    def cancel(self, chunk: Chunk) -> None:
        raise AssertionError("not cancelled here")

    def deliver(self, chunk: Chunk, outcomes: Outcomes) -> None:
        raise AssertionError("nothing runs here")


def _job(chunk_id: int) -> Job:
    chunk = Chunk(abs, [((-1,), {})], 0, _Sink())
    return Job(chunk, 1, b"", b"", False, chunk_id=chunk_id, begun=True, revoking=True)


def test_a_chunk_given_back_gets_a_new_id_and_waits_for_another_worker() -> None:
    ids = itertools.count(100)
    dispatcher = Dispatcher(
        workers=2,
        options=WorkerOptions(),
        recipe=None,  # type: ignore[arg-type] # no worker starts here
        functions=FunctionCache(),
        buffers=BufferStore(),
        chunk_ids=ids,
    )
    running, waiting = _job(1), _job(2)
    victim: Any = types.SimpleNamespace(
        running=collections.deque([running, waiting]), assigned=2, retiring=False
    )
    dispatcher._on_revoked(victim, 2, given_back=True)
    assert list(victim.running) == [running]
    assert waiting.chunk_id == 100  # a new id: the old one may still be queued there
    assert not waiting.revoking
    assert list(dispatcher._pending) == [waiting]
    assert dispatcher.counters["tasks_stolen"] == 1
    # too late: it stays where it runs, under its id
    running.revoking = True
    dispatcher._on_revoked(victim, 1, given_back=False)
    assert list(victim.running) == [running]
    assert running.chunk_id == 1
    assert not running.revoking
