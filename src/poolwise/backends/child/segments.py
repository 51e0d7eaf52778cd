"""Naming the shared-memory segments that hold a chunk's big buffers, and mapping them.

The parent places a chunk's big buffers in segments (``buffers.BufferStore``) and writes
``describe(placed)`` into the chunk's CHUNK frame; the worker reads it back with ``parse``
and maps each segment copy-on-write (``map_buffers``), so a task that writes into its
argument changes only its own copy, as with a pickled one. Both halves of the format live
here, so they cannot drift apart.

Runs inside worker processes: imports the standard library only.
"""

from __future__ import annotations

import importlib
import mmap
import os

__all__ = ["describe", "map_buffers", "parse"]


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
