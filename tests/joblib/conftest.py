"""Every joblib test leaves no worker process behind: a backend's pools stop when its
``parallel_config`` block ends (or when it is closed), not at a later garbage collection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(autouse=True)
def _no_workers_left_after(no_workers_left: Callable[[], None]) -> Iterator[None]:
    yield
    no_workers_left()
