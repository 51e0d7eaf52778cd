"""mode='dask' checks that need no cluster: they pass or fail before any work starts."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from dask_support import local_workers
from tasks import pid

import poolwise
from poolwise.backends import backend_class
from poolwise.backends.dask import require_distributed


def test_without_distributed_the_mode_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    with pytest.raises(poolwise.BackendUnavailable) as info:
        poolwise.Pool("dask", 2)
    message = str(info.value)
    assert "mode='dask' is not available" in message
    assert "'distributed'" in message
    assert 'pip install "poolwise[dask]"' in message
    assert 'uv add "poolwise[dask]"' in message
    assert info.value.mode == "dask"
    with pytest.raises(poolwise.BackendUnavailable):
        require_distributed()
    with pytest.raises(poolwise.BackendUnavailable):
        backend_class("dask")


def test_importing_poolwise_does_not_import_dask() -> None:
    code = (
        "import sys, poolwise, poolwise.backends.dask; "
        "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_unpicklable_input_or_function_is_refused_before_work(pool: poolwise.Pool) -> None:
    with pytest.raises(poolwise.NotPicklable, match=r"input #0 args\[0\]\['lock'\]: _thread.lock"):
        pool.map(pid, [{"lock": threading.Lock()}, 2])
    lock = threading.Lock()
    with pytest.raises(poolwise.NotPicklable, match=r"fn"):
        pool.map(lambda x: lock, [1, 2])
    # refused by the checks: no cluster was started, nothing reached Dask
    assert local_workers() == []
    assert pool.report().backend["dask_tasks_submitted"] == 0


def test_default_size_is_one_worker_per_cpu_without_starting_anything() -> None:
    pool = poolwise.Pool("dask")
    try:
        assert pool.workers == poolwise.cpus()
        assert local_workers() == []
    finally:
        pool.terminate()


def test_max_tasks_per_worker_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tasks_per_worker is not supported by mode='dask'"):
        poolwise.Pool("dask", 2, max_tasks_per_worker=10)


def test_a_closed_pool_that_never_ran_closes_at_once(pool: poolwise.Pool) -> None:
    pool.close()
    pool.join()
    with pytest.raises(poolwise.PoolClosed):
        pool.submit(pid)
