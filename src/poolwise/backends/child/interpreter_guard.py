"""The guard thread of an interpreter worker: stops a task past its timeout.

An asynchronous exception (``StopTask``) can only be raised in a thread of the
interpreter that raises it, so the guard lives inside each worker interpreter. It sleeps
in ``select`` on the control pipe until the running task's deadline (the runner writes
b"W" when a timed chunk starts) and then raises ``StopTask`` in the runner: a pure-Python
task stops at its next bytecode and gets ``TaskTimeout``. A task blocked in C cannot be
stopped; ``STOP_GRACE`` after its deadline the guard gives up on it: it sends the task's
``TaskTimeout`` and an ABANDONED frame (the pool requeues the rest of the chunk and
starts a replacement), and the interpreter is destroyed once the task returns. b"T"
(terminate) raises ``StopTask`` in whatever runs; b"Q" ends the guard, which must happen
before the interpreter can be destroyed (subinterpreters may not have daemon threads).

Imports the standard library, ``errors`` and sibling helpers only: it runs inside each
interpreter.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import TYPE_CHECKING

from ...errors import TaskTimeout
from . import frames as _frames
from .interpreter_protocol import QUIT, TERMINATE, send_frame
from .interrupt import StopTask, raise_in_thread
from .run import Flush, Outcomes

if TYPE_CHECKING:
    from .chunk import TimedChunk
    from .interrupt import TaskWatch

__all__ = ["STOP_GRACE", "Guard", "no_flush"]

#: Seconds a task has, after StopTask at its deadline, to stop before the guard gives up on
#: it (it is blocked in C). Process workers promise "stopped within timeout + 0.5 s"; this
#: keeps the TaskTimeout of a task stuck in C within that too.
STOP_GRACE = 0.25


def no_flush(outcomes: Outcomes) -> None:
    """The guard's flush while no timed chunk runs: it is never called then."""
    raise AssertionError("no timed chunk is running")


class Guard:
    """The guard thread of this interpreter and what it watches.

    The runner sets ``seq`` and ``flush`` (under ``watch.lock``) for each timed chunk: the
    guard reports that chunk's timeouts with them.
    """

    def __init__(self, watch: TaskWatch, result_fd: int, control_r: int) -> None:
        self.watch = watch
        self.result_fd = result_fd
        self.control_r = control_r
        #: The timed chunk running now, and how to send its outcomes.
        self.seq = 0
        self.flush: Flush = no_flush
        self.thread = threading.Thread(target=self._loop, name="poolwise-interpreter-guard")
        self.thread.start()

    def _loop(self) -> None:
        """Wait on the control pipe until the next deadline; act on commands and deadlines.

        Ends on b"Q", and as soon as the interpreter is given up on or terminated: there is
        nothing left to guard, and a guard thread still alive when the program ends would
        keep the runtime from finishing.
        """
        while True:
            wait = self._check(time.monotonic())
            if self.watch.abandoned:
                return
            if not select.select([self.control_r], [], [], wait)[0]:
                continue
            data = os.read(self.control_r, 64)
            if TERMINATE in data:
                self._terminate()
            if not data or QUIT in data:
                return

    def _check(self, now: float) -> float | None:
        """Stop the task past its deadline, give up on one stuck past the grace; seconds
        until something could next be due (None: nothing timed runs)."""
        watch = self.watch
        with watch.lock:
            chunk = watch.chunk
            if chunk is None or chunk.timeout is None or watch.abandoned:
                return None
            timeout = chunk.timeout
            if not watch.running:
                return timeout  # a task starting after this look is due no sooner
            deadline = watch.started + timeout
            if watch.fired:
                give_up_at = deadline + STOP_GRACE
                if now < give_up_at:
                    return give_up_at - now
                self._give_up(chunk, timeout, now)
                return None
            if now < deadline:
                return deadline - now
            watch.fired = True
            raise_in_thread(watch.ident, StopTask)
            send_frame(self.result_fd, _frames.TIMED_OUT, self.seq)
            return STOP_GRACE

    def _give_up(self, chunk: TimedChunk, timeout: float, now: float) -> None:
        """The timed-out task is stuck in C: deliver its TaskTimeout and leave this
        interpreter to it (called with ``watch.lock`` held, while the task runs)."""
        watch = self.watch
        watch.abandoned = True
        position = watch.position
        watch.flush_held(self.flush)  # the outcomes before it, in order
        error = TaskTimeout(timeout, chunk.index_of(position))
        self.flush(Outcomes(position, [None], {0: error}, now - watch.started))
        send_frame(self.result_fd, _frames.ABANDONED, self.seq, _frames.POSITION.pack(position + 1))

    def _terminate(self) -> None:
        """terminate(): stop what runs (StopTask at its next bytecode) and take no more."""
        watch = self.watch
        with watch.lock:
            if watch.abandoned:
                return
            watch.abandoned = watch.terminated = True
            if watch.in_chunk or watch.running:
                raise_in_thread(watch.ident, StopTask)
