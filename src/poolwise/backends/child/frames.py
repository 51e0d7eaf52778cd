"""Framing of the messages on the pipes between the pool and its workers (processes, and
the result pipes of interpreter workers).

A frame is a fixed header (kind, key, body length) and a body. The parent writes and reads
its pipe ends without blocking (one selector thread serves every worker, so a stuck worker
can never stall the others); the worker reads and writes with blocking calls.

Imported by worker processes: standard library only.
"""

from __future__ import annotations

import os
import select
import struct
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ABANDONED",
    "CHUNK",
    "CHUNK_PREFIX",
    "FAILED",
    "FN",
    "FORGET",
    "GUARD",
    "HEADER",
    "INIT_FAILED",
    "POSITION",
    "RESULT",
    "RESULT_PREFIX",
    "REVOKE",
    "REVOKED",
    "STOP",
    "STOPPED",
    "TIMED_OUT",
    "FrameParser",
    "encode",
    "read_frame",
    "write_frame",
]

#: kind (u8), key (i64: chunk id or function token), body length (u64)
HEADER: Final = struct.Struct("!BqQ")

# parent -> worker
FN: Final = 1  # key = token, body = pickled function
FORGET: Final = 2  # key = token: drop that function
#: key = chunk id, body = CHUNK_PREFIX + segments of its big buffers + pickled tasks
CHUNK: Final = 3
STOP: Final = 4  # finish and exit
#: key = chunk id: give that chunk back if it has not started (an idle worker takes it).
REVOKE: Final = 5
# worker -> parent
#: key = chunk id, body = RESULT_PREFIX + segments of big results + pickled
#: (values, errors, (seconds, cpu_seconds))
RESULT: Final = 10
INIT_FAILED: Final = 11  # body = pickled ExceptionPayload
#: key = chunk id, body = b"\x01" if the worker gave it back unstarted, b"\x00" if too late.
REVOKED: Final = 12
#: body = a pickled LogRecord's __dict__, for the parent's handlers (``log_forwarding``).
LOG: Final = 13
# interpreter worker -> pool (mode="interpreters": one pipe per worker, written in-process)
#: key = chunk id: the rest of the chunk gets PoolClosed (terminate() stopped it).
STOPPED: Final = 20
#: key = chunk id, body = POSITION of the first task not run: a task stuck past its
#: timeout was given up on with this interpreter; requeue from there and replace it.
ABANDONED: Final = 21
#: key = chunk id, body = UTF-8 text: the worker's own code failed; the rest gets an error.
FAILED: Final = 22
#: key = chunk id: a task ran past its timeout and was sent StopTask (a count for stats).
TIMED_OUT: Final = 23
#: key = the native thread id of the interpreter's guard thread (sent once, at start).
GUARD: Final = 24

#: Body of an ABANDONED frame.
POSITION: Final = struct.Struct("!Q")

#: Prefix of a RESULT body: first position and number of outcomes, readable even when the
#: pickle after it cannot be loaded in the parent, and the length of the text naming the
#: segments of its big result buffers (0: none; ``segments.ResultSegments``).
RESULT_PREFIX: Final = struct.Struct("!QQI")

#: Prefix of a CHUNK body: function token, first task to run, number of tasks, input index
#: of task 0 (-1 for none), whether some tasks are ``transport.Unsent`` markers, whether
#: tasks are unary, whether they have a timeout (then the worker records each start time),
#: and the length of the text naming its big buffers' segments (0: none).
CHUNK_PREFIX: Final = struct.Struct("!qQQq????I")


def encode(kind: int, key: int, body: bytes = b"") -> list[bytes]:
    """The buffers of one frame, for writing in order."""
    return [HEADER.pack(kind, key, len(body)), body] if body else [HEADER.pack(kind, key, 0)]


def _read_exact(fd: int, size: int) -> bytes | None:
    """Read exactly ``size`` bytes from a blocking fd; None on end of file."""
    if size == 0:
        return b""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return None
        got += n
    return bytes(buffer)


def read_frame(
    fd: int, keep_waiting: Callable[[], bool] | None = None, poll: float = 0.5
) -> tuple[int, int, bytes] | None:
    """Block for the next frame; None on end of file or when ``keep_waiting()`` says stop.

    ``keep_waiting`` is checked every ``poll`` seconds while no frame is arriving; the worker
    uses it to notice that its parent died even when the pipe stays open.
    """
    if keep_waiting is not None:
        while not select.select([fd], [], [], poll)[0]:
            if not keep_waiting():
                return None
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    kind, key, length = HEADER.unpack(header)
    body = _read_exact(fd, length)
    if body is None:
        return None
    return kind, key, body


def write_frame(fd: int, kind: int, key: int, body: bytes = b"") -> None:
    """Write one whole frame to a blocking fd."""
    for buffer in encode(kind, key, body):
        view = memoryview(buffer)
        while view:
            written = os.write(fd, view)
            view = view[written:]


class FrameParser:
    """Collects bytes read without blocking and yields the complete frames."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Add ``data``; return the frames it completed, in order."""
        buffer = self._buffer
        buffer += data
        frames = []
        start = 0
        while len(buffer) - start >= HEADER.size:
            kind, key, length = HEADER.unpack_from(buffer, start)
            end = start + HEADER.size + length
            if len(buffer) < end:
                break
            frames.append((kind, key, bytes(buffer[start + HEADER.size : end])))
            start = end
        if start:
            del buffer[:start]
        return frames
