"""Interpreter workers: no interpreter or poolwise thread outlives a test."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import pytest
from support import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator


def _interpreters() -> int:
    if sys.version_info < (3, 13):
        return 1
    import _interpreters  # type: ignore[import-not-found]

    return len(_interpreters.list_all())


def _poolwise_threads() -> set[threading.Thread]:
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith("poolwise-") and t.name != "poolwise-warm-reaper" and t.is_alive()
    }


@pytest.fixture(autouse=True)
def no_interpreters_left() -> Iterator[None]:
    """Every interpreter a test started is destroyed, and its threads are gone, once the
    test released whatever it blocked (bounded wait: destroying is asynchronous)."""
    before = _interpreters()
    threads = _poolwise_threads()
    yield
    wait_until(
        lambda: _interpreters() == before,
        seconds=10,
        what=f"{_interpreters() - before} interpreter(s) left",
    )
    wait_until(
        lambda: not (_poolwise_threads() - threads),
        seconds=10,
        what=f"threads left: {_poolwise_threads() - threads}",
    )
