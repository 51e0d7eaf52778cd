"""Fixtures shared by every test directory."""

from __future__ import annotations

import multiprocessing.util
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

import pytest
from support import wait_until, worker_processes

import poolwise
from poolwise.warm import shutdown_warm_pools

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# A private temporary folder for this test session and every process it starts, so the leak
# checks see only what the tests (and poolwise) created, not other programs on the machine.
_TMP = tempfile.mkdtemp(prefix="poolwise-tests-")
os.environ["TMPDIR"] = _TMP
tempfile.tempdir = None  # re-read TMPDIR
# Removed at exit after multiprocessing removes its own pymp-* folder in it (priority -100).
multiprocessing.util.Finalize(None, shutil.rmtree, args=(_TMP,), exitpriority=-200)

#: Every (mode, start method) the behaviour suite runs on. Process pools run on the default
#: start method (forkserver) and on spawn and fork, as loky reruns its suite per method.
POOL_KINDS = [
    pytest.param(("serial", None), id="serial"),
    pytest.param(("threads", None), id="threads"),
    pytest.param(("processes", "forkserver"), id="processes-forkserver"),
    pytest.param(("processes", "spawn"), id="processes-spawn", marks=pytest.mark.slow),
    pytest.param(("processes", "fork"), id="processes-fork", marks=pytest.mark.slow),
    pytest.param(
        ("interpreters", None),
        id="interpreters",
        marks=pytest.mark.skipif(
            sys.version_info < (3, 13),
            reason="mode='interpreters' needs Python 3.13+ (.ci/run runs the suite on 3.13 "
            "where the machine has it)",
        ),
    ),
    pytest.param(("dask", None), id="dask", marks=pytest.mark.slow),
]


@pytest.fixture(params=POOL_KINDS)
def pool_kind(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    kind: tuple[str, str | None] = request.param
    return kind


@pytest.fixture
def pool(
    pool_kind: tuple[str, str | None], request: pytest.FixtureRequest
) -> Iterator[poolwise.Pool]:
    """A 2-worker pool of each kind; terminated after the test whatever happened.

    A test marked ``@pytest.mark.not_on("dask", reason=...)`` is skipped on those modes,
    with the reason (a behaviour the mode does not have, e.g. killing a task in C).
    """
    mode, method = pool_kind
    for marker in request.node.iter_markers("not_on"):
        if mode in marker.args:
            pytest.skip(f"not on mode={mode!r}: {marker.kwargs['reason']}")
    p = poolwise.Pool(mode, 2, start_method=method)  # type: ignore[arg-type]
    try:
        yield p
    finally:
        p.terminate()


@pytest.fixture(autouse=True, scope="session")
def _stop_warm_pools() -> Iterator[None]:
    yield
    shutdown_warm_pools()


@pytest.fixture
def no_workers_left() -> Callable[[], None]:
    """Call it to wait (bounded) until no worker process of this test is left."""

    def check() -> None:
        wait_until(lambda: not worker_processes(), what=f"workers left: {worker_processes()}")

    return check
