"""Whether the task running on this thread holds the GIL, seen from another thread.

A thread round that does not scale cannot say why on a busy machine: the GIL, or no free
CPU (#14). This asks the GIL itself. While the probe's first tasks run on the calling
thread, a meter thread naps for half a millisecond at a time; waking, it needs the GIL.
If the task holds it, the meter waits for the task to drop it, which CPython asks for
every switch interval (5 ms); if the task released it (C code: hashlib, zlib, NumPy,
SQLite), the meter runs at once. A busy machine delays the meter by a scheduler wake-up
(well under a millisecond for a thread that slept), not by a switch interval.
"""

from __future__ import annotations

import _thread
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["NAP_SECONDS", "GilMeter"]

#: How long the meter sleeps between wake-ups (seconds): short against the 5 ms switch
#: interval, long enough that its own work is noise.
NAP_SECONDS = 0.0005


class GilMeter:
    """Counts how often a napping thread found the GIL held when it woke.

    Use as a context manager around the code to measure; ``held_share`` then says which
    share of its wake-ups waited more than half a switch interval for the GIL.
    """

    def __init__(self) -> None:
        self._lags: list[float] = []
        self._metered = (0.0, 0.0)  # when it started and stopped (perf_counter)
        self._stop = threading.Event()
        self._done = threading.Lock()

    def __enter__(self) -> GilMeter:
        # A bare thread (threading.Thread's bookkeeping took ~0.1 ms of a 5 ms map of tiny
        # tasks), but started before the task runs: a task that holds the GIL would keep
        # a thread still starting out for a whole switch interval, so a 5 ms task got no
        # wake-up at all.
        self._done.acquire()
        running = _thread.allocate_lock()
        running.acquire()
        _thread.start_new_thread(self._tick, (running,))
        running.acquire()  # released by the meter once it runs
        self._metered = (time.perf_counter(), 0.0)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        with self._done:  # the meter released it on its way out
            pass
        self._metered = (self._metered[0], time.perf_counter())

    def _tick(self, running: _thread.LockType) -> None:
        running.release()
        try:
            self._nap_until_stopped()
        finally:
            self._done.release()

    def _nap_until_stopped(self) -> None:
        clock, lags, stop = time.perf_counter, self._lags, self._stop
        while True:
            started = clock()
            # a wait, not a sleep: the meter's exit wakes it at once (a sleep cost the
            # probe up to a nap, ~0.5 ms, of a 5 ms map of tiny tasks)
            if stop.wait(NAP_SECONDS):
                return
            lags.append(clock() - started - NAP_SECONDS)

    @property
    def wakeups(self) -> int:
        return len(self._lags)

    def held_time_share(self) -> float | None:
        """Share of the metered time the meter spent waiting for a held GIL: about the share
        of the task's time it held the GIL. Unlike ``held_share`` it is not diluted by a task
        that also waits: the meter wakes 10 times as often while the GIL is free (None
        before the meter stopped or without any wake-up)."""
        started, stopped = self._metered
        lags = list(self._lags)
        if not lags or stopped <= started:
            return None
        bound = sys.getswitchinterval() / 2
        return min(1.0, sum(lag for lag in lags if lag > bound) / (stopped - started))

    def held_share(self) -> float | None:
        """Share of wake-ups that waited over half a switch interval; None without any."""
        lags = list(self._lags)
        if not lags:
            return None
        bound = sys.getswitchinterval() / 2
        return sum(lag > bound for lag in lags) / len(lags)
