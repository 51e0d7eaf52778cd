"""Interruptibility: how long it takes to stop a runaway task, in a process and in a thread.

The seed says child processes are interruptible and threads are not. A process can always
be killed. A plain ``threading.Thread`` has no stop at all; poolwise stops one with an
asynchronous exception, which lands at the thread's next bytecode: at once for a Python
loop, and only when the call returns for a thread blocked inside C. This row times each
case through poolwise's ``timeout=``, from the deadline until the worker is gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import Measurement, Verdict

if TYPE_CHECKING:
    from collections.abc import Callable

    from .base import LabSettings

__all__ = ["EXPERIMENT", "InterruptExperiment", "StopTimes"]

#: The timeout given to each runaway task (seconds).
TIMEOUT = 0.2
#: How long the "blocked in C" task sleeps (seconds): the thread can only stop after it.
QUICK_BLOCK = 1.0
FULL_BLOCK = 3.0
#: A stop within this many seconds after the deadline counts as "interrupted" (the
#: process contract is timeout + 0.5 s; the same bound is fair for threads).
PROMPT = 0.5
#: Give up waiting for a thread to stop after this many seconds past its blocking call.
GIVE_UP = 10.0


@dataclass(frozen=True)
class StopTimes:
    """Seconds after the deadline until each runaway task's worker was stopped."""

    timeout_s: float
    blocking_s: float
    process_loop_s: float
    process_c_s: float
    thread_loop_s: float
    thread_c_s: float

    def figures(self) -> dict[str, float | str]:
        """The times by name, for people."""
        return {
            "timeout s": self.timeout_s,
            "blocking call s": self.blocking_s,
            "process, Python loop: s to stop": self.process_loop_s,
            "process, blocked in C: s to stop": self.process_c_s,
            "thread, Python loop: s to stop": self.thread_loop_s,
            "thread, blocked in C: s to stop": self.thread_c_s,
            "plain threading.Thread": "no way to stop it",
        }


def spin() -> None:
    """A runaway pure-Python loop."""
    while True:
        pass


def block_in_c(seconds: float) -> None:
    """A task blocked inside C (``time.sleep`` holds no bytecode to interrupt)."""
    time.sleep(seconds)


def _process_stop_seconds(task: Callable[..., None], *args: float) -> float:
    """Seconds after the deadline until the task's process worker was stopped."""
    import poolwise

    with poolwise.Pool("processes", 1, timeout=TIMEOUT) as pool:
        pool.submit(int).result()  # the worker is up
        started = time.perf_counter()
        error = pool.submit(task, *args).exception()
        stopped = time.perf_counter() - started
        assert isinstance(error, poolwise.TaskTimeout)
    return max(0.0, stopped - TIMEOUT)


def _thread_stop_seconds(task: Callable[..., None], *args: float) -> float:
    """Seconds after the deadline until the task's thread had really stopped."""
    import poolwise

    pool = poolwise.Pool("threads", 1, timeout=TIMEOUT)
    try:
        pool.submit(int).result()
        started = time.perf_counter()
        error = pool.submit(task, *args).exception()
        assert isinstance(error, poolwise.TaskTimeout)
        # The caller has its TaskTimeout; the thread stops when the exception lands.
        limit = started + TIMEOUT + (args[0] if args else 0.0) + GIVE_UP
        while pool.report().backend.get("threads_still_running", 0) and (
            time.perf_counter() < limit
        ):
            time.sleep(0.002)
        return max(0.0, time.perf_counter() - started - TIMEOUT)
    finally:
        pool.terminate()


class InterruptExperiment:
    """Seconds to stop a runaway task: process or thread, Python loop or blocked in C."""

    key = "interruptibility"
    row = "Interruptibility"
    claim = "Child processes are interruptible; threads are not"

    def run(self, settings: LabSettings) -> Measurement[StopTimes]:
        """Time a Python loop and a call blocked in C past their deadline, in each kind."""
        block = FULL_BLOCK if settings.full else QUICK_BLOCK
        times = StopTimes(
            timeout_s=TIMEOUT,
            blocking_s=block,
            process_loop_s=round(_process_stop_seconds(spin), 4),
            process_c_s=round(_process_stop_seconds(block_in_c, block), 4),
            thread_loop_s=round(_thread_stop_seconds(spin), 4),
            thread_c_s=round(_thread_stop_seconds(block_in_c, block), 4),
        )
        return Measurement(times)

    def judge(self, measurement: Measurement[StopTimes]) -> Verdict:
        """Holds if processes stop promptly and threads, in a loop or in C, do not."""
        times = measurement.record
        process_loop, process_c = times.process_loop_s, times.process_c_s
        thread_loop, thread_c = times.thread_loop_s, times.thread_c_s
        processes_prompt = max(process_loop, process_c) <= PROMPT
        if not processes_prompt:
            return Verdict.not_here(
                f"a process took {max(process_loop, process_c):.2f} s to stop, more than "
                f"{PROMPT} s after its deadline",
            )
        if thread_loop > PROMPT and thread_c > PROMPT:
            return Verdict.holds(
                f"a process stopped {process_loop * 1e3:.0f} ms after its deadline; threads "
                f"took {thread_loop:.2f} s (Python loop) and {thread_c:.2f} s (blocked in C)",
            )
        if thread_c <= PROMPT:
            return Verdict.not_here(
                f"threads stopped {thread_loop * 1e3:.0f} ms (Python loop) and "
                f"{thread_c * 1e3:.0f} ms (blocked in C) after the deadline, as promptly as "
                f"a process ({process_loop * 1e3:.0f} ms)",
            )
        return Verdict.depends(
            f"a process stopped {process_loop * 1e3:.0f} ms after its deadline whatever it "
            f"ran; a thread in a Python loop stopped {thread_loop * 1e3:.0f} ms after it "
            f"(poolwise's asynchronous exception), but a thread blocked in C only when its "
            f"call returned, {thread_c:.2f} s later",
        )


EXPERIMENT = InterruptExperiment()
