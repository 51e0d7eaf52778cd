"""Unit tests start no workers: a backend other than serial (which runs tasks in the
caller's thread) or a test's own fake fails the test that built it.

Tests that need real threads, processes or clusters belong in ``tests/behaviour/``,
``tests/faults/`` or ``tests/cli/``, where the leak checks and the pool fixture are.
"""

from __future__ import annotations

from typing import Any

import pytest

from poolwise.backends.base import Backend, WorkerOptions

#: Backends that start nothing: serial runs each chunk inside ``submit``; "fake" is the
#: mode of the in-process test backends (``test_maprun.py``).
_NO_WORKERS = ("serial", "fake")


@pytest.fixture(autouse=True)
def no_real_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    built = Backend.__init__

    def refuse_workers(self: Backend, workers: int, options: WorkerOptions, **more: Any) -> None:
        if self.mode not in _NO_WORKERS:
            raise AssertionError(
                f"a unit test built a {self.mode!r} backend, which starts workers: drive the "
                "code with a fake backend, or move the test to tests/behaviour"
            )
        built(self, workers, options, **more)

    monkeypatch.setattr(Backend, "__init__", refuse_workers)
