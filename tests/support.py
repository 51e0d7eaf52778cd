"""Helpers the suites share: waiting on the OS (processes exiting, files appearing) and
counting what a run took from its inputs."""

from __future__ import annotations

import itertools
import os
import time
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["Counted", "wait_until", "worker_processes"]

#: multiprocessing's own helpers (and loky's tracker, for the tests that compare with
#: loky): one per parent, shared by every pool, gone with the parent.
_INFRASTRUCTURE = (
    "multiprocessing.forkserver",
    "multiprocessing.resource_tracker",
    "loky.backend.resource_tracker",
)


def worker_processes() -> list[psutil.Process]:
    """Descendants of this process that are workers, not multiprocessing's helpers."""
    me = os.getpid()
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            parent = child.ppid()
        except psutil.Error:
            continue
        # Only the helpers themselves: a forkserver's children are forks of it and show
        # the same command line, and they are the workers this must see.
        if parent == me and any(name in cmdline for name in _INFRASTRUCTURE):
            continue
        found.append(child)
    return found


def wait_until(condition: Callable[[], object], seconds: float = 30.0, what: str = "") -> None:
    """Poll until ``condition()`` is true (the OS owns the event), else fail with ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {seconds} s: {what or condition}")
        time.sleep(0.01)


class Counted:
    """An input iterator that counts the items taken from it: 0, 1, 2... without end, or
    ``items``, to check how far ahead a run reads."""

    def __init__(self, items: Iterable[Any] | None = None) -> None:
        self._items = iter(itertools.count() if items is None else items)
        self.taken = 0

    def __iter__(self) -> Counted:
        return self

    def __next__(self) -> Any:
        item = next(self._items)
        self.taken += 1
        return item


def pure_python_mode() -> str:
    """Where auto should run pure-Python compute on this build: processes where a GIL
    serialises threads, threads on a free-threaded build running without one (#16)."""
    from poolwise.system import gil_enabled

    return "processes" if gil_enabled() else "threads"
