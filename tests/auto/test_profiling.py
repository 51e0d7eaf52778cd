"""profile() on ground-truth workloads: the right mode, and no input run twice."""

from __future__ import annotations

import importlib
import socket
import threading
from typing import TYPE_CHECKING, Any

import pytest
from support import pure_python_mode
from tasks import count_primes, identity, nap, sha256_rounds

import poolwise

profiling = importlib.import_module("poolwise.profiling")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def test_sleeping_tasks_go_to_threads() -> None:
    result = poolwise.profile(nap, range(10))
    assert result.mode == "threads"
    assert result.workers >= 2
    assert "I/O-bound" in " ".join(result.reasons)


@pytest.fixture
def slow_server() -> Iterator[int]:
    """A local socket server that answers each connection after 20 ms."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                stop.wait(0.02)
                conn.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join()
        server.close()


def test_network_tasks_go_to_threads(slow_server: int) -> None:
    def fetch(_: object) -> bytes:
        with socket.create_connection(("127.0.0.1", slow_server)) as conn:
            return conn.recv(2)

    assert poolwise.profile(fetch, range(8)).mode == "threads"


def _most_common_mode(fn: Callable[[Any], Any], inputs: list[Any]) -> str:
    """The mode chosen in most of three profiles: the scaling round is timed on a shared
    2-core machine, where one scheduler hiccup can move a single figure across a rule."""
    modes = [poolwise.profile(fn, inputs).mode for _ in range(3)]
    return max(set(modes), key=modes.count)


@pytest.mark.slow
def test_pure_python_compute_goes_to_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiling, "cpus", lambda: 2)
    wanted = pure_python_mode()
    assert _most_common_mode(count_primes, [100_000 + 4000 * i for i in range(40)]) == wanted


@pytest.mark.slow
def test_hashing_releases_the_gil_so_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiling, "cpus", lambda: 2)
    assert _most_common_mode(sha256_rounds, [1 << 20] * 40) == "threads"


def test_tiny_tasks_run_serially() -> None:
    result = poolwise.profile(identity, range(20))
    assert result.mode == "serial"


def test_closure_over_a_large_object_is_not_sent_to_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profiling, "cpus", lambda: 2)
    big = bytes(200 * 2**20)

    def primes_near(start: int) -> int:
        return count_primes(start) + len(big)

    result = poolwise.profile(primes_near, [100_000 + 4000 * i for i in range(12)])
    assert result.mode != "processes", result.reasons


def test_one_cpu_quota_means_serial_for_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiling, "cpus", lambda: 1)
    assert poolwise.profile(count_primes, [100_000] * 4).mode == "serial"
    assert poolwise.profile(nap, range(4)).mode == "threads"


def test_each_sample_input_runs_at_most_once() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def record(x: int) -> int:
        with lock:
            seen.append(x)
        return x

    result = poolwise.profile(record, range(50))
    assert len(seen) == len(set(seen)) == result.tasks_run <= 50


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="not callable"):
        poolwise.profile(42, [1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample_inputs is empty"):
        poolwise.profile(identity, [])


def _measured(count: int, seconds: float, cpu_seconds: float) -> Any:
    from poolwise.stats import Measured

    measured = Measured()
    measured.add(count, seconds, cpu_seconds)
    return measured


def test_thread_scaling_is_work_done_over_wall_time_bounded_by_the_busy_cores() -> None:
    from poolwise.profiling import thread_scaling

    # 0.2 s of task CPU time in 0.1 s, the process 0.2 s on the CPU: twice one thread
    assert thread_scaling(0.2, 0.1, cpu_seconds=0.2, cpu_share=1.0) == 2.0
    # the process kept one core busy: the GIL held them, whatever the tasks counted
    assert thread_scaling(0.2, 0.1, cpu_seconds=0.1, cpu_share=1.0) == 1.0
    # half of each task waits: 0.1 s on the CPU is 0.2 s of one thread's work
    assert thread_scaling(0.1, 0.1, cpu_seconds=0.1, cpu_share=0.5) == 2.0
    assert thread_scaling(0.2, 0.0, cpu_seconds=0.0, cpu_share=1.0) is None


def test_process_scaling_is_bounded_by_the_cpu_the_tasks_got() -> None:
    from poolwise.profiling import round_scaling

    # 2 workers, tasks of 50 ms that each took 50 ms on the CPU: twice one thread's rate
    assert round_scaling(2, 0.05, 1.0, _measured(4, 0.2, 0.2)) == 2.0
    # each took 100 ms, half of it on the CPU: another program held the CPUs half the time
    assert round_scaling(2, 0.05, 1.0, _measured(4, 0.4, 0.2)) == 1.0
    # a cold first task made the baseline 100 ms, but the CPU share says one core's worth
    assert round_scaling(2, 0.1, 1.0, _measured(4, 0.4, 0.2)) == 1.0
    # tasks that half wait: half a CPU each is all they ever need
    assert round_scaling(2, 0.05, 0.5, _measured(4, 0.2, 0.1)) == 2.0
    assert round_scaling(2, 0.05, 1.0, _measured(0, 0.0, 0.0)) is None


@pytest.mark.slow
def test_pure_python_skips_the_thread_round_c_code_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The GIL meter catches pure Python holding the GIL, so no round runs it on threads one
    task at a time; GIL-releasing C code still gets its round (does it scale?)."""
    monkeypatch.setattr(profiling, "cpus", lambda: 2)
    # tasks of ~0.1 s: the meter wakes a dozen times or more during the first one (the
    # round is skipped only on SURE_WAKEUPS or more)
    held = poolwise.profile(count_primes, [500_000 + 4000 * i for i in range(20)])
    if pure_python_mode() == "threads":  # no GIL to ask about: no meter, the round runs
        assert held.figures["gil_held_share"] is None
        assert held.figures["thread_scaling"] is not None
        assert held.mode == "threads"
        return
    assert held.figures["gil_held_share"] >= profiling.SURELY_HELD
    assert held.figures["thread_scaling"] is None
    assert held.mode == "processes"
    released = poolwise.profile(sha256_rounds, [1 << 20] * 20)
    assert released.figures["gil_held_share"] < profiling.SURELY_HELD
    assert released.figures["thread_scaling"] is not None
