"""Segments freed by finalizers never call the resource tracker from there: a collection
can run while this thread is inside a tracker call, and the tracker refuses a reentrant
call ("might leak"; seen on free-threaded 3.13, #16). The name is dropped later."""

from __future__ import annotations

import gc
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING

import poolwise
from poolwise import shared

if TYPE_CHECKING:
    import pytest


def _unregistered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Each name unregistered from now on, and whether this thread was inside a tracker
    call then (a reentrant call)."""
    shared.untrack_unlinked()  # what earlier tests left queued
    calls: list[tuple[str, bool]] = []
    real = resource_tracker.unregister
    lock = resource_tracker._resource_tracker._lock  # type: ignore[attr-defined]

    def unregister(name: str, rtype: str) -> None:
        calls.append((name, lock._is_owned()))
        real(name, rtype)

    monkeypatch.setattr(resource_tracker, "unregister", unregister)
    return calls


def test_a_shared_collected_inside_a_tracker_call_is_untracked_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = poolwise.share(b"x" * 4096)
    name = "/" + data.name
    calls = _unregistered(monkeypatch)
    with resource_tracker._resource_tracker._lock:  # type: ignore[attr-defined]
        del data  # its finalizer runs here, as in a collection inside register()
        gc.collect()
        assert not shared.segment_exists(name), "unlinked at once"
    assert calls == []
    poolwise.share(b"y").close()  # the next segment made tells the tracker
    assert (name, False) in calls
    assert all(not inside for _, inside in calls)


def test_close_and_exit_untrack_what_was_unlinked(monkeypatch: pytest.MonkeyPatch) -> None:
    data = poolwise.share(b"z" * 100)
    name = "/" + data.name
    calls = _unregistered(monkeypatch)
    data.close()
    assert calls == [(name, False)]
    segment = shared.create_segment(100)
    segment.release()
    assert shared._untracked
    shared.untrack_unlinked()  # what exit runs
    assert calls[-1] == (segment.name, False)
    assert not shared._untracked
