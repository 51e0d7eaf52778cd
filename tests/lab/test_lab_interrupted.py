"""Ctrl-C during `poolwise lab`: exit 130, one line, no worker or temporary file left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from support import wait_until


@pytest.mark.slow
def test_ctrl_c_during_the_lab_cleans_up() -> None:
    program_tmp = Path(tempfile.mkdtemp(prefix="lab"))  # short: forkserver socket path
    child = subprocess.Popen(
        [sys.executable, "-m", "poolwise.cli", "lab", "--only", "io-bound"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(program_tmp)},
    )
    try:
        process = psutil.Process(child.pid)
        # The I/O row is under way once its pools have started worker processes.
        wait_until(lambda: len(process.children(recursive=True)) >= 3, what="workers started")
        workers = [p.pid for p in process.children(recursive=True)]
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=60)
        assert child.returncode == 130, err
        assert "Traceback" not in err
        assert "interrupted" in err
        wait_until(lambda: not any(psutil.pid_exists(pid) for pid in workers), seconds=5)
        assert list(program_tmp.iterdir()) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
        shutil.rmtree(program_tmp, ignore_errors=True)
