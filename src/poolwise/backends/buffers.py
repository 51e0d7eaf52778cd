"""Big buffers of a chunk's tasks, placed in shared memory for the worker to map.

``transport.dumps_apart`` leaves a chunk's big buffers (NumPy arrays, large bytes) out of
its pickle; ``BufferStore.place`` copies each into a shared-memory segment and names the
segments in the chunk's frame (``child.segments.describe``). The worker maps them
copy-on-write (``child.segments.map_buffers``), so a task that writes into its argument
changes only its own copy, as with a pickled one.

A map that sends the same array to many tasks (``map(f, [array] * 16)``) copies it once:
segments are keyed by the run and the object, and live while a chunk in flight uses them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..shared import Segment, create_segment

if TYPE_CHECKING:
    import pickle

__all__ = ["BufferStore"]

#: (run, object, size): the same buffer sent by chunks of one map run.
_Key = tuple[int, int, int]


class BufferStore:
    """Segments of the chunks in flight, counted by the chunks that use them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: dict[_Key, tuple[Segment, int]] = {}

    def place(
        self, run: object, buffers: list[pickle.PickleBuffer]
    ) -> tuple[list[tuple[str, int]], list[_Key], int]:
        """Put ``buffers`` in segments (reusing those of the same run and object).

        Returns each buffer's (segment name, bytes), the keys to ``release`` when the
        chunk is done, and how many bytes were copied now.
        """
        placed: list[tuple[str, int]] = []
        keys: list[_Key] = []
        copied = 0
        with self._lock:  # one run's chunks are placed by one thread: no contention here
            for buffer in buffers:
                view = memoryview(buffer)
                key = (id(run), id(view.obj), view.nbytes)
                found = self._segments.get(key)
                if found is None:
                    segment = create_segment(view.nbytes, view)
                    copied += view.nbytes
                    self._segments[key] = (segment, 1)
                else:
                    segment = found[0]
                    self._segments[key] = (segment, found[1] + 1)
                placed.append((segment.name, view.nbytes))
                keys.append(key)
        return placed, keys, copied

    def release(self, keys: list[_Key]) -> None:
        """The chunk that used ``keys`` is done: free segments no other chunk uses."""
        freed = []
        with self._lock:
            for key in keys:
                found = self._segments.get(key)
                if found is None:
                    continue
                segment, users = found
                if users > 1:
                    self._segments[key] = (segment, users - 1)
                else:
                    del self._segments[key]
                    freed.append(segment)
        for segment in freed:
            segment.release()

    def release_all(self) -> None:
        """The pool is gone: free every segment."""
        with self._lock:
            segments = [segment for segment, _ in self._segments.values()]
            self._segments.clear()
        for segment in segments:
            segment.release()
