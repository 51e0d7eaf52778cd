"""What this machine and this Python offer: usable CPUs, memory, GIL, start methods.

``cpus()`` answers "how many CPUs may this process really use", which is less than
``os.cpu_count()`` in a container with a CPU quota, under ``taskset``, or when the user set
``PYTHON_CPU_COUNT``. Pools size themselves from it at call time, never at import.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MachineInfo",
    "cpu_quota",
    "cpus",
    "default_start_method",
    "describe_build",
    "gil_enabled",
    "machine_info",
]

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(root: Path, proc_cgroup: str | None) -> float | None:
    """The tightest ``cpu.max`` quota on the path from this process's cgroup to the root."""
    relative = ""
    for line in (proc_cgroup or "").splitlines():
        if line.startswith("0::"):
            relative = line[3:].strip().lstrip("/")
    base = root / "unified" if (root / "unified" / "cgroup.controllers").exists() else root
    quotas: list[float] = []
    directory = base / relative if relative else base
    while True:
        text = _read(directory / "cpu.max")
        if text:
            limit, _, period = text.partition(" ")
            if limit != "max" and period:
                quotas.append(int(limit) / int(period))
        if directory == base or base not in directory.parents:
            break
        directory = directory.parent
    return min(quotas) if quotas else None


def _v1_quota(root: Path) -> float | None:
    for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota = _read(root / folder / "cpu.cfs_quota_us")
        period = _read(root / folder / "cpu.cfs_period_us")
        if quota and period and int(quota) > 0 and int(period) > 0:
            return int(quota) / int(period)
    return None


def cpu_quota(root: Path = _CGROUP_ROOT, proc_cgroup: str | None = None) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (v2 ``cpu.max`` or v1 CFS), or None.

    Args:
        root: where the cgroup file system is mounted; tests point it at a fake tree.
        proc_cgroup: the text of ``/proc/self/cgroup``; read from there when None.
    """
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup"))
    quotas = [q for q in (_v2_quota(root, proc_cgroup), _v1_quota(root)) if q is not None]
    return min(quotas) if quotas else None


#: Seconds a read of the cgroup quota is reused: cpus() is called per pool and per map, and
#: reading ~8 cgroup files costs ~0.1 ms, while a quota changes rarely (a container resize).
QUOTA_FRESH_SECONDS = 1.0
_quota_read: tuple[float, float | None] = (-math.inf, None)


def _recent_quota() -> float | None:
    """``cpu_quota()``, read again once the last read is QUOTA_FRESH_SECONDS old."""
    global _quota_read
    read_at, quota = _quota_read
    now = time.monotonic()
    if now - read_at >= QUOTA_FRESH_SECONDS:
        quota = cpu_quota()
        _quota_read = (now, quota)
    return quota


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _usable(affinity: int, quota: float | None, env: str | None) -> int:
    """Combine the three limits; ``PYTHON_CPU_COUNT`` (as in Python 3.13) overrides the rest."""
    if env:
        try:
            forced = int(env)
        except ValueError:
            forced = 0
        if forced > 0:
            return forced
    count = affinity
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cpus() -> int:
    """How many CPUs this process can use: affinity, cgroup quota and ``PYTHON_CPU_COUNT``.

    A container limited to 1.5 CPUs on a 64-core host gets 2, not 64; ``taskset -c 0-3``
    gets 4. ``PYTHON_CPU_COUNT=N`` in the environment forces N, as Python 3.13 does.

    .. versionadded:: 0.1
    """
    return _usable(_affinity(), _recent_quota(), os.environ.get("PYTHON_CPU_COUNT"))


def gil_enabled() -> bool:
    """False only on a free-threaded build running with the GIL off."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


@dataclass(frozen=True)
class MachineInfo:
    """The facts about this machine that change how work should run."""

    python: str
    implementation: str
    free_threaded_build: bool
    gil_enabled: bool
    platform: str
    logical_cpus: int
    affinity_cpus: int
    cpu_quota: float | None
    usable_cpus: int
    start_methods: tuple[str, ...]
    default_start_method: str
    memory_total: int
    memory_available: int

    def build_text(self) -> str:
        """The build and its GIL in a phrase, for the lab's reports and ``poolwise info``."""
        return describe_build(self.free_threaded_build, self.gil_enabled)


def describe_build(
    free_threaded_build: bool, gil_is_enabled: bool, environ: Mapping[str, str] = os.environ
) -> str:
    """E.g. "free-threaded build, GIL disabled"; on a free-threaded build running with the
    GIL back on, also why: ``PYTHON_GIL=1`` or an extension that did not declare support."""
    if not free_threaded_build:
        return "standard build, GIL enabled"
    if not gil_is_enabled:
        return "free-threaded build, GIL disabled"
    why = (
        "PYTHON_GIL=1 asked for it"
        if environ.get("PYTHON_GIL") == "1"
        else "an imported extension module that does not declare free-threading support "
        "turned it back on"
    )
    return f"free-threaded build, GIL enabled again: {why}"


def default_start_method() -> str:
    """poolwise's default: forkserver where it exists (fork is unsafe once threads run)."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def machine_info() -> MachineInfo:
    """Read the machine's facts now (they can change: affinity, quota, free memory)."""
    import psutil  # 40 ms to import: only where memory is asked for

    memory = psutil.virtual_memory()
    return MachineInfo(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        free_threaded_build=bool(getattr(sys, "_is_gil_enabled", None))
        and "t" in getattr(sys, "abiflags", ""),
        gil_enabled=gil_enabled(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        logical_cpus=os.cpu_count() or 1,
        affinity_cpus=_affinity(),
        cpu_quota=cpu_quota(),
        usable_cpus=cpus(),
        start_methods=tuple(multiprocessing.get_all_start_methods()),
        default_start_method=default_start_method(),
        memory_total=memory.total,
        memory_available=memory.available,
    )
