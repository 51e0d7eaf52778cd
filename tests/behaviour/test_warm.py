"""poolwise.map/imap/starmap reuse a warm pool; it is reaped when idle or interrupted."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest
from support import wait_until
from tasks import add, square, worker_id

import poolwise
from poolwise import warm

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(autouse=True)
def _fresh_warm_pools() -> None:
    warm.shutdown_warm_pools()


def test_module_functions_give_results() -> None:
    assert poolwise.map(square, range(10), mode="threads") == [x * x for x in range(10)]
    assert list(poolwise.imap(square, range(5), mode="serial")) == [0, 1, 4, 9, 16]
    assert poolwise.starmap(add, [(1, 2), (3, 4)], mode="threads") == [3, 7]


def test_process_workers_are_reused_across_calls() -> None:
    first = {pid for pid, _ in poolwise.map(worker_id, range(20), mode="processes", workers=2)}
    second = {pid for pid, _ in poolwise.map(worker_id, range(20), mode="processes", workers=2)}
    assert first & second


def test_idle_warm_pool_is_reaped(
    monkeypatch: pytest.MonkeyPatch, no_workers_left: Callable[[], None]
) -> None:
    monkeypatch.setattr(warm, "IDLE_TIMEOUT", 0.2)  # read when the call gives the pool back
    poolwise.map(square, range(4), mode="processes", workers=1)
    assert ("processes", 1) in warm.warm_pools()
    wait_until(lambda: ("processes", 1) not in warm.warm_pools())
    no_workers_left()


def test_abandoned_imap_gives_the_pool_back() -> None:
    results = poolwise.imap(square, itertools.count(), mode="threads", workers=2)
    assert next(results) == 0
    assert warm.warm_pools()[("threads", 2)].users == 1
    results.close()  # type: ignore[attr-defined]
    assert warm.warm_pools()[("threads", 2)].users == 0


def test_keyboard_interrupt_terminates_the_warm_pool(no_workers_left: Callable[[], None]) -> None:
    def inputs() -> Iterator[int]:
        yield from range(3)
        raise KeyboardInterrupt  # Ctrl-C while the run pulls inputs

    assert poolwise.map(square, range(3), mode="processes", workers=1) == [0, 1, 4]
    pool = warm.warm_pools()[("processes", 1)].pool
    with pytest.raises(KeyboardInterrupt):
        poolwise.map(square, inputs(), mode="processes", workers=1, chunksize=1)
    assert ("processes", 1) not in warm.warm_pools()
    with pytest.raises(poolwise.PoolClosed):
        pool.submit(square, 1)
    no_workers_left()


def test_one_idle_warm_pool_per_mode_whatever_the_sizes_asked(
    no_workers_left: Callable[[], None],
) -> None:
    # a loop over workers=1..4 used to keep 4 pools (10 processes) for 5 minutes (#15)
    for workers in range(1, 5):
        assert poolwise.map(square, range(8), mode="processes", workers=workers) == [
            x * x for x in range(8)
        ]
    assert list(warm.warm_pools()) == [("processes", 4)]
    pids = {pid for pid, _ in poolwise.map(worker_id, range(8), mode="processes", workers=4)}
    assert len(pids) <= 4
    warm.shutdown_warm_pools()
    no_workers_left()


def test_a_pool_in_use_is_not_retired_by_another_size() -> None:
    results = poolwise.imap(square, range(100), mode="threads", workers=2)
    assert next(results) == 0
    # another size while the imap holds its pool: both live until the imap is done
    assert poolwise.map(square, range(4), mode="threads", workers=3) == [0, 1, 4, 9]
    assert set(warm.warm_pools()) == {("threads", 2), ("threads", 3)}
    assert list(results) == [x * x for x in range(1, 100)]
    # the next map of another size retires the idle ones
    assert poolwise.map(square, range(4), mode="threads", workers=4) == [0, 1, 4, 9]
    assert list(warm.warm_pools()) == [("threads", 4)]
