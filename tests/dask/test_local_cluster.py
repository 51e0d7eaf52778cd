"""mode='dask' on a LocalCluster of worker processes that the pool starts and stops.

Each test starts its own cluster (a second or two), hence ``slow``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import traceback
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from dask_support import local_workers
from support import Counted, wait_until
from tasks import (
    CustomError,
    ExitsWhenUnpickled,
    FailsToPickle,
    FailsToUnpickle,
    announce_and_block,
    count_and_fail,
    dask_profiler_enabled,
    exit_on,
    fail_on,
    flaky,
    give,
    hold,
    make,
    pid,
    raise_bad_error,
    raise_custom,
    record,
    record_or_spin,
    remember,
    return_lock,
    setting,
    sleep_on,
    spin_on,
    square,
)

import poolwise
from poolwise.maprun import WINDOW_PER_WORKER
from poolwise.system import gil_enabled

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.slow


def test_results_in_input_order_from_worker_processes(pool: poolwise.Pool) -> None:
    assert pool.workers == 2
    assert pool.map(square, range(300)) == [x * x for x in range(300)]
    # chunks travel as Dask tasks: one task per worker until measured, then chunks of at
    # most 300 / (4 per worker * 2 workers) tasks, so about ten Dask tasks, not 300
    assert pool.report().backend["dask_tasks_submitted"] <= 20
    assert sorted(pool.imap_unordered(square, range(50))) == [x * x for x in range(50)]
    assert pool.starmap(pow, [(2, 3), (3, 2)]) == [8, 9]
    pids = set(pool.map(pid, range(40), chunksize=1))
    assert os.getpid() not in pids
    assert pids <= {p.pid for p in local_workers()}
    assert pool.report().mode == "dask"


def test_workers_run_dask_s_profiler_only_where_the_build_has_a_gil(pool: poolwise.Pool) -> None:
    # it reads other threads' frames: a use-after-free without a GIL that crashed workers
    # on free-threaded 3.13 (#16)
    assert pool.map(dask_profiler_enabled, range(4)) == [gil_enabled()] * 4


def test_lambdas_and_closures_travel_by_value(pool: poolwise.Pool) -> None:
    offset = 7
    assert pool.map(lambda x: x + offset, range(5)) == [7, 8, 9, 10, 11]


def test_imap_takes_a_bounded_number_of_inputs_from_an_endless_generator(
    pool: poolwise.Pool,
) -> None:
    inputs = Counted()
    results = pool.imap(square, inputs, chunksize=1)
    assert [next(results) for _ in range(5)] == [0, 1, 4, 9, 16]
    # the window of chunks, plus the first input peeked for the checks, plus the five
    assert inputs.taken <= WINDOW_PER_WORKER * pool.workers + 1 + 5
    results.close()  # type: ignore[attr-defined]


def test_at_most_one_chunk_per_worker_is_in_dask(pool: poolwise.Pool, tmp_path: Path) -> None:
    # The rest wait in the pool, so a worker that dies takes only its own chunk with it.
    futures = [pool.submit(hold, str(tmp_path), x) for x in range(6)]
    wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, what="two tasks started")
    assert pool.report().backend["dask_tasks_submitted"] == 2
    (tmp_path / "release").touch()
    assert [f.result(timeout=60) for f in futures] == list(range(6))
    assert pool.report().backend["dask_tasks_submitted"] == 6


def test_big_arguments_and_functions_travel_apart_from_the_task_graph(
    pool: poolwise.Pool,
) -> None:
    # Scattered to the cluster first: Dask warns (an error here) about graphs over 10 MB.
    import numpy as np

    blob = b"x" * (12 << 20)
    array = np.arange(2_000_000, dtype=np.int64)  # 16 MB, pickled out of band
    assert pool.map(len, [blob, blob[:5]]) == [12 << 20, 5]
    assert pool.map(np.sum, [array]) == [array.sum()]
    assert pool.map(lambda x: len(blob) + x, range(4)) == [(12 << 20) + x for x in range(4)]


def test_task_errors_arrive_as_themselves_with_the_worker_traceback(pool: poolwise.Pool) -> None:
    with pytest.raises(ValueError, match="input 5 is bad") as info:
        pool.map(fail_on, range(10))
    cause = info.value.__cause__
    assert isinstance(cause, poolwise.RemoteTraceback)
    assert "fail_on" in cause.traceback_text
    assert "fail_on" in "".join(traceback.format_exception(info.value))
    with pytest.raises(CustomError) as custom:
        pool.submit(raise_custom, 4).result(timeout=60)
    assert (custom.value.code, custom.value.detail) == (4, "custom")


def test_a_task_past_its_timeout_gets_task_timeout_and_the_others_carry_on() -> None:
    with poolwise.Pool("dask", 2, timeout=0.5) as pool:
        futures = [pool.submit(spin_on, x) for x in range(6)]
        error = futures[3].exception(timeout=60)
        assert isinstance(error, poolwise.TaskTimeout)
        assert [f.result(timeout=60) for i, f in enumerate(futures) if i != 3] == [0, 1, 2, 4, 5]
        assert pool.report().backend["tasks_timed_out"] == 1
        assert pool.report().tasks_timed_out == 1


def test_the_rest_of_a_chunk_after_a_timeout_runs_once(pool: poolwise.Pool, tmp_path: Path) -> None:
    log = tmp_path / "log"
    results = pool.imap(record_or_spin, [str(log)] * 6, range(6), timeout=0.5, chunksize=6)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(poolwise.TaskTimeout) as info:
        next(results)
    assert info.value.task_index == 3
    # 4 and 5 went out as a Dask task of their own and ran, once each
    wait_until(lambda: log.read_text().split() == ["0", "1", "2", "4", "5"], what="4, 5 ran")
    assert pool.report().backend["dask_tasks_submitted"] == 2


def test_a_task_blocked_in_c_times_out_and_frees_its_dask_thread() -> None:
    # time.sleep cannot be interrupted: its thread is abandoned (StopTask lands when the
    # sleep returns) and the Dask task returns at once, so the one worker takes work again.
    with poolwise.Pool("dask", 1, timeout=0.3) as pool:
        with pytest.raises(poolwise.TaskTimeout):
            pool.submit(sleep_on, 3).result(timeout=60)
        assert pool.map(square, range(10)) == [x * x for x in range(10)]


def test_os_exit_gives_worker_crashed_and_the_rest_complete(pool: poolwise.Pool) -> None:
    futures = [pool.submit(exit_on, x) for x in range(6)]
    with pytest.raises(poolwise.WorkerCrashed) as info:
        futures[3].result(timeout=60)
    assert info.value.pid is not None
    assert "Dask worker tcp://127.0.0.1:" in str(info.value)
    assert [f.result(timeout=60) for i, f in enumerate(futures) if i != 3] == [0, 1, 2, 4, 5]
    assert pool.report().backend["workers_lost"] == 1
    assert pool.map(square, range(20)) == [x * x for x in range(20)]  # a new worker


def test_a_worker_killed_from_outside_names_its_pid_and_task(
    pool: poolwise.Pool, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    results = pool.imap(announce_and_block, [str(marker)], chunksize=1)
    consumer_error: list[BaseException] = []

    def consume() -> None:
        try:
            next(results)
        except BaseException as exc:
            consumer_error.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    wait_until(marker.exists, what="the task announced its pid")
    victim = int(marker.read_text())
    os.kill(victim, signal.SIGKILL)
    consumer.join(timeout=60)
    (error,) = consumer_error
    assert isinstance(error, poolwise.WorkerCrashed)
    assert (error.pid, error.task_index) == (victim, 0)
    assert victim not in set(pool.map(pid, range(10), chunksize=1))


def test_a_chunk_whose_worker_died_gives_each_task_worker_crashed(pool: poolwise.Pool) -> None:
    results = pool.imap(exit_on, range(8), chunksize=4)
    with pytest.raises(poolwise.WorkerCrashed, match=r"inputs #0 to #3 in one Dask task"):
        next(results)


def test_retries_rerun_tasks_that_raised_or_crashed_their_worker(tmp_path: Path) -> None:
    raised, crashed = tmp_path / "raised", tmp_path / "crashed"
    raised.mkdir()
    crashed.mkdir()
    with poolwise.Pool("dask", 2, retries=1) as pool:
        assert pool.map(flaky, [str(raised)] * 4, range(4)) == list(range(4))
        assert pool.map(flaky, [str(crashed)] * 2, range(2), ["exit"] * 2, chunksize=1) == [0, 1]
        report = pool.report()
    assert report.tasks_retried == 6
    for folder, count in ((raised, 4), (crashed, 2)):
        assert [(folder / str(x)).read_text().count("run") for x in range(count)] == [2] * count


def test_progress_bar_draws_the_final_count(capsys: pytest.CaptureFixture[str]) -> None:
    with poolwise.Pool("dask", 2) as pool:
        assert pool.map(square, range(25), progress=True) == [x * x for x in range(25)]
        assert pool.map(square, range(25), progress="always") == [x * x for x in range(25)]
    assert "25/25" in capsys.readouterr().err


def test_unpicklable_later_input_and_result_are_those_tasks_outcomes(
    pool: poolwise.Pool,
) -> None:
    inputs: list[object] = [1, 2, threading.Lock(), 4]
    results = pool.imap(pid, inputs, chunksize=4)
    assert next(results) > 0
    assert next(results) > 0
    with pytest.raises(poolwise.NotPicklable, match=r"input #2 args\[0\]: _thread.lock"):
        next(results)
    values = pool.imap(return_lock, range(4), chunksize=4)
    assert [next(values), next(values)] == [0, 1]
    with pytest.raises(poolwise.NotPicklable, match=r"result of task #2"):
        next(values)


def test_a_bad_value_on_any_leg_of_the_trip_is_that_task_s_outcome(pool: poolwise.Pool) -> None:
    # As tests/faults/test_crash_cases.py does for process workers; the pool works on.
    cases: list[tuple[str, Callable[..., Any], object, type[BaseException]]] = [
        ("argument fails to pickle here", give, FailsToPickle(), poolwise.NotPicklable),
        ("argument fails to unpickle there", give, FailsToUnpickle(), poolwise.NotPicklable),
        ("argument ends the worker", give, ExitsWhenUnpickled(), poolwise.WorkerCrashed),
        ("result fails to pickle there", make, "fails_to_pickle", poolwise.NotPicklable),
        ("result fails to unpickle here", make, "fails_to_unpickle", poolwise.NotPicklable),
        ("exception fails to unpickle here", raise_bad_error, 1, poolwise.RemoteError),
    ]
    for leg, fn, argument, expected in cases:
        error = pool.submit(fn, argument).exception(timeout=60)
        assert isinstance(error, expected), (leg, error)
        assert pool.map(give, range(6), chunksize=2) == list(range(6)), leg
    with pytest.raises(poolwise.NotPicklable, match=r"inputs #0 to #1: RuntimeError"):
        pool.map(give, [1, FailsToUnpickle()], chunksize=2)


def test_initializer_runs_once_per_worker_before_its_tasks(tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    with poolwise.Pool("dask", 2, initializer=remember, initargs=(str(log), "ready")) as pool:
        seen = pool.map(setting, range(40), chunksize=1)
    assert all(kept == ["ready"] for _, kept in seen)
    pids = log.read_text().split()
    assert len(pids) == len(set(pids))  # once per worker process
    assert {str(p) for p, _ in seen} <= set(pids)


def test_a_failing_initializer_fails_the_pool_once(tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    pool = poolwise.Pool("dask", 2, initializer=count_and_fail, initargs=(str(log),))
    try:
        with pytest.raises(poolwise.InitializerFailed, match="count_and_fail raised RuntimeError"):
            pool.map(pid, range(10))
        with pytest.raises(poolwise.InitializerFailed):
            pool.submit(pid)
    finally:
        pool.terminate()
    assert 1 <= log.read_text().count("init") <= 2  # one per worker that got a chunk


def test_terminate_stops_running_tasks_and_the_cluster(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    pool = poolwise.Pool("dask", 1)
    running = pool.submit(announce_and_block, str(marker))
    waiting = pool.submit(square, 3)
    wait_until(marker.exists, what="the task announced its pid")
    victim = int(marker.read_text())
    pool.terminate()
    with pytest.raises(poolwise.PoolClosed):
        running.result(timeout=60)
    assert waiting.cancelled()  # never handed to Dask: cancelled, as concurrent.futures does
    wait_until(lambda: not psutil.pid_exists(victim), what="the worker process is gone")
    with pytest.raises(poolwise.PoolClosed):
        pool.submit(square, 1)


def test_shutdown_waits_for_work_then_closes_the_cluster(tmp_path: Path) -> None:
    log = tmp_path / "log"
    pool = poolwise.Pool("dask", 2)
    futures = [pool.submit(record, str(log), x) for x in range(10)]
    pool.shutdown(wait=True)
    assert [f.result(timeout=0) for f in futures] == list(range(10))
    assert sorted(int(x) for x in log.read_text().split()) == list(range(10))
    assert local_workers() == []


def test_functions_defined_in_main_travel_by_value(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(
        textwrap.dedent(
            """
            import poolwise

            def cube(x):
                return x ** 3

            if __name__ == "__main__":
                with poolwise.Pool("dask", 1) as pool:
                    print(pool.map(cube, range(5)))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        cwd=tmp_path,
    )
    assert done.stdout.strip() == "[0, 1, 8, 27, 64]", done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["program.py"]  # no scratch space left


@pytest.mark.parametrize(("signum", "returncode"), [(signal.SIGINT, -2), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_closes_the_cluster_and_removes_its_scratch_folder(
    tmp_path: Path, signum: int, returncode: int
) -> None:
    script = tmp_path / "program.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            import poolwise

            def block(_):
                while True:
                    time.sleep(1)

            if __name__ == "__main__":
                with poolwise.Pool("dask", 1) as pool:
                    future = pool.submit(block, 0)
                    while not future.running():
                        time.sleep(0.01)
                    print("ready", flush=True)
                    future.result()
            """
        )
    )
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        cwd=tmp_path,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        workers = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
        child.send_signal(signum)  # SIGINT: as Ctrl-C, which unwinds the with-block
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == returncode, err
    wait_until(lambda: not any(psutil.pid_exists(p) for p in workers), what="workers gone")
    assert [p.name for p in tmp_path.iterdir()] == ["program.py"]  # no scratch folder left
