"""The public API is ``poolwise.__all__``; it must match DESIGN.md's contract."""

from __future__ import annotations

import poolwise

#: Names DESIGN.md promises that exist now.
DESIGN_NAMES = {
    "map",
    "imap",
    "starmap",
    "Pool",
    "Executor",
    "cpus",
    "Report",
    "PoolwiseError",
    "TaskTimeout",
    "WorkerCrashed",
    "NotPicklable",
    "PoolClosed",
    "BackendUnavailable",
    "profile",
    "Profile",
    "share",
    "Shared",
}


def test_all_names_exist_and_are_exported() -> None:
    for name in poolwise.__all__:
        assert hasattr(poolwise, name), name
    assert set(poolwise.__all__) >= DESIGN_NAMES


def test_errors_share_one_base() -> None:
    for name in ("TaskTimeout", "WorkerCrashed", "NotPicklable", "PoolClosed"):
        assert issubclass(getattr(poolwise, name), poolwise.PoolwiseError)
    assert issubclass(poolwise.BackendUnavailable, poolwise.PoolwiseError)
    assert issubclass(poolwise.TaskTimeout, TimeoutError)


def test_import_does_not_load_heavy_or_unused_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys, poolwise; "
        "print(sorted(m for m in ('numpy', 'distributed', 'rich', 'poolwise.backends.processes',"
        " 'poolwise.backends.threads') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
