"""Leak checks around every Dask test: worker processes, poolwise threads, temp files.

The external cluster of ``test_external_cluster.py`` (a ``dask scheduler`` and a
``dask worker`` started as subprocesses for the module) is not a leak while its module
runs; that module checks that it is gone at the end.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import TYPE_CHECKING

import pytest
from dask_support import local_workers
from support import wait_until

import poolwise

if TYPE_CHECKING:
    from collections.abc import Iterator


def _poolwise_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("poolwise-") and t.is_alive()}


@pytest.fixture
def pool() -> Iterator[poolwise.Pool]:
    """A pool on a LocalCluster of 2 worker processes, terminated after the test.

    In this folder it stands in for the root conftest's ``pool``, which runs a test on
    every mode.
    """
    p = poolwise.Pool("dask", 2)
    try:
        yield p
    finally:
        p.terminate()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = _poolwise_threads()
    temp_before = set(os.listdir(tempfile.gettempdir()))
    yield
    wait_until(lambda: not local_workers(), what=f"worker processes left: {local_workers()}")
    wait_until(
        lambda: not (_poolwise_threads() - threads_before),
        seconds=10,
        what=f"poolwise threads left: {_poolwise_threads() - threads_before}",
    )
    # pytest-*: tmp_path; pymp-*: multiprocessing's folder, removed when this process exits.
    new_temp = {
        name
        for name in set(os.listdir(tempfile.gettempdir())) - temp_before
        if not name.startswith(("pytest-", "pymp-"))
    }
    assert new_temp == set(), f"temporary files left (a cluster's scratch space?): {new_temp}"
