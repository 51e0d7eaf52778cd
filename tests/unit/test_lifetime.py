"""backends/lifetime.py: whether a backend takes new work, and the live backends stopped at exit."""

from __future__ import annotations

import gc

import pytest

from poolwise.backends.lifetime import Admission, LiveBackends
from poolwise.errors import PoolClosed


def test_admission_refuses_once_closed_and_keeps_the_first_breakage() -> None:
    admission = Admission()
    admission.raise_if_unusable()
    admission.closed = True
    with pytest.raises(PoolClosed):
        admission.raise_if_unusable()
    first, second = RuntimeError("first"), RuntimeError("second")
    admission.break_with(first)
    admission.break_with(second)
    with pytest.raises(RuntimeError, match="first"):
        admission.raise_if_unusable()


class _Backend:
    pass


def test_live_backends_stop_only_those_still_alive() -> None:
    stopped: list[_Backend] = []
    live: LiveBackends[_Backend] = LiveBackends(stopped.append)
    kept, dropped = _Backend(), _Backend()
    live.add(kept)
    live.add(dropped)
    del dropped
    gc.collect()
    live.stop_all()
    assert stopped == [kept]
