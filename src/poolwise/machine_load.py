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

__all__ = ["BUSY_SHARE", "LoadMeter", "RoundLoad", "busy_note"]

#: Share of the machine's CPU time other programs may take before a measurement is called
#: taken on a busy machine (a guess: a browser tab or an editor stays under it).
BUSY_SHARE = 0.15


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
        import psutil  # here: a module importing this one may run in a subinterpreter,
        # where psutil's extension cannot load (a free-threaded 3.13 build)

        times = psutil.cpu_times()
    except Exception:  # noqa: BLE001 - no figure is better than a failed probe
        return None
    idle = times.idle + getattr(times, "iowait", 0.0)
    busy = sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return busy, idle


def _tree_seconds() -> float:
    """CPU seconds of this process and its descendants (those gone included, as far as
    their parents reaped them): the lab's work runs in worker processes too."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # gone meanwhile: its parent counts it once reaped
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class LoadMeter:
    """Started when a round starts; ``stop()`` says how the CPUs were used meanwhile.

    ``tree=True`` counts this process's descendants as its own (the lab's experiments
    start worker processes); otherwise only this process's threads are its own.
    """

    __slots__ = ("_machine", "_own", "_own_clock", "_wall")

    def __init__(self, *, tree: bool = False) -> None:
        self._own_clock = _tree_seconds if tree else time.process_time
        self._machine = _machine_seconds()
        self._own = self._own_clock()
        self._wall = time.perf_counter()

    def stop(self) -> RoundLoad | None:
        """The round's load; None if the machine's figures are missing or too coarse
        (the kernel counts CPU time in ticks of 10 ms: a round needs several)."""
        wall = time.perf_counter() - self._wall
        own = self._own_clock() - self._own
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


def busy_note(load: RoundLoad | None, cpus: int) -> str | None:
    """What to say, with a measurement, about the CPU other programs took meanwhile."""
    if load is None or cpus < 1:
        return None
    share = min(1.0, load.others_cpus / cpus)
    if share >= BUSY_SHARE:
        return (
            f"the machine was busy: {share:.0%} of its CPU time went to other programs while "
            "this ran, so speed-ups here are a lower bound"
        )
    return f"{share:.0%} of the machine's CPU time went to other programs while this ran"
