"""Each lab row says how much CPU other programs took while it ran (#14), from a real busy
program: a ``while True: pass`` process that is not the lab's own (not its descendant)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from poolwise.lab.base import LabSettings
from poolwise.lab.report import LabReport
from poolwise.lab.runner import run_lab
from poolwise.machine_load import BUSY_SHARE, RoundLoad, busy_note

if TYPE_CHECKING:
    from collections.abc import Iterator

_SPAWN_ORPHAN = (
    "import subprocess, sys\n"
    "hog = subprocess.Popen([sys.executable, '-c', 'while True: pass'],\n"
    "                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(hog.pid, flush=True)\n"
)


@pytest.fixture
def other_program() -> Iterator[int]:
    """A CPU hog started through a parent that exits at once, so it is not our descendant
    (the lab counts its own worker processes as its own)."""
    done = subprocess.run(
        [sys.executable, "-c", _SPAWN_ORPHAN], capture_output=True, text=True, check=True
    )
    pid = int(done.stdout)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="the hog is reaped by init on Linux")
@pytest.mark.usefixtures("other_program")
def test_a_row_measured_beside_a_busy_program_says_so() -> None:
    [row] = run_lab(LabSettings(full=False, cpus=2), only=["starting-time"])
    assert row.others_share is not None
    # one of the machine's CPUs was the hog's: on 2 CPUs about half its time
    assert row.others_share >= BUSY_SHARE * (2 / (os.cpu_count() or 2))
    assert any(note.startswith("the machine was busy") for note in row.measurement.notes)
    [data] = LabReport.of([row], full=False, seconds=1.0).to_dict()["rows"]
    assert data["other_programs_cpu_share"] == row.others_share


def test_the_note_names_the_share_and_calls_a_busy_machine_busy() -> None:
    quiet = RoundLoad(seconds=1.0, own_cpus=1.0, idle_cpus=0.9, others_cpus=0.06)
    busy = RoundLoad(seconds=1.0, own_cpus=1.0, idle_cpus=0.0, others_cpus=1.0)
    assert (
        busy_note(quiet, 2) == "3% of the machine's CPU time went to other programs while this ran"
    )
    note = busy_note(busy, 2)
    assert note is not None
    assert note.startswith("the machine was busy: 50% of its CPU time went to other programs")
    assert "lower bound" in note
    assert busy_note(None, 2) is None
