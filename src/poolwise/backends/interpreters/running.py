"""The worker thread: creates its interpreter, runs chunks in it, then destroys it.

The thread takes jobs from the group's queue and execs each in its interpreter (``exec``
runs on the calling thread, switched into the interpreter under its own GIL), so the
task runs on this very OS thread. What happens in there is ``child/interpreter_worker``;
the outcomes come back through the result pipe to the reader (``reading``). A worker
ends on a None in the queue, before going over ``max_tasks_per_worker`` (a new worker
takes the job), when its interpreter is abandoned or terminated, or when its own code
fails (a new worker takes its place).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from ...errors import BackendUnavailable, InitializerFailed, PoolwiseError
from ..child import frames as _frames
from ..child.interpreter_protocol import QUIT, ChunkMessage
from .availability import HOW, Failure

if TYPE_CHECKING:
    from ..packing import Job
    from .group import WorkerGroup
    from .worker import Worker

__all__ = ["run_worker"]

#: What a worker runs first in its new interpreter, and then once per chunk.
_BOOT = """\
import sys
import _interpreters  # receiving a memoryview (a task's big buffer) needs it loaded here
sys.path[:] = _poolwise_path
from poolwise.backends.child import interpreter_worker as _poolwise_worker
_poolwise_worker.start(*_poolwise_start)
"""
_RUN = "_poolwise_worker.run(_poolwise_chunk)"

#: Loads ctypes (the guard stops a task with it) before the worker module, one
#: interpreter at a time: two subinterpreters importing ctypes at once segfaulted
#: free-threaded CPython 3.13.5, and importing it only when a task is stopped hung the
#: program's exit after Ctrl-C there (both interpreters stopping their task at once).
_LOAD_CTYPES = "import ctypes"
_ctypes_loading = threading.Lock()


def run_worker(group: WorkerGroup, worker: Worker, job: Job | None) -> None:
    """The worker thread: set its interpreter up, then run jobs until told to stop."""
    try:
        if not _start_interpreter(group, worker):
            return
        while True:
            if job is None:
                job = group.queue.get()
                if job is None:
                    return
            if _retire_before(group, worker, job):
                return
            going_on = _run(group, worker, job)
            job = None  # drop fn, arguments and results while idle (issue16284)
            if not going_on:
                return
            group.idle.release()
    except BaseException as exc:
        # A bug here must not hang callers: everything queued gets the error, and the
        # chunk this worker held gets it in _close.
        error = PoolwiseError(f"an interpreter worker failed: {exc!r}")
        error.__cause__ = exc
        group.break_pool(error)
        raise
    finally:
        _close(group, worker)


def _start_interpreter(group: WorkerGroup, worker: Worker) -> bool:
    """Create the worker's interpreter and set it up; False if that failed."""
    api = group.api
    try:
        worker.interp = api.create()
    except Exception as exc:  # noqa: BLE001 - no interpreter: the pool cannot work
        group.break_pool(
            BackendUnavailable(
                "interpreters", f"a worker interpreter could not be created ({exc})", HOW
            )
        )
        return False
    group.count("interpreters_started")
    names: dict[str, object] = {
        "_poolwise_path": tuple(map(str, sys.path)),
        "_poolwise_start": (
            worker.result_w,
            worker.control_r,
            worker.control_w,
            group.initializer,
        ),
    }
    try:
        with _ctypes_loading:
            failure = api.exec(worker.interp, _LOAD_CTYPES, {})
        if failure is None:
            failure = api.exec(worker.interp, _BOOT, names)
    except Exception as exc:  # noqa: BLE001 - the pool cannot work: say why
        failure = Failure(type(exc).__name__, f"{type(exc).__name__}: {exc}")
    if failure is None:
        return True
    if failure.type_name == "InitializerRaised":
        # The reader turns the INIT_FAILED frame into InitializerFailed for all work.
        with group.lock:
            group.init_failing = True
        return False
    group.break_pool(
        BackendUnavailable(
            "interpreters",
            f"a worker interpreter failed to set up:\n{failure.text}",
            "check that poolwise and cloudpickle import in a subinterpreter",
        )
    )
    return False


def _retire_before(group: WorkerGroup, worker: Worker, job: Job) -> bool:
    """max_tasks_per_worker: hand ``job`` to a new worker if this one would go over."""
    limit = group.options.max_tasks_per_worker
    tasks = len(job.chunk) - job.start
    if limit is None or not worker.assigned or worker.assigned + tasks <= limit:
        return False
    with group.lock:
        group.counters["interpreters_retired"] += 1
        group.active -= 1
        group.start_worker(first=job)
    return True


def _run(group: WorkerGroup, worker: Worker, job: Job) -> bool:
    """Run one chunk in the worker's interpreter; False if the worker must stop."""
    chunk, start = job.chunk, job.start
    if start == 0 and not chunk.begin():
        return True
    seq = next(worker.seq)
    fn_bytes, forget = worker.function(job.token, job.fn_bytes)
    with worker.lock:
        worker.inflight[seq] = job
    worker.assigned += len(chunk) - start
    message = ChunkMessage(
        seq=seq,
        start=start,
        total=len(chunk),
        token=job.token,
        fn_bytes=fn_bytes,
        forget=forget,
        data=job.data,
        buffers=tuple(job.buffers),
        has_unsent=job.has_unsent,
        unary=chunk.unary,
        timeout=chunk.timeout or 0.0,
        first_index=-1 if chunk.first_index is None else chunk.first_index,
    )
    worker.busy = True
    try:
        failure = group.api.exec(worker.interp, _RUN, {"_poolwise_chunk": tuple(message)})
    except Exception as exc:  # noqa: BLE001 - the chunk could not be handed over
        failure = Failure(type(exc).__name__, f"{type(exc).__name__}: {exc}")
    finally:
        worker.busy = False
    if failure is None:
        return True
    if failure.type_name == "WorkerAbandoned":  # the reader handles why
        return False
    if failure.type_name == "StopTask":  # terminate() landed after the chunk's code
        worker.send_here(_frames.STOPPED, seq)
        return False
    # The worker's own code failed (a bug): the rest of the chunk gets the error, and a
    # fresh interpreter takes this one's place.
    worker.send_here(_frames.FAILED, seq, failure.text.encode())
    with group.lock:
        group.active -= 1
        group.start_worker()
    return False


def _close(group: WorkerGroup, worker: Worker) -> None:
    """End the worker's interpreter (its guard first) and close its pipes; then, once
    the reader has delivered all that came through, fail what never will."""
    if worker.interp is not None:
        worker.command(QUIT)
        try:
            group.api.destroy(worker.interp)
        except Exception as exc:  # noqa: BLE001 - not expected: say so, do not hide it
            print(f"poolwise: could not destroy a worker interpreter: {exc}", file=sys.stderr)
    worker.close_pipes()
    worker.reader.join()  # it reads to the end of the pipe, then stops
    with worker.lock:
        lost = list(worker.inflight.values())
        worker.inflight.clear()
    error = PoolwiseError("an interpreter worker stopped before this task's outcome")
    for job in lost:  # not expected (a bug): still, every task gets an outcome
        job.chunk.fail_rest(lambda _offset: error)
    if group.init_failing and group.admission.broken is None:
        # The INIT_FAILED frame broke the pool with the initializer's own error, unless
        # it never came through.
        name = getattr(group.options.initializer, "__qualname__", "initializer")
        group.break_pool(InitializerFailed(name, "an error that did not reach the pool"))
