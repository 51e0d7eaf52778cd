"""share(): arrays and buffers in shared memory, seen by workers without a copy."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest
from tasks import describe, kind_of, view_layout, where_is, write_first

import poolwise

SHM = Path("/dev/shm")


def segment_exists(shared: poolwise.Shared) -> bool:
    return (SHM / shared.name).exists()


@pytest.mark.not_on(
    "interpreters",
    reason="it shares a NumPy array, and NumPy cannot be imported in a subinterpreter "
    "(tests/interpreters checks shared bytes there)",
)
def test_a_process_worker_reads_the_parents_pages(pool: poolwise.Pool) -> None:
    with poolwise.share(np.arange(1 << 20, dtype=np.int64)) as shared:
        pid, mapping = pool.submit(where_is, shared).result(timeout=60)
        if pool.mode in ("processes", "dask"):  # dask: a LocalCluster's worker processes
            assert pid != os.getpid()
            # the worker's array lives in the segment itself: mapped, not copied
            assert f"/dev/shm/{shared.name}" in mapping
        else:
            assert pid == os.getpid()
            assert shared.name in mapping


@pytest.mark.not_on(
    "interpreters",
    reason="it shares a NumPy array, and NumPy cannot be imported in a subinterpreter "
    "(tests/interpreters checks shared bytes there)",
)
def test_a_write_through_a_writable_share_is_seen_by_the_parent(pool: poolwise.Pool) -> None:
    with poolwise.share(np.zeros(8, dtype=np.int32), writable=True) as shared:
        assert pool.map(write_first, [shared], [42]) != []
        assert shared.value[0] == 42
    with poolwise.share(bytearray(16), writable=True) as shared:
        pool.submit(write_first, shared, 7).result(timeout=60)
        assert shared.value[0] == 7


@pytest.mark.not_on(
    "interpreters",
    reason="it shares a NumPy array, and NumPy cannot be imported in a subinterpreter "
    "(tests/interpreters checks shared bytes there)",
)
def test_a_read_only_share_refuses_writes(pool: poolwise.Pool) -> None:
    with poolwise.share(np.zeros(4)) as shared:
        with pytest.raises(ValueError, match="read-only"):
            pool.submit(write_first, shared, 1).result(timeout=60)
        assert shared.value[0] == 0
    with poolwise.share(b"abc") as shared, pytest.raises(TypeError, match="read-only"):
        pool.submit(write_first, shared, 1).result(timeout=60)


def test_every_mode_hands_tasks_the_value(pool: poolwise.Pool) -> None:
    # threads and serial get Shared.value; the others unpickle the Shared as its value
    with poolwise.share(b"xyz") as shared:
        assert pool.map(kind_of, [shared, shared]) == ["memoryview", "memoryview"]
        assert pool.map(bytes, [shared]) == [b"xyz"]


ARRAYS = {
    "C int64": np.arange(24, dtype=np.int64).reshape(2, 3, 4),
    "Fortran float32": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    "every other column": np.arange(40, dtype=np.float64).reshape(4, 10)[:, ::2],
    "big-endian": np.arange(5, dtype=">u4"),
    "complex": np.array([1 + 2j, 3 - 4j]),
    "bool": np.array([True, False, True]),
    "structured": np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
    "0-d": np.array(3.5),
    "empty": np.zeros((0, 3)),
}


@pytest.mark.not_on(
    "interpreters",
    reason="it shares a NumPy array, and NumPy cannot be imported in a subinterpreter "
    "(tests/interpreters checks shared bytes there)",
)
@pytest.mark.parametrize("name", list(ARRAYS))
def test_dtype_shape_and_order_round_trip(pool: poolwise.Pool, name: str) -> None:
    array = ARRAYS[name]
    with poolwise.share(array) as shared:
        dtype, shape, fortran, writable, data = pool.submit(describe, shared).result(timeout=60)
    assert dtype == array.dtype
    assert shape == array.shape
    assert fortran == (array.flags.f_contiguous and not array.flags.c_contiguous)
    assert not writable
    expected = np.asarray(array, order="F" if fortran else "C").tobytes(order="A")
    assert data == expected


def test_bytes_like_inputs_arrive_as_memoryviews() -> None:
    for data in (b"hello", bytearray(b"hello"), memoryview(b"xhellox")[1:6]):
        with poolwise.share(data) as shared:
            assert shared.nbytes == 5
            assert poolwise.map(bytes, [shared], mode="processes") == [b"hello"]


@pytest.mark.parametrize("mode", ["serial", "threads", "processes"])
def test_a_memoryview_keeps_its_format_and_shape(mode: str) -> None:
    # a (2, 3) view of doubles came back flat, as bytes of format "B" (#15)
    source = memoryview(bytearray(np.arange(6, dtype=np.float64).tobytes())).cast("d", (2, 3))
    with poolwise.share(source) as shared:
        assert (shared.value.format, shared.value.shape) == ("d", (2, 3))
        [seen] = poolwise.map(view_layout, [shared], mode=mode)  # type: ignore[arg-type]
    assert seen == ("d", (2, 3), [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])


def test_array_subclasses_and_uncastable_views_are_refused_not_changed() -> None:
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    with pytest.raises(TypeError, match=r"plain numpy.ndarray.*MaskedArray"):
        poolwise.share(masked)  # came back as a plain array: sum 6.0 instead of 4.0
    with pytest.warns(PendingDeprecationWarning, match="matrix"):
        matrix = np.matrix([[1, 2], [3, 4]])
    with pytest.raises(TypeError, match="matrix"):
        poolwise.share(matrix)  # came back multiplying elementwise
    records = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    with pytest.raises(TypeError, match="memoryview of format"):
        poolwise.share(memoryview(records))
    assert not [name for name in os.listdir("/dev/shm") if name.startswith("poolwise-")]


def test_unsupported_objects_are_a_type_error_naming_what_works() -> None:
    with pytest.raises(TypeError, match="NumPy array, bytes, bytearray or memoryview"):
        poolwise.share(object())
    with pytest.raises(TypeError, match="Python objects"):
        poolwise.share(np.array([object()]))
    with pytest.raises(TypeError, match="list"):
        poolwise.share([1, 2, 3])


def test_close_frees_the_segment_and_later_use_is_an_error() -> None:
    shared = poolwise.share(np.ones(10))
    assert segment_exists(shared)
    shared.close()
    assert shared.closed
    assert not segment_exists(shared)
    with pytest.raises(ValueError, match="closed"):
        shared.value  # noqa: B018
    with pytest.raises(poolwise.NotPicklable, match="closed"):
        poolwise.map(describe, [shared], mode="processes")
    shared.close()  # twice is fine


def test_garbage_collection_frees_the_segment() -> None:
    shared = poolwise.share(np.ones(10))
    path = SHM / shared.name
    assert path.exists()
    del shared
    gc.collect()
    assert not path.exists()


def test_one_share_serves_many_tasks_and_pools() -> None:
    with poolwise.share(np.arange(1000)) as shared:
        for mode in ("serial", "threads", "processes"):
            with poolwise.Pool(mode, 2) as pool:  # type: ignore[arg-type]
                sums = pool.map(np.sum, [shared] * 20)
            assert sums == [499500] * 20


def test_auto_counts_a_share_as_free_to_send() -> None:
    from poolwise.profiling import pickling_cost

    big = np.zeros(16 << 20, dtype=np.uint8)
    with poolwise.share(big) as shared:
        plain_seconds, plain_bytes, _ = pickling_cost(np.sum, big, 0)
        shared_seconds, shared_bytes, _ = pickling_cost(np.sum, shared, 0)
    assert plain_bytes > 16 << 20
    assert shared_bytes < 1000
    assert shared_seconds is not None
    assert plain_seconds is not None
    assert shared_seconds < plain_seconds
