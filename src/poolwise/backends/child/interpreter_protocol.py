"""What crosses between the pool and an interpreter worker, besides the code it execs.

The pool hands each chunk over as a ``ChunkMessage`` (sent as a plain tuple, see there),
commands its guard thread with single bytes on the control pipe, and reads the outcomes
as frames (``frames``) that ``send_frame`` writes to the result pipe from inside the
interpreter.

Imports the standard library and ``frames`` only: it is loaded inside each interpreter.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from . import frames as _frames

__all__ = ["QUIT", "TERMINATE", "WAKE", "ChunkMessage", "send_frame"]

# Bytes on the control pipe: a timed chunk started (the guard learns its deadlines),
# terminate() (StopTask in whatever runs), and end the guard (before destroying).
WAKE, TERMINATE, QUIT = b"W", b"T", b"Q"


class ChunkMessage(NamedTuple):
    """One chunk for an interpreter worker to run, from ``start`` to ``total``.

    Only plain tuples of shareable values (ints, floats, bytes, str, None, tuples,
    memoryviews) may cross into an interpreter: a tuple subclass crashes CPython 3.13.0.
    So the pool sends ``tuple(message)`` and the worker reads it back with
    ``ChunkMessage._make``; neither side slices it by position.
    """

    #: The id the worker reports this chunk's frames by.
    seq: int
    #: First task to run (above 0 when the rest of a chunk is sent again) and how many
    #: tasks the chunk has.
    start: int
    total: int
    #: The function's token, and its pickled bytes or None when this interpreter has it.
    token: int
    fn_bytes: bytes | None
    #: Tokens the interpreter may forget (the pool's mirror of its cache dropped them).
    forget: tuple[int, ...]
    #: The pickled tasks and their big buffers, kept out of the pickle.
    data: bytes
    buffers: tuple[Any, ...]
    #: Whether some tasks are ``Unsent`` markers.
    has_unsent: bool
    unary: bool
    #: Seconds each task may run (0: no limit).
    timeout: float
    #: Input index of task 0 (-1: none).
    first_index: int


def send_frame(fd: int, kind: int, key: int, body: bytes = b"") -> None:
    """Write one frame with one system call where the pipe takes it, so an asynchronous
    StopTask (which lands between bytecodes, never inside a call) cannot cut it in two."""
    header = _frames.HEADER.pack(kind, key, len(body))
    total = len(header) + len(body)
    written = os.writev(fd, [header, body])
    if written < total:  # interrupted by a signal part-way: write the rest
        rest = memoryview(header + body)[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]
