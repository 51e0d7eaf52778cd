"""Big buffers in arguments travel to process workers through shared memory, not the pipe."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from tasks import big_bytes, filled, scribble_and_sum, size_and_type, where_is

import poolwise
from poolwise.transport import BIG_BUFFER

if TYPE_CHECKING:
    from collections.abc import Iterator

BIG = np.arange(BIG_BUFFER // 8 * 2, dtype=np.int64)  # 2 MiB

linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="big results come through shared memory on Linux only"
)


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


def test_the_same_array_is_copied_once_per_map_whatever_the_chunks() -> None:
    # chunks that ran one after another each copied it again: 10 copies for 100 tasks (#15)
    with poolwise.Pool("processes", 2) as pool:
        results, report = pool.map(np.sum, [BIG] * 40, chunksize=1, report=True)
        assert results == [int(BIG.sum())] * 40
        assert report.backend["bytes_copied_to_shared_memory"] == BIG.nbytes
        assert report.backend["bytes_through_shared_memory"] == 40 * BIG.nbytes
        # the next map copies it again (its own segment), and none is left once it is done
        pool.map(np.sum, [BIG] * 4, chunksize=1)
        gc.collect()
        assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"poolwise-{os.getpid()}-")]
    assert pool.report().backend["bytes_copied_to_shared_memory"] == 2 * BIG.nbytes


def test_a_stream_of_new_arrays_keeps_few_segments_idle() -> None:
    from poolwise.backends.buffers import KEPT_IDLE

    def arrays() -> Iterator[np.ndarray]:
        for value in range(3 * KEPT_IDLE):
            yield np.full(BIG.size, value, dtype=np.int64)
            # never more than the chunks in flight plus KEPT_IDLE segments of this map
            mine = [n for n in os.listdir("/dev/shm") if n.startswith(f"poolwise-{os.getpid()}-")]
            assert len(mine) <= KEPT_IDLE + 8, mine

    with poolwise.Pool("processes", 2) as pool:
        sums = list(pool.imap(np.sum, arrays(), chunksize=1))
    assert sums == [value * BIG.size for value in range(3 * KEPT_IDLE)]


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


# -- big results: back through shared memory, mapped by the parent without a copy ---------


def _mapped_result_segments() -> list[str]:
    """This process's mappings of result segments (their names are unlinked once mapped)."""
    prefix = f"/dev/shm/poolwise-{os.getpid()}-r"
    return [line for line in Path("/proc/self/maps").read_text().splitlines() if prefix in line]


@linux_only
def test_a_big_result_comes_back_through_shared_memory_without_a_copy() -> None:
    with poolwise.Pool("processes", 2) as pool:
        results, report = pool.map(filled, range(4), chunksize=1, report=True)
    assert [float(r.sum()) for r in results] == [float(v * r.size) for v, r in enumerate(results)]
    assert report.backend["bytes_through_shared_memory"] == sum(r.nbytes for r in results)
    assert report.backend["bytes_through_pipe"] < results[0].nbytes
    # the arrays live in the segments' pages, whose names are gone already
    maps = _mapped_result_segments()
    assert maps
    assert all(line.endswith("(deleted)") for line in maps)
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"poolwise-{os.getpid()}-r")]
    results[0][0] = 5.0  # writable, like an unpickled array
    assert results[0][0] == 5.0


@linux_only
def test_a_big_results_memory_is_freed_when_the_result_dies() -> None:
    with poolwise.Pool("processes", 1) as pool:
        result = pool.submit(filled, 1).result(timeout=60)
    assert _mapped_result_segments()
    del result
    gc.collect()
    assert not _mapped_result_segments()


@linux_only
def test_big_bytes_results_keep_their_type_and_value() -> None:
    with poolwise.Pool("processes", 1) as pool:
        results, report = pool.map(big_bytes, [1, 2], report=True)
    assert results == [bytes([1]) * (2 << 20), bytes([2]) * (2 << 20)]
    assert report.backend["bytes_through_shared_memory"] == 2 * (2 << 20)


def test_small_results_stay_in_the_pipe() -> None:
    with poolwise.Pool("processes", 1) as pool:
        results, report = pool.map(filled, [1, 2], [0.01, 0.01], report=True)
    assert [r.size for r in results] == [1310, 1310]
    assert report.backend["bytes_through_shared_memory"] == 0
