"""Ctrl-C, SIGTERM or SIGKILL to a program running a pool: nothing is left behind.

Each test runs a small program in a subprocess, waits until it prints ``ready`` (its tasks
are running), sends the signal, and checks how the program ended and that every worker
process is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from support import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

PROGRAM = textwrap.dedent(
    """
    import json, os, sys, time
    import poolwise

    def task(folder, i, kind):
        open(os.path.join(folder, str(i)), "w").close()   # "I have started"
        if kind == "spin":
            while True:
                pass
        time.sleep(3600)

    mode, kind, folder, how = sys.argv[1:5]
    pool = poolwise.Pool(mode, 2)
    started = []
    try:
        with pool:
            count = 0 if mode == "serial" else 2
            futures = [pool.submit(task, folder, i, kind) for i in range(count)]
            if mode != "serial":
                while len(os.listdir(folder)) < 2:
                    time.sleep(0.005)
                print("ready", flush=True)
                futures[0].result()
            else:
                print("ready", flush=True)
                pool.submit(task, folder, 0, kind)
    except KeyboardInterrupt:
        print(f"interrupted {time.monotonic()!r}", flush=True)
        raise
    """
)


_CHILDREN: list[subprocess.Popen[str]] = []
_FOLDERS: list[Path] = []


@pytest.fixture(autouse=True)
def _kill_children_left_by_a_failure() -> Iterator[None]:
    yield
    while _FOLDERS:
        shutil.rmtree(_FOLDERS.pop(), ignore_errors=True)
    while _CHILDREN:
        child = _CHILDREN.pop()
        if child.poll() is None:
            for process in psutil.Process(child.pid).children(recursive=True):
                process.kill()
            child.kill()
            child.communicate()


def _start(tmp_path: Path, mode: str, kind: str) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    folder = tmp_path / "started"
    folder.mkdir()
    # The program's own TMPDIR, to see what it leaves there; short, since the forkserver's
    # socket path in it must fit AF_UNIX's 108 bytes.
    program_tmp = Path(tempfile.mkdtemp(prefix="p"))
    _FOLDERS.append(program_tmp)
    (tmp_path / "tmp").symlink_to(program_tmp)
    child = subprocess.Popen(
        [sys.executable, str(script), mode, kind, str(folder), "submit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(program_tmp)},
    )
    _CHILDREN.append(child)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "ready", child.stderr.read() if child.stderr else ""
    workers = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
    return child, workers


def _all_gone(pids: list[int]) -> bool:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return not alive


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["serial", "threads", "processes"])
@pytest.mark.parametrize("kind", ["spin", "sleep"])
def test_ctrl_c_reaches_the_caller_within_a_second_and_stops_workers(
    tmp_path: Path, mode: str, kind: str
) -> None:
    child, workers = _start(tmp_path, mode, kind)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    interrupted = float(out.split()[1])
    assert interrupted - sent <= 1.0  # the contract: within a second
    wait_until(lambda: _all_gone(workers), seconds=2, what=f"workers {workers} gone")
    assert list((tmp_path / "tmp").iterdir()) == []  # no temporary file left


@pytest.mark.slow
def test_sigterm_unwinds_like_ctrl_c_and_stops_workers(tmp_path: Path) -> None:
    child, workers = _start(tmp_path, "processes", "sleep")
    assert workers
    child.send_signal(signal.SIGTERM)
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    wait_until(lambda: _all_gone(workers), seconds=2, what=f"workers {workers} gone")
    assert list((tmp_path / "tmp").iterdir()) == []  # no temporary file left


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["spin", "sleep"])
def test_workers_exit_by_themselves_when_the_parent_is_killed(tmp_path: Path, kind: str) -> None:
    child, workers = _start(tmp_path, "processes", kind)
    assert workers
    child.kill()
    child.communicate(timeout=60)
    # pipe EOF (or the parent's pid gone) ends each worker; the contract is 2 s
    wait_until(lambda: _all_gone(workers), seconds=2, what=f"workers {workers} gone")


def test_sigterm_handler_is_only_installed_while_process_pools_are_open() -> None:
    code = textwrap.dedent(
        """
        import signal, poolwise
        before = signal.getsignal(signal.SIGTERM)
        with poolwise.Pool("processes", 1) as pool:
            during = signal.getsignal(signal.SIGTERM)
        after = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda *a: None)
        mine = signal.getsignal(signal.SIGTERM)
        with poolwise.Pool("processes", 1) as pool:
            kept = signal.getsignal(signal.SIGTERM) is mine
        print(before is signal.SIG_DFL, during is not signal.SIG_DFL,
              after is signal.SIG_DFL, kept)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True"] * 4, done.stderr
