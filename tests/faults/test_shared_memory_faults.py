"""Shared memory under faults (share() and big arguments): crashed and timed-out workers,
a killed parent; no /dev/shm leak.

The fault suite's conftest checks after every test that no ``poolwise-*`` segment is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import psutil
import pytest
from support import wait_until
from tasks import (
    exit_holding,
    exit_on,
    filled,
    mapped_segments,
    orphan_result_segment_then,
    spin,
    spin_holding,
)

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


BIG = np.arange(1 << 18, dtype=np.int64)  # 2 MiB: through shared memory


def test_big_arguments_of_a_crashed_worker_are_freed() -> None:
    with poolwise.Pool("processes", 1) as pool:
        with pytest.raises(poolwise.WorkerCrashed):
            pool.map(exit_holding, [BIG] * 3)
        assert pool.map(np.sum, [BIG] * 2) == [int(BIG.sum())] * 2


def test_big_arguments_of_a_timed_out_task_are_freed() -> None:
    with poolwise.Pool("processes", 1, timeout=0.3) as pool, pytest.raises(poolwise.TaskTimeout):
        pool.map(spin_holding, [BIG] * 2)


PROGRAM = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import poolwise

    def hold(array, folder):
        open(os.path.join(folder, str(os.getpid())), "w").close()
        signal.pause()

    shared = poolwise.share(np.arange(1 << 20))
    with poolwise.Pool("processes", 1) as pool:
        assert pool.submit(np.sum, shared).result() == sum(range(1 << 20))
        pool.submit(hold, np.arange(1 << 20), sys.argv[1])  # a big argument in flight
        while not os.listdir(sys.argv[1]):
            pass
        names = [n for n in os.listdir("/dev/shm") if n.startswith(f"poolwise-{os.getpid()}-")]
        print(" ".join(names), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_parent_leaves_no_segment_behind(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(PROGRAM)
    folder = tmp_path / "started"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    names = done.stdout.split()
    assert len(names) == 2  # the Shared, and the segment of the argument in flight
    # multiprocessing's resource tracker outlives the parent and unlinks what it registered
    for name in names:
        wait_until(lambda n=name: not (SHM / n).exists(), seconds=30, what=f"{name} removed")
    # the worker, orphaned, ends on its own when its pipe to the parent closes
    for pid in os.listdir(folder):
        wait_until(lambda p=int(pid): not psutil.pid_exists(p), seconds=30, what="worker exit")


# -- big results: segments a worker made are never left behind ----------------------------


linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="big results come through shared memory on Linux only"
)


@linux_only
def test_big_results_of_a_chunk_cut_short_by_a_crash_are_delivered_and_freed() -> None:
    with poolwise.Pool("processes", 1) as pool:
        futures = [pool.submit(filled, 1), pool.submit(exit_on, 3, 3)]
        assert futures[0].result(timeout=60).sum() == filled(1).sum()
        with pytest.raises(poolwise.WorkerCrashed):
            futures[1].result(timeout=60)


@linux_only
def test_a_result_segment_whose_frame_never_left_the_dying_worker_is_unlinked() -> None:
    with poolwise.Pool("processes", 1) as pool, pytest.raises(poolwise.WorkerCrashed):
        pool.submit(orphan_result_segment_then, os.getpid(), "exit").result(timeout=60)
    # the fault suite's conftest checks that no poolwise-* segment is left


@linux_only
def test_a_worker_orphaned_by_a_killed_parent_unlinks_its_result_segments(
    tmp_path: Path,
) -> None:
    announced = tmp_path / "segment"
    script = tmp_path / "killed.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys
            sys.path.insert(0, {str(Path(__file__).parents[1])!r})
            import poolwise
            from tasks import orphan_result_segment_then

            with poolwise.Pool("processes", 1) as pool:
                pool.submit(orphan_result_segment_then, os.getpid(), "wait", {str(announced)!r})
                while not os.path.exists({str(announced)!r}):
                    pass
                os.kill(os.getpid(), signal.SIGKILL)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    name = announced.read_text()
    assert name.startswith("poolwise-")
    wait_until(lambda: not (SHM / name).exists(), seconds=30, what=f"{name} unlinked by the worker")


@linux_only
def test_big_results_before_a_timeout_arrive_and_nothing_is_left() -> None:
    with poolwise.Pool("processes", 1, timeout=0.5) as pool:
        first = pool.submit(filled, 2)
        stuck = pool.submit(spin, 60)
        assert first.result(timeout=60).sum() == filled(2).sum()
        with pytest.raises(poolwise.TaskTimeout):
            stuck.result(timeout=60)
