"""mode="auto" (the default): probes with real tasks, runs the rest where it fits."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest
from support import Counted, pure_python_mode
from tasks import count_primes, fail_on_one, identity, nap, record

import poolwise
from poolwise import pool as pool_module

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def test_map_defaults_to_auto_and_returns_every_result() -> None:
    assert poolwise.map(identity, range(100)) == list(range(100))


def test_waiting_work_runs_on_threads_and_the_report_says_why() -> None:
    with poolwise.Pool() as pool:
        assert pool.map(nap, range(12)) == [None] * 12
        report = pool.report()
    assert report.mode == "threads"
    assert report.reasons[0] == "mode auto chose threads:"
    assert any("I/O-bound" in reason for reason in report.reasons)


@pytest.mark.slow
def test_gil_bound_compute_runs_on_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "cpus", lambda: 2)
    inputs = [100_000 + 4000 * i for i in range(40)]
    modes = []
    for _ in range(3):  # the scaling round is timed on a shared machine: most of three
        with poolwise.Pool() as pool:
            assert pool.map(count_primes, inputs) == [count_primes(i) for i in inputs]
            modes.append(pool.report().mode)
    assert max(set(modes), key=modes.count) == pure_python_mode()


@pytest.mark.parametrize("ordered", [True, False])
def test_each_input_runs_exactly_once(tmp_path: Path, ordered: bool) -> None:
    log = tmp_path / "runs"
    inputs = list(range(60))
    results = poolwise.map(record, [str(log)] * 60, inputs, ordered=ordered)
    assert sorted(results) == inputs
    assert sorted(int(line) for line in log.read_text().split()) == inputs


def test_an_error_in_the_probe_is_raised_at_its_place() -> None:
    results = poolwise.imap(fail_on_one, range(10))
    assert next(results) == 0
    with pytest.raises(ValueError, match="input 1 is bad"):
        next(results)


def test_endless_generator() -> None:
    results = poolwise.imap(identity, itertools.count())
    assert list(itertools.islice(results, 50)) == list(range(50))


@pytest.mark.parametrize("fn", [identity, nap, count_primes])
def test_gh13_auto_reads_at_most_buffersize_ahead(fn: Callable[[int], object]) -> None:
    """Probing included: the serial stage takes one input at a time, the round on threads
    no more than buffersize, then the chosen mode is bounded like any run."""
    inputs = Counted(itertools.count(1000))
    with poolwise.Pool() as pool:
        results = pool.imap(fn, inputs, buffersize=4)
        for consumed in range(1, 13):
            next(results)
            assert inputs.taken - consumed <= 4 + 1, (consumed, inputs.taken)
        results.close()  # type: ignore[attr-defined]


def test_the_process_round_reads_no_further_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    # on a busy machine where the thread round cannot tell, a round on processes runs; it
    # took 25 inputs under buffersize=4 (seen on a loaded machine)
    from poolwise import profiling

    rounds: list[bool] = []

    def always(*_: object) -> bool:
        rounds.append(True)
        return True

    monkeypatch.setattr(profiling, "wants_process_round", always)
    inputs = Counted(itertools.count(1000))
    with poolwise.Pool() as pool:
        results = pool.imap(count_primes, inputs, buffersize=4)
        for consumed in range(1, 13):
            next(results)
            assert inputs.taken - consumed <= 4 + 1, (consumed, inputs.taken)
        results.close()  # type: ignore[attr-defined]
    assert rounds


def test_tiny_tasks_run_serially() -> None:
    with poolwise.Pool() as pool:
        assert pool.map(identity, range(10)) == list(range(10))
        assert pool.report().mode == "serial"


def test_submit_under_auto_runs_on_threads() -> None:
    with poolwise.Pool() as pool:
        assert pool.submit(identity, 5).result(timeout=30) == 5


def test_async_functions_go_to_the_async_mode_unmeasured() -> None:
    async def fetch(x: int) -> int:
        return x

    results, report = poolwise.map(fetch, [1, 2], report=True)
    assert results == [1, 2]
    assert report.mode == "async"
    assert "async def function" in report.reasons[1]
