"""BLAS/OpenMP thread pools under a pool: workers x native threads <= CPUs (#17).

Checked from inside the workers with threadpoolctl, which reads the libraries' own
settings: process workers start limited (forkserver, spawn, fork), thread workers are
limited while a map runs and the process gets its width back after.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

import poolwise

np = pytest.importorskip("numpy", reason="the native thread pools checked here are NumPy's")
threadpoolctl = pytest.importorskip("threadpoolctl")

WORKERS = 2


def widths(_: object = None) -> dict[str, Any]:
    """The native pools' widths as this thread sees them, and the variables."""
    info = threadpoolctl.threadpool_info()
    return {
        "blas": {pool["num_threads"] for pool in info if pool["user_api"] == "blas"},
        "openmp": {pool["num_threads"] for pool in info if pool["user_api"] == "openmp"},
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def widths_after_loading_numpy(_: object = None) -> dict[str, Any]:
    import numpy  # noqa: F401 - loaded by the task, after the worker started

    return widths()


def expected_width(workers: int = WORKERS) -> int:
    return max(1, poolwise.cpus() // workers)


def original_blas_width() -> set[int]:
    return widths()["blas"]


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_process_workers_start_with_cpus_per_worker(method: str) -> None:
    with poolwise.Pool("processes", WORKERS, start_method=method) as pool:
        seen = pool.map(widths, range(WORKERS), chunksize=1)
        loaded_later = pool.submit(widths_after_loading_numpy).result()
    width = expected_width()
    for found in [*seen, loaded_later]:
        assert found["blas"] == {width}, found
        assert found["OMP_NUM_THREADS"] == str(width)


def test_an_explicit_width_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    with poolwise.Pool("processes", WORKERS, native_threads=1) as pool:
        found = pool.submit(widths).result()
    assert found["blas"] == {1}
    assert found["OPENBLAS_NUM_THREADS"] == "1"


def test_auto_keeps_a_width_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenBLAS runs at most one thread per core: the user's value is all of them, more
    # than the CPUs-per-worker auto would give.
    mine = poolwise.cpus()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", str(mine))
    with poolwise.Pool("processes", WORKERS, start_method="spawn") as pool:
        found = pool.submit(widths_after_loading_numpy).result()
    assert found["OPENBLAS_NUM_THREADS"] == str(mine)
    assert found["blas"] == {mine}


def test_none_leaves_native_pools_alone() -> None:
    original = original_blas_width()
    with poolwise.Pool("processes", WORKERS, native_threads=None) as pool:
        found = pool.submit(widths).result()
    assert found["blas"] == original
    assert found["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS")


def test_thread_workers_are_limited_while_a_map_runs() -> None:
    original = original_blas_width()
    with poolwise.Pool("threads", WORKERS) as pool:
        seen = pool.map(widths, range(8))
        after = widths()
    assert all(found["blas"] == {expected_width()} for found in seen), seen
    assert after["blas"] == original  # given back when the map ended


def test_a_one_thread_pool_limits_nothing() -> None:
    original = original_blas_width()
    with poolwise.Pool("threads", 1) as pool:
        seen = pool.map(widths, range(3))
    assert all(found["blas"] == original for found in seen)


def wait_then_report(started: threading.Event, release: threading.Event) -> dict[str, Any]:
    started.set()
    assert release.wait(30)
    return widths()


def test_overlapping_maps_keep_the_limit_until_the_last_ends() -> None:
    original = original_blas_width()
    started, release = threading.Event(), threading.Event()
    with poolwise.Pool("threads", WORKERS) as first, poolwise.Pool("threads", WORKERS) as second:
        outcome: list[list[dict[str, Any]]] = []
        long_map = threading.Thread(
            target=lambda: outcome.append(first.map(wait_then_report, [started], [release]))
        )
        long_map.start()
        assert started.wait(30)
        second.map(widths, range(4))  # starts and ends while the first map runs
        during = widths()
        release.set()
        long_map.join(30)
    assert during["blas"] == {expected_width()}
    assert outcome[0][0]["blas"] == {expected_width()}
    assert widths()["blas"] == original


def test_openmp_width_is_limited_in_each_worker_thread() -> None:
    # OpenMP's width is per thread: narrowing it in the calling thread would not reach
    # the workers, so each worker thread narrows its own, and restores it after.
    pytest.importorskip("sklearn", reason="scikit-learn's OpenMP runtime is the one checked")
    import sklearn.ensemble  # noqa: F401 - loads libgomp

    original = widths()["openmp"]
    with poolwise.Pool("threads", WORKERS) as pool:
        during = pool.map(widths, range(8))
        outside_a_map = pool.submit(widths).result()  # submit holds no limit
    assert all(found["openmp"] == {expected_width()} for found in during), during
    assert outside_a_map["openmp"] == original
    assert widths()["openmp"] == original


def test_bad_widths_are_refused_before_any_worker_starts() -> None:
    with pytest.raises(ValueError, match="native_threads=0"):
        poolwise.Pool("processes", native_threads=0)
    with pytest.raises(ValueError, match="native_threads='wide'"):
        poolwise.Pool("threads", native_threads="wide")  # type: ignore[arg-type]
