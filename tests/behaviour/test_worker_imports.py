"""A process worker starts with the worker-side modules only, not the pool or the
dispatcher: each import there is paid again by every worker of every pool (#12)."""

from __future__ import annotations

import multiprocessing

import pytest

import poolwise


def _poolwise_modules(_: object) -> list[str]:
    import sys

    return sorted(name for name in sys.modules if name.startswith("poolwise"))


#: Parent-side modules a worker must never load.
_PARENT_SIDE = (
    "poolwise.pool",
    "poolwise.maprun",
    "poolwise.runs",
    "poolwise.backends.base",
    "poolwise.backends.packing",
    "poolwise.backends.processes.backend",
    "poolwise.backends.processes.dispatcher",
)


@pytest.mark.parametrize(
    "method", [m for m in ("forkserver", "spawn") if m in multiprocessing.get_all_start_methods()]
)
def test_a_process_worker_imports_only_the_worker_side(method: str) -> None:
    with poolwise.Pool("processes", 1, start_method=method) as pool:
        [loaded] = pool.map(_poolwise_modules, [0])
    assert "poolwise.backends.child.process_worker" in loaded
    assert [name for name in loaded if name in _PARENT_SIDE] == []
