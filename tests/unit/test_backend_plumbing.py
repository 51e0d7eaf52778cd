"""The pieces every worker-owning backend shares: admission, exit stops, result frames,
and the segment list a chunk's frame carries (no real workers here)."""

from __future__ import annotations

import gc
import pickle
from typing import Any

import pytest

from poolwise.backends.base import Chunk, Outcomes
from poolwise.backends.child import frames as _frames
from poolwise.backends.child.results import pack_result
from poolwise.backends.child.segments import describe, map_buffers, parse
from poolwise.backends.lifetime import Admission, LiveBackends
from poolwise.backends.packing import deliver_result, initializer_failed
from poolwise.errors import InitializerFailed, NotPicklable, PoolClosed
from poolwise.shared import create_segment
from poolwise.transport import dumps, pack_exception


class _Sink:
    def __init__(self) -> None:
        self.batches: list[tuple[int, list[Any], dict[int, BaseException] | None]] = []

    def begin(self, chunk: Chunk) -> bool:
        return True

    def cancel(self, chunk: Chunk) -> None:
        raise AssertionError("not cancelled here")

    def deliver(self, chunk: Chunk, outcomes: Outcomes) -> None:
        offset, values, errors = outcomes.offset, outcomes.values, outcomes.errors
        self.batches.append((offset, values, errors))


def test_admission_refuses_once_closed_and_keeps_the_first_breakage() -> None:
    admission = Admission()
    admission.raise_if_unusable()
    admission.closed = True
    with pytest.raises(PoolClosed):
        admission.raise_if_unusable()
    first, second = RuntimeError("first"), RuntimeError("second")
    admission.break_with(first)
    admission.break_with(second)
    with pytest.raises(RuntimeError, match="first"):
        admission.raise_if_unusable()


class _Backend:
    pass


def test_live_backends_stop_only_those_still_alive() -> None:
    stopped: list[_Backend] = []
    live: LiveBackends[_Backend] = LiveBackends(stopped.append)
    kept, dropped = _Backend(), _Backend()
    live.add(kept)
    live.add(dropped)
    del dropped
    gc.collect()
    live.stop_all()
    assert stopped == [kept]


def test_a_result_frame_reaches_its_chunk() -> None:
    sink = _Sink()
    chunk = Chunk(abs, [((-1,), {}), ((-2,), {}), ((-3,), {})], 10, sink)
    body = pack_result(Outcomes(1, [2, None], {1: ValueError("bad")}, 0.1, 0.05), 10)
    deliver_result(chunk, body)
    [(offset, values, errors)] = sink.batches
    assert (offset, values[0]) == (1, 2)
    assert errors is not None
    assert isinstance(errors[1], ValueError)


def test_a_result_that_will_not_unpickle_here_is_each_tasks_not_picklable() -> None:
    sink = _Sink()
    chunk = Chunk(abs, [((-1,), {}), ((-2,), {})], 5, sink)
    body = _frames.RESULT_PREFIX.pack(0, 2) + b"not a pickle"
    deliver_result(chunk, body)
    [(offset, values, errors)] = sink.batches
    assert (offset, values) == (0, [None, None])
    assert errors is not None
    assert all(isinstance(errors[pos], NotPicklable) for pos in (0, 1))
    assert "results of 2 task(s) from #5" in str(errors[0])


def test_init_failed_names_the_initializer_and_keeps_its_exception_as_cause() -> None:
    def setup() -> None:
        raise OSError("no database")

    body = dumps(pack_exception(OSError("no database")))
    error = initializer_failed(body, setup)
    assert isinstance(error, InitializerFailed)
    assert "setup" in str(error)
    assert "no database" in str(error)
    assert isinstance(error.__cause__, OSError)
    pickle.loads(pickle.dumps(error))


def test_a_chunks_segments_round_trip_and_map_copy_on_write() -> None:
    assert parse(describe([("/a", 3), ("/b c", 10)])) == [("/a", 3), ("/b c", 10)]
    segment = create_segment(4)
    try:
        segment.mapping[:4] = b"abcd"
        [view] = map_buffers(describe([(segment.name, 4)]))
        view[0] = ord("z")  # the task's own copy
        assert bytes(view) == b"zbcd"
        assert bytes(segment.mapping[:4]) == b"abcd"
        view.release()
    finally:
        segment.release()
