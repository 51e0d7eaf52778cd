"""Leak checks around every fault test: processes, threads, /dev/shm and temp files."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support import wait_until, worker_processes

import poolwise
from poolwise.warm import shutdown_warm_pools

if TYPE_CHECKING:
    from collections.abc import Iterator

    from poolwise.backends.base import Outcomes

#: /dev/shm names that poolwise or multiprocessing (used by poolwise) create. The machine is
#: shared, so other programs' entries (loky's ``sem.loky-*``, say) are not ours to count.
_SHM_PREFIXES = ("poolwise", "psm_", "mp-", "sem.mp-")


def _shm() -> set[str]:
    path = Path("/dev/shm")
    if not path.exists():
        return set()
    return {p.name for p in path.iterdir() if p.name.startswith(_SHM_PREFIXES)}


def _temp_files() -> set[str]:
    return set(os.listdir(tempfile.gettempdir()))


def _poolwise_threads() -> list[threading.Thread]:
    # The warm-pool reaper is one thread for the whole process and never runs user code.
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("poolwise-") and t.name != "poolwise-warm-reaper" and t.is_alive()
    ]


def _stack(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    return "".join(traceback.format_stack(frame)) if frame else "(no frame)"


@pytest.fixture
def pool() -> Iterator[poolwise.Pool]:
    """A pool of 2 worker processes, terminated after the test.

    In this folder it stands in for the root conftest's ``pool``, which runs a test on
    every mode.
    """
    p = poolwise.Pool("processes", 2)
    try:
        yield p
    finally:
        p.terminate()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(_poolwise_threads())
    shm_before = _shm()
    temp_before = _temp_files()
    yield
    shutdown_warm_pools()  # kept warm on purpose; a test that used them is done with them
    wait_until(lambda: not worker_processes(), what=f"worker processes left: {worker_processes()}")
    leaked = [t for t in _poolwise_threads() if t not in threads_before]
    if leaked:
        wait_until(
            lambda: not [t for t in _poolwise_threads() if t not in threads_before],
            seconds=10,
            what="poolwise threads left:\n" + "\n".join(f"{t.name}:\n{_stack(t)}" for t in leaked),
        )
    assert _shm() - shm_before == set(), "shared memory segments left in /dev/shm"
    # pymp-*: multiprocessing's own folder for the forkserver socket, one per parent process,
    # removed when the parent exits (checked by the subprocess tests).
    new_temp = {n for n in _temp_files() - temp_before if not n.startswith(("pytest-", "pymp-"))}
    assert new_temp == set(), f"temporary files left: {new_temp}"


class RecordingSink:
    """A ChunkSink that keeps every outcome, to check one outcome per task."""

    def __init__(self) -> None:
        self.outcomes: dict[int, list[tuple[str, Any]]] = {}
        self.done = threading.Event()
        self.expected = 0
        self._lock = threading.Lock()

    def begin(self, chunk: Any) -> bool:
        return True

    def cancel(self, chunk: Any) -> None:
        self._add(chunk, range(chunk.delivered, len(chunk)), "cancelled", None)

    def deliver(self, chunk: Any, outcomes: Outcomes) -> None:
        offset, values, errors = outcomes.offset, outcomes.values, outcomes.errors
        for position, value in enumerate(values):
            index = chunk.first_index + offset + position
            if errors and position in errors:
                self._record(index, ("error", errors[position]))
            else:
                self._record(index, ("value", value))

    def _add(self, chunk: Any, offsets: range, kind: str, value: Any) -> None:
        for offset in offsets:
            self._record(chunk.first_index + offset, (kind, value))

    def _record(self, index: int, outcome: tuple[str, Any]) -> None:
        with self._lock:
            self.outcomes.setdefault(index, []).append(outcome)
            if len(self.outcomes) >= self.expected:
                self.done.set()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def sink_factory() -> type[RecordingSink]:
    """For a hypothesis test: a fresh sink per example."""
    return RecordingSink
