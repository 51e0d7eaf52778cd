"""One interpreter worker as the pool sees it: its interpreter, threads and pipes.

A worker is an isolated interpreter driven by one thread of this process (``running``),
plus a reader thread that blocks on its result pipe (``reading``). The control pipe
carries single bytes to the guard thread inside the interpreter
(``child/interpreter_guard``). ``Worker`` holds what those threads share: the chunks in
flight, the mirror of the interpreter's function cache, and the flags that say how the
worker ends.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import threading
from typing import TYPE_CHECKING, Any

from ..child import frames as _frames
from ..child.results import FN_CACHE_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..packing import Job

__all__ = ["Worker"]


class Worker:
    """One worker: its interpreter, its thread, the reader of its result pipe."""

    __slots__ = (
        "abandoned",
        "assigned",
        "busy",
        "closed",
        "control_r",
        "control_w",
        "guard_tid",
        "inflight",
        "interp",
        "lock",
        "reader",
        "result_r",
        "result_w",
        "seq",
        "terminated",
        "thread",
        "tokens",
    )

    def __init__(
        self, name: str, work: Callable[[Worker], None], read: Callable[[Worker], None]
    ) -> None:
        self.lock = threading.Lock()
        self.result_r, self.result_w = os.pipe()
        self.control_r, self.control_w = os.pipe()
        self.interp: Any = None
        #: Chunks sent to the interpreter whose outcomes are not all in, by chunk id.
        self.inflight: dict[int, Job] = {}
        self.seq = itertools.count(1)
        #: Function tokens the interpreter holds, least recently used first (a mirror).
        self.tokens: collections.OrderedDict[int, None] = collections.OrderedDict()
        #: Tasks given to it, for max_tasks_per_worker.
        self.assigned = 0
        #: Given up on (a task stuck past its timeout): a replacement took its place.
        self.abandoned = False
        #: Told to stop by terminate().
        self.terminated = False
        #: Its pipes are closed (its interpreter is gone).
        self.closed = False
        #: Running a chunk in its interpreter now.
        self.busy = False
        #: The native thread id of the guard thread in its interpreter (0: not known yet).
        self.guard_tid = 0
        self.thread = threading.Thread(target=work, args=(self,), name=name, daemon=True)
        self.reader = threading.Thread(
            target=read, args=(self,), name=f"{name}-results", daemon=True
        )

    def command(self, byte: bytes) -> None:
        """Send a byte to the interpreter's guard (nothing once the worker closed)."""
        with self.lock:
            if not self.closed:
                with contextlib.suppress(OSError):
                    os.write(self.control_w, byte)

    def function(self, token: int, fn_bytes: bytes) -> tuple[bytes | None, tuple[int, ...]]:
        """What to send for the function ``token``: its bytes unless the interpreter has it,
        and the tokens it must forget (least recently used, beyond FN_CACHE_SIZE)."""
        tokens = self.tokens
        if token in tokens:
            tokens.move_to_end(token)
            return None, ()
        tokens[token] = None
        forget = []
        while len(tokens) > FN_CACHE_SIZE:
            forget.append(tokens.popitem(last=False)[0])
        return fn_bytes, tuple(forget)

    def send_here(self, kind: int, key: int, body: bytes = b"") -> None:
        """Write a frame to the result pipe from this side, behind what the interpreter
        wrote (the worker thread does, once its exec has returned)."""
        _frames.write_frame(self.result_w, kind, key, body)

    def close_pipes(self) -> None:
        """Close all but the reader's end, which the reader closes after end of file."""
        with self.lock:
            self.closed = True
            for fd in (self.result_w, self.control_r, self.control_w):
                os.close(fd)
