"""gil_meter: a napping thread finds the GIL held while pure Python runs, free while C code
that releases it runs (#14)."""

from __future__ import annotations

import hashlib
import time

import pytest

from poolwise.gil_meter import GilMeter
from poolwise.system import gil_enabled


def _spin_python(seconds: float) -> int:
    end, count = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        count += 1
    return count


def _hash_in_c(seconds: float) -> None:
    block = b"x" * (8 << 20)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        hashlib.sha256(block).digest()  # releases the GIL for inputs over 2 KiB


def test_pure_python_holds_the_gil() -> None:
    with GilMeter() as meter:
        _spin_python(0.1)
    share = meter.held_share()
    assert share is not None
    if gil_enabled():
        assert share >= 0.5, (share, meter.wakeups)
    else:  # a free-threaded build: nothing to hold, the meter runs beside the task
        assert share < 0.5, (share, meter.wakeups)


def test_c_code_that_releases_the_gil_leaves_it_free() -> None:
    with GilMeter() as meter:
        _hash_in_c(0.1)
    share = meter.held_share()
    assert share is not None
    assert share < 0.5, (share, meter.wakeups)


def test_no_wakeup_means_no_figure() -> None:
    assert GilMeter().held_share() is None


@pytest.mark.skipif(not gil_enabled(), reason="no GIL on this build: nothing to catch")
def test_a_task_shorter_than_a_switch_interval_is_caught_holding_the_gil() -> None:
    # the meter runs before the task starts: a thread still starting when a GIL-holding
    # task begins waits out the whole switch interval, and a 4 ms task went unmeasured
    with GilMeter() as meter:
        _spin_python(0.004)
    assert meter.wakeups >= 1
    assert meter.held_share() is not None


@pytest.mark.skipif(not gil_enabled(), reason="no GIL on this build: nothing to catch")
def test_held_time_is_not_diluted_by_waiting() -> None:
    # A task that computes in Python for a third of its time and waits for the rest: the
    # meter wakes ten times as often while the task waits, so the share of its wake-ups that
    # found the GIL held understates the computing; the share of time it waited does not.
    with GilMeter() as meter:
        for _ in range(4):
            _spin_python(0.02)
            time.sleep(0.04)
    held_time, held_wakeups = meter.held_time_share(), meter.held_share()
    assert held_time is not None
    assert held_wakeups is not None
    assert held_wakeups < held_time
    assert 0.5 * (1 / 3) <= held_time <= 1.0  # at least half the computing share


def test_released_gil_time_reads_as_free() -> None:
    with GilMeter() as meter:
        _hash_in_c(0.05)
        time.sleep(0.05)
    held_time = meter.held_time_share()
    assert held_time is not None
    assert held_time < 0.1, held_time


def test_no_time_figure_before_the_meter_stopped() -> None:
    assert GilMeter().held_time_share() is None
