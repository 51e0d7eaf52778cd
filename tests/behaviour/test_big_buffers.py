"""Big buffers in arguments travel to process workers through shared memory, not the pipe."""

from __future__ import annotations

import numpy as np
from tasks import scribble_and_sum, size_and_type, where_is

import poolwise
from poolwise.transport import BIG_BUFFER

BIG = np.arange(BIG_BUFFER // 8 * 2, dtype=np.int64)  # 2 MiB


def test_a_big_array_goes_through_shared_memory_and_back_correctly() -> None:
    with poolwise.Pool("processes", 2) as pool:
        # six chunks, each sending the array (one segment, counted per chunk)
        results, report = pool.map(np.sum, [BIG] * 6, chunksize=1, report=True)
    assert results == [int(BIG.sum())] * 6
    assert report.backend["bytes_through_shared_memory"] == 6 * BIG.nbytes
    assert report.backend["bytes_through_pipe"] < BIG.nbytes
    assert "bytes through shared memory" in str(report)


def test_tasks_of_one_map_map_one_copy_of_the_same_array() -> None:
    with poolwise.Pool("processes", 2) as pool:
        places = pool.map(where_is, [BIG] * 8, chunksize=1)
    segments = {line.split()[-1] for _, line in places}
    assert len(segments) == 1
    assert segments.pop().startswith("/dev/shm/poolwise-")


def test_a_task_may_write_into_its_argument_without_touching_others() -> None:
    array = BIG.copy()
    expected = int(array.sum()) - int(array[0]) - 1_000_000
    with poolwise.Pool("processes", 2) as pool:
        assert pool.map(scribble_and_sum, [array] * 6, chunksize=1) == [expected] * 6
    assert array[0] == BIG[0]  # the parent's array is untouched


def test_big_bytes_and_bytearrays_keep_their_type() -> None:
    data = bytes(range(256)) * (BIG_BUFFER // 256 + 1)
    with poolwise.Pool("processes", 1) as pool:
        results, report = pool.map(size_and_type, [data, bytearray(data)], report=True)
    assert results == [(len(data), "bytes", 255), (len(data), "bytearray", 255)]
    assert report.backend["bytes_through_shared_memory"] == 2 * len(data)


def test_small_buffers_stay_in_the_pipe() -> None:
    small = np.arange(100)
    with poolwise.Pool("processes", 1) as pool:
        _, report = pool.map(np.sum, [small] * 3, chunksize=1, report=True)  # 3 pickles
    assert report.backend["bytes_through_shared_memory"] == 0
    assert report.backend["bytes_through_pipe"] > 3 * small.nbytes
