"""Ctrl-C during a joblib call on the poolwise backend: KeyboardInterrupt in the caller, and
the pool's worker processes gone (#17)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import psutil
import pytest
from support import wait_until

pytest.importorskip("joblib", reason="the joblib extra is not installed")

if TYPE_CHECKING:
    from pathlib import Path

PROGRAM = textwrap.dedent(
    """
    import os, sys, time
    import joblib
    import poolwise.joblib

    def task(folder, i):
        open(os.path.join(folder, str(os.getpid())), "w").close()   # "I have started"
        time.sleep(3600)

    folder, mode = sys.argv[1:3]
    with joblib.parallel_config(backend="poolwise", mode=mode):
        joblib.Parallel(n_jobs=2, batch_size=1)(joblib.delayed(task)(folder, i) for i in range(8))
    """
)


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


@pytest.mark.slow
def test_ctrl_c_in_a_joblib_call_interrupts_it_and_stops_the_workers(tmp_path: Path) -> None:
    script, folder = tmp_path / "program.py", tmp_path / "started"
    script.write_text(PROGRAM)
    folder.mkdir()
    child = subprocess.Popen(
        [sys.executable, str(script), str(folder), "processes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(os.listdir(folder)) >= 2, what="two tasks started in workers")
        workers = [int(name) for name in os.listdir(folder)]
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "KeyboardInterrupt" in err, err[-2000:]
    assert child.returncode != 0
    wait_until(lambda: _gone(workers), seconds=5, what=f"workers {workers} gone")
