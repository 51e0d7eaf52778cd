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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="poolwise-gil-meter", daemon=True)

    def __enter__(self) -> GilMeter:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _tick(self) -> None:
        clock, lags, stop = time.perf_counter, self._lags, self._stop
        while not stop.is_set():
            started = clock()
            time.sleep(NAP_SECONDS)
            lags.append(clock() - started - NAP_SECONDS)

    @property
    def wakeups(self) -> int:
        return len(self._lags)

    def held_share(self) -> float | None:
        """Share of wake-ups that waited over half a switch interval; None without any."""
        lags = list(self._lags)
        if not lags:
            return None
        bound = sys.getswitchinterval() / 2
        return sum(lag > bound for lag in lags) / len(lags)
