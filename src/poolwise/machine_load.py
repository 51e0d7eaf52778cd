"""How the machine's CPUs were used while a measurement ran: by this process, by other
programs, or not at all.

A thread round that did not scale means the work holds the GIL only if there was a free
CPU to scale onto. ``LoadMeter`` reads this process's CPU time and the machine's idle time
(``psutil.cpu_times()``, /proc/stat on Linux) around a round, so the rules can tell "holds
the GIL" from "no free CPU" (#14).
"""

from __future__ import annotations

import dataclasses
import time

import psutil

__all__ = ["LoadMeter", "RoundLoad"]


@dataclasses.dataclass(frozen=True)
class RoundLoad:
    """CPU use during one round, each in CPUs (CPU seconds per wall second).

    Attributes:
        seconds: the round's wall time.
        own_cpus: this process's threads (2.0: two CPUs busy all along).
        idle_cpus: no program at all.
        others_cpus: every other program (the machine's busy time minus ours).
    """

    seconds: float
    own_cpus: float
    idle_cpus: float
    others_cpus: float


def _machine_seconds() -> tuple[float, float] | None:
    """The machine's (busy, idle) CPU seconds since boot, summed over its CPUs; None where
    the platform does not say."""
    try:
        times = psutil.cpu_times()
    except Exception:  # noqa: BLE001 - no figure is better than a failed probe
        return None
    idle = times.idle + getattr(times, "iowait", 0.0)
    busy = sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return busy, idle


class LoadMeter:
    """Started when a round starts; ``stop()`` says how the CPUs were used meanwhile."""

    __slots__ = ("_machine", "_own", "_wall")

    def __init__(self) -> None:
        self._machine = _machine_seconds()
        self._own = time.process_time()
        self._wall = time.perf_counter()

    def stop(self) -> RoundLoad | None:
        """The round's load; None if the machine's figures are missing or too coarse
        (the kernel counts CPU time in ticks of 10 ms: a round needs several)."""
        wall = time.perf_counter() - self._wall
        own = time.process_time() - self._own
        after = _machine_seconds()
        if self._machine is None or after is None or wall < 0.02:
            return None
        busy = after[0] - self._machine[0]
        idle = after[1] - self._machine[1]
        return RoundLoad(
            seconds=wall,
            own_cpus=own / wall,
            idle_cpus=max(0.0, idle / wall),
            others_cpus=max(0.0, (busy - own) / wall),
        )
