"""How a pickled chunk travels as one Dask task, and the record of its current attempt.

A ``DaskJob`` holds the shared ``Job`` (the chunk, pickled once) and what only Dask has:
the future of the attempt in flight and whether its outcomes were claimed. ``TaskSender``
turns a job into ``client.submit(run_chunk, Spec, fn, init, data, buffers)``; ``run_chunk``
travels by its module path (``poolwise.backends.child.dask_task``), so workers of a
cluster at ``address`` need poolwise installed.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import TYPE_CHECKING, Any

from ...transport import BIG_BUFFER, dumps_or_raise
from ..child.dask_messages import Spec
from ..child.dask_task import run_chunk

if TYPE_CHECKING:
    from ..base import Chunk, WorkerOptions
    from ..packing import FunctionCache, Job
    from .distributed_api import DaskClient, DaskFuture

__all__ = ["DaskJob", "TaskSender"]


class DaskJob:
    """A ``Job`` waiting here or in Dask's hands, with its current attempt's state."""

    __slots__ = ("claimed", "future", "job")

    def __init__(self, job: Job) -> None:
        self.job = job
        #: The Dask future of the current attempt, once submitted.
        self.future: DaskFuture | None = None
        #: Someone (the collector or terminate) took charge of the current attempt's
        #: outcomes; whoever sets it first delivers them, so each task gets exactly one.
        self.claimed = False

    @property
    def chunk(self) -> Chunk:
        """The job's chunk."""
        return self.job.chunk

    def claim(self) -> bool:
        """Take charge of the current attempt's outcomes (call with the backend's lock):
        True for the first caller only."""
        if self.claimed:
            return False
        self.claimed = True
        return True

    def retry_from(self, start: int) -> None:
        """Make ready a new attempt that runs the chunk from ``start`` (call with the lock)."""
        self.claimed = False
        self.future = None
        self.job.start = start


class TaskSender:
    """Submits jobs of one pool as Dask tasks; big functions are scattered once."""

    def __init__(self, *, options: WorkerOptions, functions: FunctionCache) -> None:
        """Pickle the pool's initializer now: ``NotPicklable`` before any work."""
        #: Names the pool to the workers, which remember its initializer and functions.
        self._pool_id = uuid.uuid4().hex
        self._init: bytes | None = None
        if options.initializer is not None:
            self._init = dumps_or_raise(
                (options.initializer, options.initargs), "initializer and initargs"
            )
        self._functions = functions
        self._lock = threading.Lock()
        #: Functions of a megabyte or more, scattered to the cluster once: token -> future.
        self._scattered: dict[int, DaskFuture] = {}

    def submit(self, client: DaskClient, job: Job) -> DaskFuture:
        """Submit ``job`` (from ``job.start``) as one Dask task."""
        chunk = job.chunk
        first = chunk.first_index
        spec = Spec(
            pool=self._pool_id,
            token=job.token,
            start=job.start,
            size=len(chunk),
            first_index=-1 if first is None else first,
            unary=chunk.unary,
            has_unsent=job.has_unsent,
            timeout=chunk.timeout,
        )
        # Dask warns about (and slowly ships) big task graphs: send big bytes beforehand,
        # a big function once (dropped when the pool's function cache forgets it).
        fn: Any = job.fn_bytes
        if len(fn) >= BIG_BUFFER:
            with self._lock:
                for token in self._functions.take_forgotten():
                    self._scattered.pop(token, None)
                fn = self._scattered.get(job.token)
            if fn is None:
                fn = client.scatter(job.fn_bytes, hash=False)
                with self._lock:
                    self._scattered[job.token] = fn
        data: Any = job.data
        buffers: Any = job.buffers
        if len(job.data) + sum(len(b) for b in job.buffers) >= BIG_BUFFER:
            data = client.scatter(job.data, hash=False)
            buffers = [client.scatter(b, hash=False) for b in job.buffers]
        name = re.sub(r"\W+", "_", getattr(chunk.fn, "__name__", "task")).strip("_")
        key = f"poolwise-{name or 'task'}-{uuid.uuid4().hex}"
        return client.submit(run_chunk, spec, fn, self._init, data, buffers, key=key)

    def forget(self) -> None:
        """Drop the scattered functions (the client is closing)."""
        with self._lock:
            self._scattered.clear()
