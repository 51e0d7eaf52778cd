"""retries= re-runs a task that raised, crashed its worker or timed out; nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tasks import fails_with_value_error, flaky

import poolwise

if TYPE_CHECKING:
    from pathlib import Path

MODES = ["serial", "threads", "processes"]


def _runs(folder: Path, x: int) -> int:
    path = folder / str(x)
    return path.read_text().count("run") if path.exists() else 0


@pytest.mark.parametrize("mode", MODES)
def test_a_task_that_raised_runs_again_and_the_report_names_it(mode: str, tmp_path: Path) -> None:
    with poolwise.Pool(mode, 2) as pool:  # type: ignore[arg-type]
        inputs = list(range(8))
        results = pool.map(flaky, [str(tmp_path)] * 8, inputs, retries=1)
        report = pool.report()
    assert results == inputs
    assert [_runs(tmp_path, x) for x in inputs] == [2] * 8
    assert report.tasks_retried == 8
    assert report.retried_inputs == inputs
    assert (report.tasks_done, report.tasks_failed) == (8, 0)


@pytest.mark.parametrize("mode", MODES)
def test_retries_run_out(mode: str, tmp_path: Path) -> None:
    pool = poolwise.Pool(mode, 2)  # type: ignore[arg-type]
    with pool, pytest.raises(ConnectionError, match="run 3"):
        pool.map(flaky, [str(tmp_path)], [0], ["raise"], [5], retries=2)
    assert _runs(tmp_path, 0) == 3  # once, then two retries


def test_retry_on_narrows_what_is_retried(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="always fails"):
        poolwise.map(fails_with_value_error, [1], mode="threads", retries=3, retry_on=KeyError)
    results = poolwise.map(
        flaky, [str(tmp_path)], [7], mode="threads", retries=1, retry_on=ConnectionError
    )
    assert results == [7]


def test_retry_on_must_name_exception_types() -> None:
    with pytest.raises(TypeError, match="retry_on=42 must be an exception class"):
        poolwise.map(abs, [1], mode="serial", retries=1, retry_on=42)  # type: ignore[arg-type]


def test_a_crashed_worker_s_task_runs_again(tmp_path: Path) -> None:
    with poolwise.Pool("processes", 2, retries=1) as pool:
        assert pool.map(flaky, [str(tmp_path)] * 4, range(4), ["exit"] * 4, chunksize=1) == [
            0,
            1,
            2,
            3,
        ]
        report = pool.report()
    assert report.backend["workers_crashed"] == 4
    assert report.tasks_retried == 4


@pytest.mark.parametrize("method", ["forkserver", "fork"])
def test_a_task_that_finished_before_a_crash_is_never_run_again(
    tmp_path: Path, method: str
) -> None:
    # One chunk of 10 on one worker; task 5 ends the worker the first time. Tasks 0-4 had
    # finished but their results waited for the next flush: before #15 the crash took them,
    # and the retry ran them a second time.
    inputs = list(range(10))
    with poolwise.Pool("processes", 1, retries=1, start_method=method) as pool:
        results = pool.map(
            flaky,
            [str(tmp_path)] * 10,
            inputs,
            ["exit"] * 10,
            [1 if x == 5 else 0 for x in inputs],
            chunksize=10,
        )
        report = pool.report()
    assert results == inputs
    assert [_runs(tmp_path, x) for x in inputs] == [1] * 5 + [2] + [1] * 4
    assert report.retried_inputs == [5]


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_timed_out_task_runs_again(mode: str, tmp_path: Path) -> None:
    with poolwise.Pool(mode, 2, timeout=0.3, retries=1) as pool:  # type: ignore[arg-type]
        future = pool.submit(flaky, str(tmp_path), 1, "spin")
        assert future.result(timeout=60) == 1
    assert _runs(tmp_path, 1) == 2


def test_submit_retries_follow_the_pool(tmp_path: Path) -> None:
    with poolwise.Pool("threads", 2, retries=2) as pool:
        assert pool.submit(flaky, str(tmp_path), 3, fail_times=2).result(timeout=60) == 3
        assert pool.report().tasks_retried == 2


def test_unpicklable_input_is_not_retried() -> None:
    import threading

    with poolwise.Pool("processes", 1, retries=3) as pool:
        results = pool.imap(abs, [1, threading.Lock()], chunksize=2)  # type: ignore[list-item]
        assert next(results) == 1
        with pytest.raises(poolwise.NotPicklable):
            next(results)
        assert pool.report().tasks_retried == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    failing=st.sets(st.integers(0, 39), max_size=40),
    retries=st.integers(1, 2),
    chunksize=st.one_of(st.none(), st.integers(1, 7)),
    ordered=st.booleans(),
)
def test_every_input_one_outcome_under_injected_failures(
    mode: str,
    tmp_path_factory: pytest.TempPathFactory,
    failing: set[int],
    retries: int,
    chunksize: int | None,
    ordered: bool,
) -> None:
    folder = tmp_path_factory.mktemp("runs")
    inputs = list(range(40))
    fail_times = [1 if x in failing else 0 for x in inputs]
    results = poolwise.map(
        flaky,
        [str(folder)] * 40,
        inputs,
        ["raise"] * 40,
        fail_times,
        mode=mode,  # type: ignore[arg-type]
        workers=2,
        retries=retries,
        chunksize=chunksize,
        ordered=ordered,
    )
    assert (results if ordered else sorted(results)) == inputs
    assert [_runs(folder, x) for x in inputs] == [1 + t for t in fail_times]
