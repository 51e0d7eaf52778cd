"""progress=: the bar counts every result of a run on real workers (in tests/unit, the
bar is checked on its own and under serial runs, which start no workers); off a terminal,
progress="always" writes plain lines a log can hold."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

import poolwise
from poolwise.progress import HEARTBEAT

if TYPE_CHECKING:
    from pathlib import Path


def test_map_with_progress_always_draws_the_final_count(
    pool: poolwise.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pool.map(abs, range(-20, 0), progress="always") == list(range(20, 0, -1))
    assert "20/20" in capsys.readouterr().err


def test_imap_unordered_counts_every_result(capsys: pytest.CaptureFixture[str]) -> None:
    with poolwise.Pool("threads", 2, progress="always") as pool:
        assert sorted(pool.imap_unordered(abs, range(-30, 0))) == list(range(1, 31))
    assert "30/30" in capsys.readouterr().err


MANY_TASKS = """
import poolwise

poolwise.map(abs, range(-10_000, 0), mode="threads", workers=2, chunksize=1,
             progress="always")
"""


def _run_script(tmp_path: Path, stderr: int) -> subprocess.Popen[bytes]:
    """MANY_TASKS in a child whose stderr is ``stderr`` (a pipe or a terminal); TERM names
    a real terminal, whatever the CI's is (rich draws less on a "dumb" one)."""
    script = tmp_path / "many_tasks.py"
    script.write_text(MANY_TASKS)
    env = {**os.environ, "TERM": "xterm-256color"}
    return subprocess.Popen([sys.executable, str(script)], stderr=stderr, env=env)


@pytest.mark.timeout(120)
def test_always_writes_plain_lines_to_a_pipe(tmp_path: Path) -> None:
    started = time.monotonic()
    child = _run_script(tmp_path, subprocess.PIPE)
    _, err_bytes = child.communicate(timeout=100)
    took = time.monotonic() - started
    err = err_bytes.decode()
    assert child.returncode == 0, err
    assert "\r" not in err
    assert "\x1b[" not in err
    lines = err.splitlines()
    # a line per tenth (9 at most before the end), one per HEARTBEAT beyond, and the last
    assert 1 <= len(lines) <= 9 + took // HEARTBEAT + 1, err
    assert lines[-1].startswith("abs: finished 10000/10000, 0 failed, ")
    assert lines[-1].endswith(" elapsed")


@pytest.mark.timeout(120)
def test_always_on_a_terminal_still_draws_the_bar(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    child = _run_script(tmp_path, follower)
    os.close(follower)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal (it exited)
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert child.wait(timeout=100) == 0
    text = drawn.decode(errors="replace")
    assert "\x1b[" in text  # rich's cursor and colour codes, as before
    assert "10000/10000" in text
    assert "finished" not in text
