"""Property: for any inputs, chunk size and worker count, results equal the builtin map
and each input ran exactly once."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tasks import record

import poolwise

if TYPE_CHECKING:
    from collections.abc import Iterator

MODES = ["serial", "threads", "processes"]


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[tuple[str, int], poolwise.Pool]]:
    cache: dict[tuple[str, int], poolwise.Pool] = {}
    yield cache
    for pool in cache.values():
        pool.terminate()


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    inputs=st.lists(st.integers(-1000, 1000), max_size=120),
    chunksize=st.one_of(st.none(), st.integers(1, 50)),
    workers=st.integers(1, 4),
    ordered=st.booleans(),
)
def test_results_match_builtin_map_and_run_once(
    pools: dict[tuple[str, int], poolwise.Pool],
    mode: str,
    inputs: list[int],
    chunksize: int | None,
    workers: int,
    ordered: bool,
) -> None:
    pool = pools.get((mode, workers))
    if pool is None:
        pool = pools[(mode, workers)] = poolwise.Pool(mode, workers)  # type: ignore[arg-type]
    fd, log = tempfile.mkstemp(prefix="poolwise-test-")
    os.close(fd)
    try:
        results = pool.map(
            record, [log] * len(inputs), inputs, chunksize=chunksize, ordered=ordered
        )
        with open(log) as f:
            ran = sorted(int(line) for line in f.read().split())
    finally:
        os.unlink(log)
    expected = list(map(lambda x: x, inputs))  # noqa: C417 - the builtin is the oracle
    assert (results if ordered else sorted(results)) == (expected if ordered else sorted(expected))
    assert ran == sorted(inputs)
