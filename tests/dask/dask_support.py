"""Helpers for the Dask tests: telling this test's worker processes from the external
cluster's (a ``dask scheduler`` and a ``dask worker`` CLI started as subprocesses)."""

from __future__ import annotations

from pathlib import Path

import psutil
from support import worker_processes

__all__ = ["is_external", "local_workers"]

_CLI = ("scheduler", "worker")


def is_external(process: psutil.Process) -> bool:
    """Whether ``process`` is (or descends from) a ``dask scheduler``/``dask worker`` CLI."""
    try:
        for each in (process, *process.parents()):
            argv = each.cmdline()
            if len(argv) >= 3 and Path(argv[1]).name == "dask" and argv[2] in _CLI:
                return True
    except psutil.Error:
        return False
    return False


def local_workers() -> list[psutil.Process]:
    """This test's worker processes: a LocalCluster's, not the external cluster's."""
    return [p for p in worker_processes() if not is_external(p)]
