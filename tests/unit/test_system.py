"""cpus() combines affinity, the cgroup quota and PYTHON_CPU_COUNT."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

import poolwise
from poolwise import system

if TYPE_CHECKING:
    from pathlib import Path


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_v2_quota_is_read_from_the_process_cgroup(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"app/cpu.max": "150000 100000\n"})
    assert system.cpu_quota(root, "0::/app\n") == pytest.approx(1.5)


def test_v2_tightest_quota_on_the_path_to_the_root_wins(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu.max": "100000 100000", "app/cpu.max": "max 100000"})
    assert system.cpu_quota(root, "0::/app") == pytest.approx(1.0)


def test_v2_hybrid_layout_reads_the_unified_tree(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"unified/cgroup.controllers": "", "unified/job/cpu.max": "300000 100000"},
    )
    assert system.cpu_quota(root, "0::/job") == pytest.approx(3.0)


def test_v1_cfs_quota(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu/cpu.cfs_quota_us": "250000", "cpu/cpu.cfs_period_us": "100000"})
    assert system.cpu_quota(root, "1:cpu:/") == pytest.approx(2.5)


def test_no_quota_anywhere(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    assert system.cpu_quota(root, "0::/") is None


@pytest.mark.parametrize(
    ("affinity", "quota", "env", "expected"),
    [
        (64, None, None, 64),
        (64, 1.5, None, 2),
        (4, 16.0, None, 4),
        (64, 0.2, None, 1),
        (64, 1.5, "8", 8),
        (64, None, "junk", 64),
        (64, None, "0", 64),
    ],
)
def test_usable_cpus(affinity: int, quota: float | None, env: str | None, expected: int) -> None:
    assert system._usable(affinity, quota, env) == expected


def test_cpus_respects_python_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_CPU_COUNT", "3")
    assert poolwise.cpus() == 3


def test_cpus_is_within_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON_CPU_COUNT", raising=False)
    assert 1 <= poolwise.cpus() <= len(os.sched_getaffinity(0))


def test_machine_info_has_the_facts_that_change_decisions() -> None:
    info = system.machine_info()
    assert info.usable_cpus == poolwise.cpus()
    assert info.default_start_method in info.start_methods
    assert info.memory_total >= info.memory_available > 0


@pytest.mark.parametrize(
    ("free_threaded", "gil", "environ", "expected"),
    [
        (False, True, {}, "standard build, GIL enabled"),
        (True, False, {}, "free-threaded build, GIL disabled"),
        (True, True, {"PYTHON_GIL": "1"}, "GIL enabled again: PYTHON_GIL=1 asked for it"),
        (True, True, {}, "GIL enabled again: an imported extension module"),
    ],
)
def test_the_build_is_named_with_why_the_gil_is_on(
    free_threaded: bool, gil: bool, environ: dict[str, str], expected: str
) -> None:
    assert expected in system.describe_build(free_threaded, gil, environ)


def test_info_and_the_lab_name_this_build() -> None:
    info = system.machine_info()
    assert info.build_text() == system.describe_build(
        info.free_threaded_build, system.gil_enabled()
    )
