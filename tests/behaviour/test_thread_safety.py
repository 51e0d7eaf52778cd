"""Where the GIL used to hide races (#16): one pool, the warm pools, futures, progress
counters and ``Shared`` used from many threads at once. On a free-threaded build the
callers run truly in parallel; with a GIL they still interleave at every switch."""

from __future__ import annotations

import io
import re
import threading
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING

import numpy as np
import pytest
from tasks import square

import poolwise
from poolwise import shared
from poolwise.progress import STEPS, PlainProgress
from poolwise.warm import shutdown_warm_pools, warm_pools

if TYPE_CHECKING:
    from collections.abc import Callable

#: Threads calling at once: more than the 2 CPUs here, fewer than a test can afford.
CALLERS = 8


def together(count: int, job: Callable[[int], object]) -> None:
    """Run ``job(0..count-1)`` on ``count`` threads released at once; re-raise the first
    error; fail if one is still running after two minutes."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            job(index)
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [t for t in threads if t.is_alive()], "a caller hung"
    if errors:
        raise errors[0]


def test_one_pool_used_by_many_callers_loses_and_repeats_nothing(pool: poolwise.Pool) -> None:
    outcomes: dict[int, tuple[list[int], list[int], list[int]]] = {}

    def use(caller: int) -> None:
        inputs = range(caller * 1000, caller * 1000 + 40)
        futures = [pool.submit(square, x) for x in inputs]
        mapped = pool.map(square, inputs)
        unordered = sorted(pool.imap_unordered(square, inputs))
        outcomes[caller] = ([f.result(timeout=60) for f in futures], mapped, unordered)

    together(CALLERS, use)
    for caller in range(CALLERS):
        expected = [x * x for x in range(caller * 1000, caller * 1000 + 40)]
        assert outcomes[caller] == (expected, expected, expected)
    report = pool.report()
    assert (report.tasks_submitted, report.tasks_done) == (CALLERS * 120, CALLERS * 120)
    assert report.tasks_failed == 0


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_warm_maps_from_many_threads_share_one_warm_pool(mode: str) -> None:
    shutdown_warm_pools()
    outcomes: dict[int, list[int]] = {}

    def use(caller: int) -> None:
        outcomes[caller] = poolwise.map(square, range(caller, caller + 30), mode=mode, workers=2)  # type: ignore[call-overload]

    together(CALLERS, use)
    assert outcomes == {c: [x * x for x in range(c, c + 30)] for c in range(CALLERS)}
    pools = warm_pools()
    assert list(pools) == [(mode, 2)], "one warm pool, however many callers raced for it"
    assert pools[(mode, 2)].users == 0


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_futures_settle_once_while_callers_cancel_and_watch_them(mode: str) -> None:
    calls: list[int] = []
    with poolwise.Executor(mode, max_workers=2) as executor:  # type: ignore[arg-type]
        futures = [executor.submit(square, x) for x in range(400)]
        cancelled: list[int] = []

        def watch_and_cancel(caller: int) -> None:
            for index, future in enumerate(futures):
                future.add_done_callback(lambda _, index=index: calls.append(index))
                if index % CALLERS == caller and index % 2 and future.cancel():
                    cancelled.append(index)

        together(CALLERS, watch_and_cancel)
        for index, future in enumerate(futures):
            if index in cancelled:
                assert future.cancelled()
                with pytest.raises(CancelledError):
                    future.result(timeout=60)
            else:
                assert future.result(timeout=60) == index * index
        report = executor.pool.report()
    assert report.tasks_done == 400 - len(cancelled), "a cancelled task ran, or one was lost"
    assert sorted(calls) == sorted(list(range(400)) * CALLERS), "each callback once"


def test_progress_lines_count_every_advance_from_many_threads() -> None:
    stream = io.StringIO()
    per_caller = 1000
    total = CALLERS * per_caller
    bar = PlainProgress(total, "map", stream)

    def advance(_: int) -> None:
        for n in range(per_caller):
            bar.advance(1, 1 if n % 10 == 0 else 0)

    together(CALLERS, advance)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith(f"map: finished {total}/{total}, {total // 10} failed")
    counts = [int(re.match(r"map: (\d+)/", line).group(1)) for line in lines[:-1]]  # type: ignore[union-attr]
    assert len(counts) == STEPS - 1, "one line per tenth, none twice"
    assert counts == sorted(set(counts))


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_one_shared_array_used_by_many_callers_then_closed_by_all(mode: str) -> None:
    array = np.arange(200_000, dtype=np.int64)
    data = poolwise.share(array)
    name = "/" + data.name
    sums: dict[int, list[int]] = {}
    with poolwise.Pool(mode, 2) as pool:  # type: ignore[arg-type]
        together(CALLERS, lambda c: sums.__setitem__(c, pool.map(np.sum, [data] * 6)))
    assert sums == {c: [int(array.sum())] * 6 for c in range(CALLERS)}
    together(CALLERS, lambda _: data.close())
    assert data.closed
    assert not shared.segment_exists(name)
    with pytest.raises(ValueError, match="closed"):
        _ = data.value
