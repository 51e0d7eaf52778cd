"""A process worker starts with the worker-side modules only, not the pool or the
dispatcher: each import there is paid again by every worker of every pool (#12)."""

from __future__ import annotations

import importlib
import multiprocessing
import sys
from typing import TYPE_CHECKING

import pytest
from tasks import worker_id

import poolwise

if TYPE_CHECKING:
    from pathlib import Path


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


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_a_function_the_worker_cannot_load_fails_its_tasks_not_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    # a module put on sys.path after the workers started: they cannot import it. Before #15
    # each worker died ("WorkerCrashed ... exited with code 1") with a raw traceback.
    with poolwise.Pool("processes", 2, start_method=method) as pool:
        before = {pid for pid, _ in pool.map(worker_id, range(4))}
        (tmp_path / "late_module.py").write_text("def double(x):\n    return 2 * x\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        late_module = importlib.import_module("late_module")
        with pytest.raises(poolwise.NotPicklable, match="late_module"):
            pool.map(late_module.double, range(4))
        results = pool.map(late_module.double, range(3), return_exceptions=True)
        assert all(isinstance(r, poolwise.NotPicklable) for r in results), results
        # the same workers, still serving
        after = {pid for pid, _ in pool.map(worker_id, range(4))}
        assert after <= before
    sys.modules.pop("late_module", None)
