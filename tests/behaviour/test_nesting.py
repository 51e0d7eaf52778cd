"""A map inside a warm pool's task: it finishes, on its own pool (#15).

Every outer task waits on an inner map. Were the inner maps queued onto the outer pool,
whose threads all wait, nothing would run them: these tests would hang until
pytest-timeout fails them (a deadlock, checked with the per-depth pools disabled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tasks import nested_imap_sum, nested_sum

if TYPE_CHECKING:
    from collections.abc import Iterator

import poolwise
from poolwise import warm

pytestmark = pytest.mark.timeout(60)

#: sum of squares below N
N = 20
EXPECTED = sum(x * x for x in range(N))


@pytest.fixture(autouse=True)
def _fresh_warm_pools() -> Iterator[None]:
    warm.shutdown_warm_pools()
    yield
    warm.shutdown_warm_pools()


@pytest.mark.parametrize("inner", ["threads", "serial", "auto", "processes"])
@pytest.mark.parametrize("outer", ["threads", "auto"])
def test_a_map_nested_in_a_warm_pool_finishes(outer: str, inner: str) -> None:
    # as many outer tasks as threads, all of them waiting on an inner map at once
    results = poolwise.starmap(
        nested_sum, [(N, inner, 2)] * 4, mode=outer, workers=2 if outer != "auto" else None
    )
    assert results == [EXPECTED] * 4


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_same_mode_and_size_nested_three_deep(workers: int) -> None:
    results = poolwise.starmap(
        nested_sum, [(N, "threads", workers, 2)] * 3, mode="threads", workers=workers
    )
    assert results == [EXPECTED] * 3
    # one pool per depth, each the size asked for
    for depth in range(3):
        pools = warm.warm_pools(depth)
        assert list(pools) == [("threads", workers)], (depth, pools)


def test_a_nested_imap_finishes() -> None:
    results = list(poolwise.imap(nested_imap_sum, [N] * 4, mode="threads", workers=2))
    assert results == [EXPECTED] * 4


async def asquare(x: int) -> int:
    return x * x


def test_async_outer_pool_with_a_blocking_nested_map() -> None:
    async def outer(n: int) -> int:
        # blocks the event loop's thread: the nested async map needs a loop of its own
        return sum(poolwise.map(asquare, range(n), mode="async", workers=2))

    assert poolwise.map(outer, [N] * 3, mode="async", workers=2) == [EXPECTED] * 3


def test_a_nested_map_on_a_process_worker_finishes() -> None:
    assert poolwise.map(nested_sum, [N] * 2, mode="processes", workers=2) == [EXPECTED] * 2


@pytest.mark.parametrize("inner", ["processes", "threads"])
def test_process_workers_with_their_own_warm_pools_exit_promptly(inner: str) -> None:
    # each worker starts a warm pool of its own; leaving the with block stops the workers
    # normally, and before #15 each waited ~300 s for its warm pool's idle reaper
    with poolwise.Pool("processes", 2) as pool:
        assert pool.starmap(nested_sum, [(N, inner, 2)] * 2) == [EXPECTED] * 2
    assert pool.report().backend["workers_started"] == 2
