"""I/O-bound processing: a tiny real run, clean-up on Ctrl-C, verdict rules on synthetic figures."""

from __future__ import annotations

import os
import tempfile
import threading
from typing import TYPE_CHECKING

import pytest
from support import wait_until, worker_processes

from poolwise.lab import io_bound, local_http
from poolwise.lab.base import DEPENDS, HOLDS, NOT_HERE, LabSettings, Measurement

if TYPE_CHECKING:
    from poolwise import Pool

WORKLOADS = list(io_bound.UNITS)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink every size so a real run takes about a second."""
    monkeypatch.setattr(io_bound, "LATENCY", 0.002)
    monkeypatch.setattr(io_bound, "BEYOND", (2, 2))
    monkeypatch.setattr(io_bound, "ROUNDS", 1)
    monkeypatch.setattr(io_bound, "MIN_TASKS", dict.fromkeys(WORKLOADS, (4, 4)))
    monkeypatch.setattr(io_bound, "SQLITE_ROWS", (64, 64))
    monkeypatch.setattr(io_bound, "SQLITE_KEYS", 4)
    monkeypatch.setattr(io_bound, "FILE_BYTES", 4096)
    monkeypatch.setattr(io_bound, "WARM_NAP", 0.005)


def _assert_cleaned_up() -> None:
    """No server or handler thread, temporary folder or worker process is left."""
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    assert local_http.SERVER_THREAD not in left
    assert not [name for name in left if "process_request" in name], left
    temp = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(io_bound.TEMP_PREFIX)]
    assert temp == []
    wait_until(lambda: not worker_processes(), what=f"workers left: {worker_processes()}")


@pytest.mark.slow
@pytest.mark.usefixtures("tiny")
def test_every_workload_and_mode_is_measured() -> None:
    measurement = io_bound.EXPERIMENT.run(LabSettings(cpus=1))
    figures = measurement.figures
    for name, unit in io_bound.UNITS.items():
        assert float(figures[f"{name} serial {unit}"]) > 0
        for mode in ("threads", "processes"):
            assert float(figures[f"{name} {mode} best {unit}"]) > 0
            assert figures[f"{name} {mode} best at workers"] in (1, 2)
            assert float(figures[f"{name} {mode} speed-up x"]) > 0
        assert f" {figures[f'{name} auto chose']} x" in measurement.notes[0]
        assert float(figures[f"{name} auto {unit}, probing and start-up included"]) > 0
    assert measurement.notes[0].startswith("mode='auto' (fresh pool")
    by_name = {s.name: s for s in measurement.series}
    assert set(by_name) == {f"{w} {m}" for w in WORKLOADS for m in io_bound.MODES}
    for name, series in by_name.items():
        expected_x = [1.0] if name.endswith("serial") else [1.0, 2.0]
        assert series.x == expected_x
        assert all(y > 0 for y in series.y), name
    reason = io_bound.EXPERIMENT.judge(measurement).reason
    assert all(name in reason for name in WORKLOADS), reason  # every workload judged
    _assert_cleaned_up()


@pytest.mark.slow
@pytest.mark.usefixtures("tiny")
def test_ctrl_c_mid_run_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    measure = io_bound._throughput

    def interrupted(pool: Pool, workload: io_bound._Workload, tasks: int, repeats: int) -> float:
        if pool.mode == "processes":  # the server is up, the files exist, workers run
            raise KeyboardInterrupt
        return measure(pool, workload, tasks, repeats)

    monkeypatch.setattr(io_bound, "BEYOND", (1, 1))
    monkeypatch.setattr(io_bound, "_throughput", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io_bound.EXPERIMENT.run(LabSettings(cpus=1))
    _assert_cleaned_up()


def test_fetch_refuses_anything_but_localhost() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        local_http.fetch("http://example.com/")


def _figures(cpus: int = 2, **speedups: tuple[float, float]) -> Measurement[io_bound.IoRates]:
    """Figures with serial 100/s and the given (threads, processes) speed-ups per workload."""
    workloads = []
    for name in io_bound.UNITS:
        threads, processes = speedups.get(name, speedups.get("every", (1.0, 1.0)))
        workloads.append(
            io_bound.WorkloadRates(
                name,
                serial=100.0,
                threads=io_bound.ModeBest(100.0 * threads, 32, threads),
                processes=io_bound.ModeBest(100.0 * processes, 32, processes),
            )
        )
    return Measurement(io_bound.IoRates(cpus, latency_ms=20.0, workloads=tuple(workloads)))


@pytest.mark.parametrize(
    ("measurement", "status"),
    [
        # Threads scale past the CPUs everywhere and keep up with processes.
        (_figures(every=(10.0, 9.0)), HOLDS),
        # BEYOND_CPUS: 2 CPUs x 1.5 = 3.0x is needed; 2.9x is what 2 CPUs could explain.
        (_figures(every=(3.0, 3.0)), HOLDS),
        (_figures(every=(2.9, 2.9)), DEPENDS),
        # MIN_SPEEDUP: with 1 CPU the bar is 2.0x serial.
        (_figures(cpus=1, every=(2.0, 2.0)), HOLDS),
        (_figures(cpus=1, every=(1.9, 1.9)), DEPENDS),
        # KEEP_UP: threads at 0.8 of processes still keep up; at 0.79 they do not.
        (_figures(every=(8.0, 10.0)), HOLDS),
        (_figures(every=(7.9, 10.0)), DEPENDS),
        # WIDE_MARGIN: processes over 2x faster and threads scaling nowhere.
        (_figures(every=(1.0, 2.1)), NOT_HERE),
        (_figures(every=(1.0, 1.9)), DEPENDS),
        # The workloads disagree: network overlaps, the local ones behave like CPU work.
        (_figures(network=(10.0, 9.0)), DEPENDS),
        # Processes far ahead on one workload while threads win on another: depends.
        (_figures(network=(10.0, 9.0), files=(1.0, 3.0)), DEPENDS),
    ],
)
def test_verdict_rules(measurement: Measurement[io_bound.IoRates], status: str) -> None:
    verdict = io_bound.EXPERIMENT.judge(measurement)
    assert verdict.status == status
    # One sentence that names the measured figures.
    assert verdict.reason.endswith(".")
    assert verdict.reason.count(". ") == 0
    assert "network" in verdict.reason
    assert f"{float(measurement.figures['network threads speed-up x']):.1f}x" in verdict.reason


def test_depends_names_what_overlapped_and_what_did_not() -> None:
    reason = io_bound.EXPERIMENT.judge(_figures(network=(18.0, 17.2), files=(2.2, 2.4))).reason
    assert "past the 2 CPUs on network" in reason
    assert "sqlite and files stayed under 3x serial" in reason


@pytest.mark.parametrize(
    ("measurement", "near"),
    [
        (_figures(every=(10.0, 9.0)), False),  # far from every threshold: measured once
        (_figures(every=(3.1, 3.1)), True),  # threads near the 3.0x bar on 2 CPUs
        (_figures(every=(8.2, 10.0)), True),  # threads at 0.82 of processes: near KEEP_UP
        (_figures(every=(1.0, 1.95)), True),  # processes 1.95x ahead: near WIDE_MARGIN
    ],
)
def test_figures_near_a_threshold_are_measured_again(
    measurement: Measurement[io_bound.IoRates], near: bool
) -> None:
    assert io_bound.EXPERIMENT.near_threshold(measurement) is near
