"""One behaviour suite, run on every mode and start method through the ``pool`` fixture."""

from __future__ import annotations

import itertools
import threading
import traceback
from concurrent.futures import Future, as_completed
from typing import TYPE_CHECKING

import pytest
from support import Counted
from tasks import (
    CustomError,
    add,
    busy,
    doze,
    fail_on,
    identity,
    keyword,
    raise_custom,
    record,
    square,
    worker_id,
)

import poolwise
from poolwise.maprun import MAX_READ_AHEAD, WINDOW_PER_WORKER

if TYPE_CHECKING:
    from pathlib import Path


def test_map_returns_results_in_input_order(pool: poolwise.Pool) -> None:
    assert pool.map(square, range(200)) == [x * x for x in range(200)]


def test_map_takes_one_item_from_each_iterable(pool: poolwise.Pool) -> None:
    assert pool.map(add, [1, 2, 3], (10, 20, 30)) == [11, 22, 33]


def test_starmap_unpacks_each_item(pool: poolwise.Pool) -> None:
    assert pool.starmap(pow, [(2, 3), (3, 2), (10, 0)]) == [8, 9, 1]


def test_istarmap_is_lazy_starmap(pool: poolwise.Pool) -> None:
    pairs = ((x, 2) for x in itertools.count())
    assert list(itertools.islice(pool.istarmap(pow, pairs), 4)) == [0, 1, 4, 9]


def test_imap_unordered_yields_every_result_once(pool: poolwise.Pool) -> None:
    assert sorted(pool.imap_unordered(square, range(100))) == [x * x for x in range(100)]


def test_map_unordered_returns_every_result(pool: poolwise.Pool) -> None:
    assert sorted(pool.map(square, range(50), ordered=False)) == [x * x for x in range(50)]


@pytest.mark.parametrize("chunksize", [1, 3, 1000])
def test_fixed_chunksize_keeps_order(pool: poolwise.Pool, chunksize: int) -> None:
    assert pool.map(square, range(37), chunksize=chunksize) == [x * x for x in range(37)]


def test_empty_input_gives_empty_list(pool: poolwise.Pool) -> None:
    assert pool.map(square, []) == []
    assert list(pool.imap(square, iter([]))) == []


def test_lambdas_and_closures_travel(pool: poolwise.Pool) -> None:
    offset = 7
    assert pool.map(lambda x: x + offset, range(5)) == [7, 8, 9, 10, 11]


def test_submit_returns_a_future_with_the_result(pool: poolwise.Pool) -> None:
    future = pool.submit(keyword, 3, scale=5)
    assert isinstance(future, Future)
    assert future.result(timeout=30) == 15


def test_futures_work_with_as_completed(pool: poolwise.Pool) -> None:
    futures = [pool.submit(square, x) for x in range(10)]
    assert sorted(f.result() for f in as_completed(futures, timeout=30)) == [
        x * x for x in range(10)
    ]


def test_task_exception_reaches_caller_as_itself(pool: poolwise.Pool) -> None:
    with pytest.raises(ValueError, match="input 5 is bad") as info:
        pool.map(fail_on, range(10))
    text = "".join(traceback.format_exception(info.value))
    assert "fail_on" in text  # the worker's frame is in what the user sees


def test_exception_with_custom_init_arrives_with_its_fields(pool: poolwise.Pool) -> None:
    future = pool.submit(raise_custom, 4)
    with pytest.raises(CustomError) as info:
        future.result(timeout=30)
    assert (info.value.code, info.value.detail) == (4, "custom")


def test_submit_exception_is_set_on_the_future(pool: poolwise.Pool) -> None:
    future = pool.submit(fail_on, 5)
    assert isinstance(future.exception(timeout=30), ValueError)


def test_first_failure_in_input_order_is_raised(pool: poolwise.Pool) -> None:
    results = pool.imap(fail_on, range(10), chunksize=1)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="input 5"):
        next(results)


def test_each_input_runs_exactly_once(pool: poolwise.Pool, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    inputs = list(range(300))
    results = pool.map(record, [str(log)] * len(inputs), inputs)
    assert results == inputs
    assert sorted(int(line) for line in log.read_text().split()) == inputs


def test_imap_works_on_an_endless_generator(pool: poolwise.Pool) -> None:
    results = pool.imap(square, itertools.count())
    assert list(itertools.islice(results, 25)) == [x * x for x in range(25)]


def test_imap_reads_a_bounded_number_of_inputs_ahead(pool: poolwise.Pool) -> None:
    inputs = Counted()
    results = pool.imap(identity, inputs, chunksize=1)
    assert next(results) == 0
    # the window of chunks, plus the first input peeked for the checks
    assert inputs.taken <= WINDOW_PER_WORKER * pool.workers + 1


@pytest.mark.parametrize("kind", ["imap", "imap_unordered", "istarmap"])
def test_gh13_imap_reads_at_most_buffersize_ahead_of_the_caller(
    pool: poolwise.Pool, kind: str
) -> None:
    inputs = Counted()
    if kind == "istarmap":
        results = pool.istarmap(add, ((x, 0) for x in inputs), buffersize=5)
    else:
        results = getattr(pool, kind)(identity, inputs, buffersize=5)
    for consumed in range(1, 30):
        next(results)
        # buffersize not yet handed over, plus the first input peeked for the checks
        assert inputs.taken - consumed <= 5 + 1, (consumed, inputs.taken)
    results.close()
    assert inputs.taken <= 29 + 5 + 1


def test_gh13_imap_of_tiny_tasks_reads_about_two_chunks_per_worker(pool: poolwise.Pool) -> None:
    """Tiny tasks grow chunks to thousands of tasks: the read-ahead stays bounded by the
    chunks in flight and by MAX_READ_AHEAD (it was 15,000-87,000 inputs for 20 results)."""
    inputs = Counted()
    results = pool.imap(identity, inputs)
    for _ in range(3000):
        next(results)
    taken = inputs.taken
    results.close()  # type: ignore[attr-defined]
    assert taken - 3000 <= MAX_READ_AHEAD + 1
    assert inputs.taken == taken, "closing reads nothing more"


def test_pool_can_be_used_from_several_threads(pool: poolwise.Pool) -> None:
    barrier = threading.Barrier(4)
    outcomes: dict[int, list[int]] = {}

    def use(n: int) -> None:
        barrier.wait(timeout=30)
        outcomes[n] = pool.map(square, range(n * 10, n * 10 + 50))

    threads = [threading.Thread(target=use, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes == {n: [x * x for x in range(n * 10, n * 10 + 50)] for n in range(4)}


def test_closed_pool_refuses_work(pool: poolwise.Pool) -> None:
    pool.close()
    with pytest.raises(poolwise.PoolClosed):
        pool.submit(square, 1)
    with pytest.raises(poolwise.PoolClosed):
        pool.map(square, [1])
    pool.join()


def test_join_waits_for_submitted_work(pool: poolwise.Pool) -> None:
    futures = [pool.submit(square, x) for x in range(20)]
    pool.close()
    pool.join()
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [x * x for x in range(20)]


def test_join_before_close_is_an_error(pool: poolwise.Pool) -> None:
    with pytest.raises(ValueError, match="close"):
        pool.join()


def test_report_counts_tasks(pool: poolwise.Pool) -> None:
    pool.map(square, range(30))
    with pytest.raises(ValueError, match="input 5"):
        pool.map(fail_on, [5])
    report = pool.report()
    assert report.mode == pool.mode
    assert report.workers == pool.workers
    assert (report.tasks_submitted, report.tasks_done, report.tasks_failed) == (31, 30, 1)
    assert report.to_dict()["tasks_done"] == 30
    assert "30 done" in str(report)
    assert report.reasons
    assert report.reasons[0].startswith("chunksize")


def test_map_with_report_covers_that_map_only(pool: poolwise.Pool) -> None:
    pool.map(square, range(10))
    results, report = pool.map(busy, range(20), report=True)
    assert results == list(range(20))
    assert (report.tasks_submitted, report.tasks_done, report.tasks_failed) == (20, 20, 0)
    assert pool.report().tasks_done == 30
    # 20 tasks of 1 ms CPU each, read from the workers' own thread clocks
    assert 0.02 <= report.cpu_seconds <= report.task_seconds + 0.01
    assert report.to_dict()["cpu_seconds"] == report.cpu_seconds


def test_the_report_tells_waiting_from_computing(pool: poolwise.Pool) -> None:
    _, report = pool.starmap(doze, [(x,) for x in range(6)], report=True)
    assert report.task_seconds >= 0.06
    assert report.cpu_seconds < report.task_seconds / 2
    assert "on the CPU" in str(report)


def test_process_workers_are_other_processes(pool: poolwise.Pool) -> None:
    pid, thread = pool.submit(worker_id).result(timeout=30)
    here = worker_id()
    if pool.mode in ("processes", "dask"):  # dask: a LocalCluster's worker processes
        assert pid != here[0]
    elif pool.mode in ("threads", "interpreters"):  # interpreters: one thread each, here
        assert (pid, thread != here[1]) == (here[0], True)
    else:
        assert (pid, thread) == here


def test_with_block_waits_for_work_and_closes(pool_kind: tuple[str, str | None]) -> None:
    mode, method = pool_kind
    with poolwise.Pool(mode, 2, start_method=method) as pool:  # type: ignore[arg-type]
        futures = [pool.submit(square, x) for x in range(10)]
    assert [f.result(timeout=0) for f in futures] == [x * x for x in range(10)]
    with pytest.raises(poolwise.PoolClosed):
        pool.submit(square, 1)


def test_until_a_task_is_measured_one_chunk_per_worker_is_queued() -> None:
    # Chunks of one task queued behind a worker's start-up would stay one-task chunks;
    # the rest wait for the first measurement, which sizes them.
    started = threading.Barrier(3)
    release = threading.Event()
    inputs = Counted()

    def hold(x: int) -> int:
        if x < 2:
            started.wait(timeout=30)
            release.wait(timeout=30)
        return x

    with poolwise.Pool("threads", 2) as pool:
        results = pool.imap(hold, itertools.islice(inputs, 100))
        first: list[int] = []
        consumer = threading.Thread(target=lambda: first.append(next(results)))
        consumer.start()
        started.wait(timeout=30)  # both workers hold a task: nothing is measured yet
        assert inputs.taken <= 2 + 1  # a chunk per worker, plus the input peeked for the checks
        release.set()
        consumer.join(timeout=30)
        assert first == [0]
        assert list(results) == list(range(1, 100))


def test_gh13_map_keeps_every_worker_busy_behind_a_slow_first_task() -> None:
    """map() holds every result anyway: while task 0 runs, the other worker must run all
    the rest (it stopped after a window of 8 before, idling until task 0 ended)."""
    others_done = threading.Event()
    count = 0
    lock = threading.Lock()

    def slow_first(x: int) -> int:
        nonlocal count
        if x == 0:
            assert others_done.wait(timeout=60), "the other tasks never ran"
            return x
        with lock:
            count += 1
            if count == 99:
                others_done.set()
        return x

    with poolwise.Pool("threads", 2) as pool:
        assert pool.map(slow_first, range(100), chunksize=1) == list(range(100))
