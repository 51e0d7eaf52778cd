"""Big buffers of a chunk's tasks, placed in shared memory for the worker to map.

``transport.dumps_apart`` leaves a chunk's big buffers (NumPy arrays, large bytes) out of
its pickle; ``BufferStore.place`` copies each into a shared-memory segment and names the
segments in the chunk's frame (``child.segments.describe``). The worker maps them
copy-on-write (``child.segments.map_buffers``), so a task that writes into its argument
changes only its own copy, as with a pickled one.

A map that sends the same array to many tasks (``map(f, [array] * 100)``) copies it once:
segments are keyed by the run and the object, live while a chunk in flight uses them, and
then wait among the last ``KEPT_IDLE`` in case a later chunk of the run sends the object
again (chunks that run one after another would otherwise copy it once each: 10 copies
for 100 tasks, #15). A run's idle segments are freed when the run is.
"""

from __future__ import annotations

import collections
import threading
import weakref
from typing import TYPE_CHECKING

from ..shared import Segment, create_segment, untrack_unlinked

if TYPE_CHECKING:
    import pickle

__all__ = ["KEPT_IDLE", "BufferStore"]

#: (run, object, size): the same buffer sent by chunks of one map run.
_Key = tuple[int, int, int]

#: Segments no chunk uses any more, kept for a later chunk of the same run (a guess: a
#: map sends a few distinct big arguments at most; a stream of new arrays evicts them).
KEPT_IDLE = 4


class BufferStore:
    """Segments of the chunks in flight, counted by the chunks that use them, and the last
    few that no chunk uses (each holds its object, so that its id is not reused)."""

    def __init__(self) -> None:
        # reentrant: a run's finalizer (_run_ended) may run inside place() or release(),
        # when a collection frees the run while this thread holds the lock
        self._lock = threading.RLock()
        self._segments: dict[_Key, tuple[Segment, int, object]] = {}
        self._idle: collections.OrderedDict[_Key, tuple[Segment, object]] = (
            collections.OrderedDict()
        )
        self._runs: set[int] = set()

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
            self._watch(run)
            for buffer in buffers:
                view = memoryview(buffer)
                key = (id(run), id(view.obj), view.nbytes)
                found = self._segments.get(key)
                if found is not None:
                    segment = found[0]
                    self._segments[key] = (segment, found[1] + 1, view.obj)
                else:
                    idle = self._idle.pop(key, None)
                    if idle is not None:
                        segment = idle[0]
                    else:
                        segment = create_segment(view.nbytes, view)
                        copied += view.nbytes
                    self._segments[key] = (segment, 1, view.obj)
                placed.append((segment.name, view.nbytes))
                keys.append(key)
        return placed, keys, copied

    def release(self, keys: list[_Key]) -> None:
        """The chunk that used ``keys`` is done: keep its segments no other chunk uses
        among the idle ones (if its run can be watched), and free the oldest idle ones."""
        freed = []
        with self._lock:
            for key in keys:
                found = self._segments.get(key)
                if found is None:
                    continue
                segment, users, obj = found
                if users > 1:
                    self._segments[key] = (segment, users - 1, obj)
                    continue
                del self._segments[key]
                if key[0] in self._runs:
                    self._idle[key] = (segment, obj)
                else:
                    freed.append(segment)
            while len(self._idle) > KEPT_IDLE:
                freed.append(self._idle.popitem(last=False)[1][0])
        for segment in freed:
            segment.release()

    def release_all(self) -> None:
        """The pool is gone: free every segment."""
        with self._lock:
            segments = [entry[0] for entry in self._segments.values()]
            segments += [segment for segment, _ in self._idle.values()]
            self._segments.clear()
            self._idle.clear()
        for segment in segments:
            segment.release()
        untrack_unlinked()

    def _watch(self, run: object) -> None:
        """Free ``run``'s idle segments when it is freed (call with the lock held); a run
        that cannot be watched (no weak references) keeps none idle."""
        if id(run) in self._runs:
            return
        try:
            weakref.finalize(run, self._run_ended, id(run))
        except TypeError:
            return
        self._runs.add(id(run))

    def _run_ended(self, run_id: int) -> None:
        with self._lock:
            self._runs.discard(run_id)
            ended = [key for key in self._idle if key[0] == run_id]
            freed = [self._idle.pop(key)[0] for key in ended]
        for segment in freed:
            segment.release()
