"""share() under faults: crashed and timed-out workers, a killed parent; no /dev/shm leak.

The fault suite's conftest checks after every test that no ``poolwise-*`` segment is left.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from faulty import exit_holding, mapped_segments, spin_holding
from support import wait_until

import poolwise

SHM = Path("/dev/shm")


def test_a_worker_that_dies_holding_a_share_leaves_it_whole() -> None:
    with poolwise.share(np.arange(100)) as shared, poolwise.Pool("processes", 1) as pool:
        with pytest.raises(poolwise.WorkerCrashed):
            pool.submit(exit_holding, shared).result(timeout=60)
        # the replacement worker maps the same segment
        assert pool.submit(np.sum, shared).result(timeout=60) == 4950


def test_a_timed_out_worker_holding_a_share_is_stopped_and_the_share_still_works() -> None:
    with (
        poolwise.share(np.arange(100)) as shared,
        poolwise.Pool("processes", 1, timeout=0.3) as pool,
    ):
        with pytest.raises(poolwise.TaskTimeout):
            pool.submit(spin_holding, shared).result(timeout=60)
        assert pool.submit(np.sum, shared).result(timeout=60) == 4950


def test_a_worker_unmaps_a_share_the_parent_freed() -> None:
    with poolwise.Pool("processes", 1) as pool:
        shared = poolwise.share(np.arange(100))
        name = shared.name
        assert pool.submit(np.sum, shared).result(timeout=60) == 4950
        assert name in pool.submit(mapped_segments).result(timeout=60)
        shared.close()
        # the next chunk the worker takes finds the name gone and drops its mapping
        assert name not in pool.submit(mapped_segments).result(timeout=60)


PROGRAM = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import poolwise

    shared = poolwise.share(np.arange(1 << 20))
    with poolwise.Pool("processes", 1) as pool:
        assert pool.submit(np.sum, shared).result() == sum(range(1 << 20))
        print(shared.name, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_parent_leaves_no_segment_behind(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(PROGRAM)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    name = done.stdout.strip()
    assert name.startswith("poolwise-")
    # multiprocessing's resource tracker outlives the parent and unlinks what it registered
    wait_until(lambda: not (SHM / name).exists(), seconds=30, what=f"/dev/shm/{name} removed")
