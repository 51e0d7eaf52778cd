"""Naming the shared-memory segments that hold big buffers, both ways, and mapping them.

Arguments: the parent places a chunk's big buffers in segments (``buffers.BufferStore``)
and writes ``describe(placed)`` into the chunk's CHUNK frame; the worker reads it back
with ``parse`` and maps each segment copy-on-write (``map_buffers``), so a task that
writes into its argument changes only its own copy, as with a pickled one.

Results: a process worker puts a result's big buffers in segments of its own
(``ResultSegments.place``, named after the parent and itself) and names them in the
RESULT frame; the parent maps each one and unlinks its name at once (``take_results``),
so the memory lives exactly as long as the result object that uses it. A segment whose
frame never reached the parent (the worker died, the parent died) is unlinked by
whichever side outlives the other (``sweep_results``). Linux only: that sweep lists
/dev/shm; elsewhere results come through the pipe.

Both halves of each format live here, so they cannot drift apart.
Runs inside worker processes: imports the standard library only.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import mmap
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pickle
    from collections.abc import Sequence

__all__ = [
    "RESULTS_THROUGH_SHARED_MEMORY",
    "ResultSegments",
    "describe",
    "map_buffers",
    "parse",
    "sweep_results",
    "take_results",
]

#: Whether process workers return big result buffers through shared memory.
RESULTS_THROUGH_SHARED_MEMORY = sys.platform == "linux" and os.path.isdir("/dev/shm")


def describe(placed: list[tuple[str, int]]) -> bytes:
    """The segments of a chunk, each ``(name, bytes)``, as the worker reads them from the frame."""
    return "\n".join(f"{name} {size}" for name, size in placed).encode()


def parse(text: bytes | memoryview) -> list[tuple[str, int]]:
    """What ``describe`` wrote."""
    placed = []
    for line in bytes(text).decode().splitlines():
        name, size = line.rsplit(" ", 1)
        placed.append((name, int(size)))
    return placed


def map_buffers(text: bytes | memoryview) -> list[memoryview]:
    """The buffers ``describe`` named in ``text``, each mapped copy-on-write from its segment."""
    return [memoryview(_map_private(name, size))[:size] for name, size in parse(text)]


def _map_private(name: str, size: int) -> mmap.mmap:
    # Read-only open, private mapping: the task may write, the parent and others never see it.
    # Imported here: only a chunk with big buffers needs it, and the parent made the segments,
    # so POSIX shared memory exists on this machine.
    shm = importlib.import_module("_posixshmem")
    fd = shm.shm_open(name, os.O_RDONLY, mode=0o600)
    try:
        return mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE)
    finally:
        os.close(fd)


def _result_prefix(parent_pid: int, worker_pid: int) -> str:
    # Starts like every poolwise segment (shared.SEGMENT_PREFIX), so leak checks see it.
    return f"poolwise-{parent_pid}-r{worker_pid}-"


class ResultSegments:
    """A worker's segments for big result buffers, each named once (parent, worker, count)."""

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid
        self._prefix = "/" + _result_prefix(parent_pid, os.getpid())
        self._numbers = itertools.count()

    def place(self, buffers: Sequence[pickle.PickleBuffer]) -> bytes:
        """Copy each buffer into a new segment; their ``describe`` text for the frame.

        Raises ``OSError`` (nothing left behind) when /dev/shm cannot take them.
        """
        shm = importlib.import_module("_posixshmem")
        placed: list[tuple[str, int]] = []
        try:
            for buffer in buffers:
                view = memoryview(buffer).cast("B")
                name = f"{self._prefix}{next(self._numbers)}"
                fd = shm.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
                placed.append((name, view.nbytes))
                try:
                    # write(), not a mapping: no page fault per 4 KiB (measured 16 MiB in
                    # ~6 ms against ~21 ms), and a full /dev/shm is an OSError, not a SIGBUS.
                    _write_all(fd, view)
                finally:
                    os.close(fd)
        except OSError:
            for name, _ in placed:
                with contextlib.suppress(OSError):
                    shm.shm_unlink(name)
            raise
        return describe(placed)

    def sweep(self) -> None:
        """Unlink this worker's segments the parent never took (it died first)."""
        sweep_results(self.parent_pid, os.getpid())


def _write_all(fd: int, view: memoryview) -> None:
    if not view.nbytes:
        os.ftruncate(fd, 1)  # a mapping cannot be empty
    while view.nbytes:
        view = view[os.write(fd, view) :]


def take_results(text: bytes | memoryview) -> list[memoryview]:
    """Map the result segments named in ``text`` and unlink them: each buffer's memory is
    freed when the last object using it (a NumPy array, say) is gone."""
    shm = importlib.import_module("_posixshmem")
    placed = parse(text)
    views = []
    try:
        for name, size in placed:
            fd = shm.shm_open(name, os.O_RDWR, mode=0o600)
            try:
                views.append(memoryview(mmap.mmap(fd, max(1, size)))[:size])
            finally:
                os.close(fd)
    finally:  # mapped or not, no name outlives this call
        for name, _ in placed:
            with contextlib.suppress(OSError):
                shm.shm_unlink(name)
    return views


def sweep_results(parent_pid: int, worker_pid: int) -> None:
    """Unlink every result segment worker ``worker_pid`` made for ``parent_pid`` that is
    still there (called once one of them is gone, so none can be in use)."""
    if not RESULTS_THROUGH_SHARED_MEMORY:
        return
    prefix = _result_prefix(parent_pid, worker_pid)
    with contextlib.suppress(OSError):
        for name in os.listdir("/dev/shm"):
            if name.startswith(prefix):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join("/dev/shm", name))
