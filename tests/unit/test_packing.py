"""backends/packing.py: a worker's RESULT and INIT_FAILED frames, decoded in the parent."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from poolwise.backends.base import Chunk, Outcomes
from poolwise.backends.child import frames as _frames
from poolwise.backends.child.results import pack_result
from poolwise.backends.child.segments import ResultSegments
from poolwise.backends.packing import deliver_result, initializer_failed, unpack_result
from poolwise.errors import InitializerFailed, NotPicklable
from poolwise.transport import dumps, pack_exception

linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="big results come through shared memory on Linux only"
)


class _Sink:
    def __init__(self) -> None:
        self.batches: list[tuple[int, list[Any], dict[int, BaseException] | None]] = []

    def begin(self, chunk: Chunk) -> bool:
        return True

    def cancel(self, chunk: Chunk) -> None:
        raise AssertionError("not cancelled here")

    def deliver(self, chunk: Chunk, outcomes: Outcomes) -> None:
        self.batches.append((outcomes.offset, outcomes.values, outcomes.errors))


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
    body = _frames.RESULT_PREFIX.pack(0, 2, 0) + b"not a pickle"
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


@linux_only
def test_big_results_cross_in_segments_that_are_unlinked_once_taken() -> None:
    sink = _Sink()
    chunk = Chunk(abs, [((-1,), {}), ((-2,), {})], 0, sink)
    big = np.arange(1 << 18, dtype=np.int64)  # 2 MiB
    body = pack_result(Outcomes(0, [big, 3]), 0, ResultSegments(os.getpid()).place)
    assert len(body) < 1000  # the array is not in the frame
    names = [n for n in os.listdir("/dev/shm") if n.startswith(f"poolwise-{os.getpid()}-r")]
    assert len(names) == 1
    outcomes, shared = unpack_result(chunk, body)
    assert shared == big.nbytes
    assert np.array_equal(outcomes.values[0], big)
    assert outcomes.values[1] == 3
    assert not (Path("/dev/shm") / names[0]).exists()


def test_results_go_through_the_pipe_when_shared_memory_is_full() -> None:
    def full(_buffers: object) -> bytes:
        raise OSError(28, "No space left on device")

    big = np.arange(1 << 18, dtype=np.int64)
    body = pack_result(Outcomes(0, [big]), 0, full)
    assert len(body) > big.nbytes
    outcomes, shared = unpack_result(Chunk(abs, [((-1,), {})], 0, _Sink()), body)
    assert shared == 0
    assert np.array_equal(outcomes.values[0], big)
