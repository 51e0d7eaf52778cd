"""The "poolwise" joblib backend end to end: joblib.Parallel on processes, threads and auto,
with joblib's own semantics (n_jobs, errors, generators, sharedmem, nesting) and poolwise's
(timeouts, crashes, retries) (#17). scikit-learn's use of it is in test_sklearn.py."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from support import wait_until

import poolwise

joblib = pytest.importorskip("joblib", reason="the joblib extra is not installed")

from joblib import Parallel, delayed, parallel_config  # noqa: E402

from poolwise.joblib import PoolwiseBackend  # noqa: E402
from poolwise.system import gil_enabled  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MODES = ["processes", "threads", "auto"]


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[PoolwiseBackend]:
    made = PoolwiseBackend(request.param)
    try:
        yield made
    finally:
        made.close()


def square(x: int) -> int:
    return x * x


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad input {x}")
    return x


def where(_: int) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def count_primes(n: int) -> int:
    """Pure Python compute: holds the GIL."""
    return sum(all(k % d for d in range(2, int(k**0.5) + 1)) for k in range(2, n))


@pytest.mark.parametrize("backend", MODES, indirect=True)
def test_parallel_gives_what_a_loop_gives(backend: PoolwiseBackend) -> None:
    with parallel_config(backend=backend):
        results = Parallel(n_jobs=2)(delayed(square)(x) for x in range(200))
    assert results == [x * x for x in range(200)]


def test_importing_poolwise_never_imports_joblib() -> None:
    code = "import sys, poolwise; print('joblib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_backend_is_registered_by_name() -> None:
    with parallel_config(backend="poolwise", mode="threads"):
        assert Parallel(n_jobs=2)(delayed(square)(x) for x in range(5)) == [0, 1, 4, 9, 16]
    assert "poolwise" in joblib.parallel.BACKENDS


def test_the_older_parallel_backend_works_too() -> None:
    with joblib.parallel_backend("poolwise", n_jobs=2, mode="threads"):
        assert Parallel()(delayed(square)(x) for x in range(4)) == [0, 1, 4, 9]


def test_n_jobs_counts_as_joblib_counts() -> None:
    backend = PoolwiseBackend("threads")
    cpus = poolwise.cpus()
    assert backend.effective_n_jobs(3) == 3
    assert backend.effective_n_jobs(-1) == cpus
    assert backend.effective_n_jobs(-2) == max(cpus - 1, 1)
    assert backend.effective_n_jobs(None) == 1
    with pytest.raises(ValueError, match="n_jobs == 0"):
        backend.effective_n_jobs(0)


def test_n_jobs_is_the_number_of_workers() -> None:
    # Each task waits until 3 run at once: only 3 workers let them all through.
    barrier = threading.Barrier(3, timeout=30)
    with parallel_config(backend="poolwise", mode="threads"):
        Parallel(n_jobs=3)(delayed(barrier.wait)() for _ in range(6))


def test_one_job_runs_in_the_calling_thread() -> None:
    with parallel_config(backend="poolwise", mode="processes"):
        seen = Parallel(n_jobs=1)(delayed(where)(x) for x in range(3))
    assert set(seen) == {(os.getpid(), threading.get_ident())}


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_results_come_as_a_generator(return_as: str) -> None:
    with parallel_config(backend="poolwise", mode="processes"):
        results = Parallel(n_jobs=2, return_as=return_as)(delayed(square)(x) for x in range(50))
        assert not isinstance(results, list)
        got = list(results)
    expected = [x * x for x in range(50)]
    assert got == expected if return_as == "generator" else sorted(got) == expected


def wait_for_release(x: int, release: str) -> int:
    if x == 0:
        raise ValueError("the first task fails")
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.005)
    return x


@pytest.mark.parametrize("mode", ["processes", "threads"])
def test_the_first_error_is_raised_and_the_rest_stopped(
    mode: str, tmp_path: Path, no_workers_left: Callable[[], None]
) -> None:
    # Task 0 fails while the others wait for a file nobody creates: joblib must raise at
    # once, not after they all ran (60 s each), and the pool's running tasks must stop.
    release = str(tmp_path / "release")
    backend = PoolwiseBackend(mode)
    try:
        with parallel_config(backend=backend), pytest.raises(ValueError, match="first task"):
            Parallel(n_jobs=2, batch_size=1)(
                delayed(wait_for_release)(x, release) for x in range(40)
            )
    finally:
        backend.close()
    assert not (tmp_path / "release").exists()
    no_workers_left()  # the processes running the waiting tasks were stopped


def crash_on(x: int) -> int:
    if x == 3:
        os._exit(1)
    return x


def test_a_worker_crash_surfaces_as_worker_crashed() -> None:
    with (
        parallel_config(backend="poolwise", mode="processes"),
        pytest.raises(poolwise.WorkerCrashed),
    ):
        Parallel(n_jobs=2, batch_size=1)(delayed(crash_on)(x) for x in range(8))


def spin(x: int) -> int:
    if x == 2:
        while True:
            pass
    return x


@pytest.mark.parametrize("mode", ["processes", "threads"])
def test_a_timeout_surfaces_as_task_timeout(mode: str) -> None:
    with (
        parallel_config(backend="poolwise", mode=mode, timeout=0.5),
        pytest.raises(poolwise.TaskTimeout),
    ):
        Parallel(n_jobs=2)(delayed(spin)(x) for x in range(6))


def fail_once(x: int, marks: str) -> int:
    mark = os.path.join(marks, str(x))
    if x % 2 and not os.path.exists(mark):
        open(mark, "w").close()
        raise ConnectionError(f"first try of {x}")
    return x


def test_retries_count_per_task(tmp_path: Path) -> None:
    with parallel_config(backend="poolwise", mode="processes", retries=1):
        got = Parallel(n_jobs=2)(delayed(fail_once)(x, str(tmp_path)) for x in range(10))
    assert got == list(range(10))
    assert len(list(tmp_path.iterdir())) == 5


def append_to(shared: list[int], x: int) -> None:
    shared.append(x)


@pytest.mark.parametrize("mode", ["processes", "threads", "auto"])
def test_require_sharedmem_runs_where_memory_is_shared(mode: str) -> None:
    shared: list[int] = []
    with parallel_config(backend="poolwise", mode=mode):
        Parallel(n_jobs=2, require="sharedmem")(delayed(append_to)(shared, x) for x in range(20))
    assert sorted(shared) == list(range(20))


def nested_call(_: int) -> tuple[int, int, int]:
    """Runs a joblib call inside a task; says how wide it was allowed to go."""
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    inner = Parallel(n_jobs=-1)(delayed(threading.get_ident)() for _ in range(16))
    started = {child.pid for child in me.children(recursive=True)} - before
    return joblib.effective_n_jobs(-1), len(set(inner)), len(started)


@pytest.mark.parametrize("mode", ["processes", "threads"])
def test_a_nested_call_gets_the_cpus_left_per_worker(mode: str) -> None:
    workers = 2
    with parallel_config(backend="poolwise", mode=mode):
        seen = Parallel(n_jobs=workers)(delayed(nested_call)(x) for x in range(4))
    share = max(1, poolwise.cpus() // workers)
    for width, threads, children in seen:
        assert width == share
        assert threads <= share
        assert children == 0  # no process pool started by the inner call
        # and no second full-width pool: n_jobs=-1 inside got `share`, not all CPUs


def test_auto_keeps_waiting_work_on_threads() -> None:
    backend = PoolwiseBackend("auto")
    try:
        with parallel_config(backend=backend):
            Parallel(n_jobs=2)(delayed(time.sleep)(0.01) for _ in range(40))
    finally:
        backend.close()
    assert backend.decision is not None
    assert backend.decision.mode == "threads"
    assert "wait" in " ".join(backend.decision.reasons)


def primes_where(n: int) -> tuple[int, int]:
    return count_primes(n), os.getpid()


@pytest.mark.slow
def test_auto_moves_gil_holding_compute_where_it_runs_in_parallel() -> None:
    # Pure Python holds the GIL: after the first batches on threads, later ones go to
    # processes once their workers are up (threads on a build without a GIL); later calls
    # with the same function start from that decision without measuring again.
    expected_mode = "processes" if gil_enabled() else "threads"
    backend = PoolwiseBackend("auto")
    me = os.getpid()

    def run(tasks: int) -> list[tuple[int, int]]:
        results = Parallel(n_jobs=2, batch_size=1)(
            delayed(primes_where)(20_000) for _ in range(tasks)
        )
        assert {count for count, _ in results} == {count_primes(20_000)}
        return results

    try:
        with parallel_config(backend=backend):
            run(12)
            decision = backend.decision
            assert decision is not None
            assert decision.mode == expected_mode, decision.reasons
            if expected_mode == "processes":  # once the workers are up, batches go there
                wait_until(lambda: any(pid != me for _, pid in run(4)), seconds=60)
            else:
                assert all(pid == me for _, pid in run(4))
            assert backend.decision is decision  # not measured again
    finally:
        backend.close()


def test_auto_honours_prefer_threads() -> None:
    backend = PoolwiseBackend("auto")
    try:
        with parallel_config(backend=backend, prefer="threads"):
            seen = Parallel(n_jobs=2)(delayed(where)(x) for x in range(10))
    finally:
        backend.close()
    assert {pid for pid, _ in seen} == {os.getpid()}
    assert backend.decision is None  # nothing to measure: the caller said


def test_progress_always_writes_lines(capfd: pytest.CaptureFixture[str]) -> None:
    with parallel_config(backend="poolwise", mode="threads", progress="always"):
        Parallel(n_jobs=2)(delayed(square)(x) for x in range(30))
    err = capfd.readouterr().err
    assert "joblib tasks" in err
    assert "30" in err


def test_bad_options_fail_before_any_work() -> None:
    with pytest.raises(ValueError, match="timeout=-1"):
        PoolwiseBackend("threads", timeout=-1)
    with pytest.raises(ValueError, match="cannot run joblib batches"):
        PoolwiseBackend("async")
    with pytest.raises(ValueError, match="Dask's own joblib backend"):
        PoolwiseBackend("dask")
    with pytest.raises(TypeError, match="does not take \\['max_nbytes_typo'\\]"):
        PoolwiseBackend("threads", max_nbytes_typo=3)
    with pytest.raises(ValueError, match="native_threads=0"):
        PoolwiseBackend("processes", native_threads=0)


def takes(x: object) -> str:
    return type(x).__name__


def test_an_unpicklable_argument_in_a_later_batch_raises_instead_of_hanging() -> None:
    # joblib submits the first 2 x n_jobs batches from the caller, later ones from a
    # callback thread: an error raised there would leave Parallel waiting for ever.
    inputs: list[object] = [*range(10), threading.Lock(), *range(5)]
    with (
        parallel_config(backend="poolwise", mode="processes"),
        pytest.raises(poolwise.NotPicklable, match="lock"),
    ):
        Parallel(n_jobs=2, batch_size=1)(delayed(takes)(x) for x in inputs)
