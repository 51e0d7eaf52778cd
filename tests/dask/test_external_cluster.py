"""mode='dask' with ``address=``: a ``dask scheduler`` and a ``dask worker`` (2 processes of
one thread) started as subprocesses on 127.0.0.1 for this module, stopped at its end.

The scheduler runs with ``allowed-failures`` 0, as the backend's docs advise, so that a
chunk whose worker died fails at once instead of being re-run on another worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from dask_support import is_external
from support import wait_until
from tasks import exit_on, fail_on, hold, pid, remember, setting, spin_on, square

import poolwise
from poolwise.system import gil_enabled

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent.parent  # holds tasks.py, which the workers import
DASK = Path(sys.executable).parent / "dask"  # the CLI that `uv run dask` runs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the CLI closes its nannies and workers), then SIGKILL what is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import distributed

    folder = tmp_path_factory.mktemp("dask-cluster")
    port = _free_port()
    where = f"tcp://127.0.0.1:{port}"
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYTHONPATH": path,  # the workers import tasks
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
        # as poolwise's own cluster does on a build without a GIL, where the profiler
        # crashes workers (poolwise.backends.dask.cluster)
        **({} if gil_enabled() else {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}),
    }
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *argv: str) -> None:
        with open(folder / f"{name}.log", "wb") as log:
            started.append(
                subprocess.Popen(
                    [DASK, name, *argv],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=folder,
                )
            )

    try:
        start(
            "scheduler",
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--no-dashboard", "--dashboard-address", "127.0.0.1:0"),
        )
        start(
            "worker",
            *(where, "--nworkers", "2", "--nthreads", "1"),
            *("--no-dashboard", "--local-directory", str(folder / "scratch")),
        )
        with distributed.Client(where, timeout=60, set_as_default=False) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(2, timeout=60)  # type: ignore[no-untyped-call]
        yield where
    finally:
        for process in reversed(started):
            _stop(process)
    wait_until(
        lambda: not [p for p in psutil.Process().children(recursive=True) if is_external(p)],
        what="the external cluster's processes are gone",
    )


@pytest.fixture
def pool(address: str) -> Iterator[poolwise.Pool]:
    p = poolwise.Pool("dask", address=address)
    try:
        yield p
    finally:
        p.terminate()


def test_sized_by_the_cluster_s_threads_and_runs_there(pool: poolwise.Pool) -> None:
    assert pool.workers == 2  # 2 worker processes of 1 thread
    assert pool.map(square, range(200)) == [x * x for x in range(200)]
    assert pool.map(lambda x: -x, range(3)) == [0, -1, -2]  # by value: not importable there
    pids = set(pool.map(pid, range(20), chunksize=1))
    assert os.getpid() not in pids
    workers = [p.pid for p in psutil.Process().children(recursive=True) if is_external(p)]
    assert pids <= set(workers)


def test_errors_come_back_with_the_worker_traceback(pool: poolwise.Pool) -> None:
    with pytest.raises(ValueError, match="input 5 is bad") as info:
        pool.map(fail_on, range(8))
    assert isinstance(info.value.__cause__, poolwise.RemoteTraceback)
    assert "fail_on" in info.value.__cause__.traceback_text


def test_timeout_and_a_dying_worker_each_give_their_task_an_outcome(address: str) -> None:
    with poolwise.Pool("dask", address=address, timeout=0.5) as pool:
        futures = [pool.submit(spin_on, x) for x in range(5)]
        assert isinstance(futures[3].exception(timeout=60), poolwise.TaskTimeout)
        assert [f.result(timeout=60) for i, f in enumerate(futures) if i != 3] == [0, 1, 2, 4]
        futures = [pool.submit(exit_on, x) for x in range(5)]
        with pytest.raises(poolwise.WorkerCrashed):
            futures[3].result(timeout=60)
        assert [f.result(timeout=60) for i, f in enumerate(futures) if i != 3] == [0, 1, 2, 4]
        assert pool.report().backend["workers_lost"] == 1


def test_initializer_runs_in_the_cluster_s_workers(address: str, tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    with poolwise.Pool(
        "dask", address=address, initializer=remember, initargs=(str(log), "on")
    ) as pool:
        seen = pool.map(setting, range(10), chunksize=1)
    assert all(kept[-1] == "on" for _, kept in seen)
    assert {str(p) for p, _ in seen} <= set(log.read_text().split())


def test_terminate_closes_only_the_pool_s_client(address: str, tmp_path: Path) -> None:
    pool = poolwise.Pool("dask", address=address)
    future = pool.submit(hold, str(tmp_path), 0)
    wait_until((tmp_path / "started-0").exists, what="the task started on the cluster")
    pool.terminate()
    with pytest.raises(poolwise.PoolClosed):
        future.result(timeout=60)
    (tmp_path / "release").touch()  # Dask cannot stop the task: it ends by itself
    with poolwise.Pool("dask", address=address) as again:  # the cluster serves on
        assert again.map(square, range(5)) == [0, 1, 4, 9, 16]


def test_several_threads_share_one_pool(pool: poolwise.Pool) -> None:
    outcomes: dict[int, list[int]] = {}

    def use(n: int) -> None:
        outcomes[n] = pool.map(square, range(n, n + 30))

    threads = [threading.Thread(target=use, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes == {n: [x * x for x in range(n, n + 30)] for n in range(3)}
