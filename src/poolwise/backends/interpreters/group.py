"""The workers of one interpreter backend and the state their threads share.

``WorkerGroup`` holds the queue of jobs, the lock, the list of workers and the rule for
starting one (``start_worker``: under the limit, or to take over work a worker gave up).
Each worker's thread (``running``) and reader (``reading``) act on the group; the backend
(``backend``) fills the queue, and ``stopping`` ends the workers.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

from ..base import drain
from ..lifetime import Admission
from .reading import read_results
from .running import run_worker
from .worker import Worker

if TYPE_CHECKING:
    from ..base import WorkerOptions
    from ..packing import Job
    from .availability import Interpreters

__all__ = ["WorkerGroup"]


class WorkerGroup:
    """The workers of one backend: their queue, their count, and why they stopped."""

    def __init__(
        self, api: Interpreters, workers: int, options: WorkerOptions, initializer: bytes | None
    ) -> None:
        self.api = api
        #: How many workers may take work at once.
        self.limit = workers
        self.options = options
        #: The pickled (initializer, initargs), or None.
        self.initializer = initializer
        #: Jobs waiting for a worker (``job.start`` says where each resumes); None: stop.
        self.queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        #: Released by a worker each time it is ready for another job.
        self.idle = threading.Semaphore(0)
        self.workers: list[Worker] = []
        self.active = 0  # workers taking work (not abandoned, retired or failed)
        #: Closed by shutdown(), or broken: an initializer or an interpreter failed.
        self.admission = Admission()
        #: A worker's initializer raised; its INIT_FAILED frame is on its way.
        self.init_failing = False
        self.counters = {
            "interpreters_started": 0,
            "interpreters_retired": 0,
            "interpreters_abandoned": 0,
            "tasks_timed_out": 0,
        }

    def count(self, counter: str) -> None:
        """Add one to ``counter`` (one of ``counters``)."""
        with self.lock:
            self.counters[counter] += 1

    def start_worker(self, first: Job | None = None) -> None:
        """Start a worker if under the limit, or to run ``first`` (call with the lock held).

        ``first`` is work a worker gave up (retired, or abandoned mid-chunk): it gets a
        worker of its own even after shutdown() closed the pool, or goes back to the queue
        when none may start.
        """
        admission = self.admission
        refused = admission.broken is not None or self.init_failing
        if first is None and (refused or admission.closed or self.active >= self.limit):
            return
        if refused:
            assert first is not None
            self.queue.put(first)
            return
        worker = Worker(
            f"poolwise-interpreters-{len(self.workers)}",
            lambda w: run_worker(self, w, first),
            lambda w: read_results(self, w),
        )
        self.workers.append(worker)
        self.active += 1
        worker.reader.start()
        worker.thread.start()

    def break_pool(self, error: BaseException) -> None:
        """Fail everything queued and refuse more work; no worker is started again."""
        with self.lock:
            self.admission.break_with(error)
        for job in drain(self.queue):
            job.chunk.fail_rest(lambda _offset: error)
