"""Auto's choices on a busy machine (#14): another program keeps one CPU busy, and auto
still tells work that holds the GIL from work that only found no free CPU.

The busy program is real: a ``while True: pass`` child started by the fixture. The same
ground truth holds as on an idle machine: waiting and GIL-releasing C code go to threads,
pure-Python compute to processes, tiny tasks to serial.
"""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from support import pure_python_mode
from tasks import (
    count_primes,
    identity,
    nap,
    numpy_matmul,
    sha256_rounds,
    sqlite_query,
    zlib_level6,
)

import poolwise

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

profiling = importlib.import_module("poolwise.profiling")

pytestmark = pytest.mark.slow


@pytest.fixture
def busy_cpu() -> Iterator[subprocess.Popen[bytes]]:
    """Another program that keeps one CPU busy for as long as the test runs."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield hog
    finally:
        hog.kill()
        hog.wait()


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiling, "cpus", lambda: 2)


def _most_common(fn: Callable[[Any], Any], inputs: list[Any]) -> tuple[str, list[str]]:
    """The mode chosen in most of three profiles, and one profile's reasons for it."""
    profiles = [poolwise.profile(fn, inputs) for _ in range(3)]
    modes = [p.mode for p in profiles]
    mode = max(set(modes), key=modes.count)
    return mode, next(p.reasons for p in profiles if p.mode == mode)


@pytest.mark.usefixtures("busy_cpu", "two_cpus")
@pytest.mark.parametrize(
    ("fn", "inputs"),
    [
        pytest.param(sha256_rounds, [1 << 20] * 40, id="hashlib"),
        pytest.param(zlib_level6, list(range(40)), id="zlib"),
        pytest.param(numpy_matmul, list(range(40)), id="numpy"),
    ],
)
def test_gil_releasing_c_code_goes_to_threads_under_load(
    fn: Callable[[Any], Any], inputs: list[Any]
) -> None:
    mode, reasons = _most_common(fn, inputs)
    assert mode == "threads", reasons
    assert "holds the GIL" not in " ".join(reasons)


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = str(tmp_path / "rows.sqlite")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE t (a INTEGER, b INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?)", ((i, i * 31 % 1000) for i in range(200_000)))
    return path


@pytest.mark.usefixtures("busy_cpu", "two_cpus")
def test_sqlite_queries_go_to_threads_under_load(database: str) -> None:
    mode, reasons = _most_common(sqlite_query, [database] * 40)
    assert mode == "threads", reasons


@pytest.mark.usefixtures("busy_cpu", "two_cpus")
def test_pure_python_compute_goes_to_processes_under_load() -> None:
    mode, reasons = _most_common(count_primes, [100_000 + 4000 * i for i in range(40)])
    assert mode == pure_python_mode(), reasons


@pytest.mark.usefixtures("busy_cpu", "two_cpus")
def test_waiting_and_tiny_tasks_keep_their_choice_under_load() -> None:
    # most of three, as above: a 1 us task preempted once by the busy program looks like
    # a task that waits
    assert _most_common(nap, list(range(10)))[0] == "threads"
    assert _most_common(identity, list(range(20)))[0] == "serial"
