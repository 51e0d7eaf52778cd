"""The timeout watchdog fires for a runner watched before it began its chunk.

Found on free-threaded 3.13 (#18's CI): the watchdog looked at a runner whose chunk was not
set yet, saw nothing that could come due, and slept with no timeout; the runner then began
a task that never ended, and nothing woke the watchdog: 1 run in 6 of a Dask timeout test
hung for 60 s.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from poolwise.backends.child.interrupt import TaskWatch, Watchdog


def test_a_runner_watched_before_its_chunk_began_still_times_out() -> None:
    fired = threading.Event()
    watchdog = Watchdog(lambda watch: fired.set(), "test-watchdog")
    try:
        watch = TaskWatch(threading.get_ident())
        watchdog.watch(watch)  # its chunk is not set yet, as when a runner starts
        time.sleep(0.05)  # the race made certain: the watchdog looks before the task starts
        with watch.lock:  # what run_timed_tasks does as the task starts, telling no one
            watch.chunk = SimpleNamespace(timeout=0.05)  # type: ignore[assignment]
            watch.started = time.monotonic()
            watch.running = True
        assert fired.wait(10), "the watchdog slept through the deadline"
    finally:
        watchdog.close()
