"""Interpreters: each worker is a subinterpreter with its own GIL, driven by one thread.

    submit: pickle fn (once, cached by token) and tasks ──> SimpleQueue[(job, start)]
                                                              │
    worker thread (one per worker, started on demand) <───────┘
      creates an isolated interpreter; exec: sys.path, import child.interpreter_worker, init
      per chunk: begin(), then exec("run(chunk)") ─────────> runs inside the interpreter:
                                                             unpickle, run_tasks, flush
    reader thread (one per worker) <── result pipe ──────── RESULT frames every 10 ms
      chunk.deliver(...)                                     (and GUARD, TIMED_OUT,
                                                              ABANDONED, STOPPED,
                                                              INIT_FAILED)
    terminate() ── b"T" ──> control pipe ──> guard thread inside the interpreter

Subinterpreters share this process but not its objects: like process workers they get
the function and arguments pickled (cloudpickle: functions from ``__main__`` and lambdas
travel by value, which CPython's own InterpreterPoolExecutor cannot do, gh-136603) and
send results and exceptions back pickled. Each has its own GIL, so pure-Python CPU-bound
work runs in parallel. Measured on 2 cores (3.13.0): a bare interpreter starts in ~7 ms,
a worker answers its first task in ~60 ms (it imports cloudpickle and poolwise in its
interpreter) and adds ~9 MB to this process. The outcomes come back through an OS pipe,
which the reader blocks on (``_interpqueues`` has no blocking get in 3.13: it would poll).
The interpreter side is ``child/interpreter_worker.py``; see there how a task past its ``timeout``
is stopped (``StopTask`` from a guard thread in the interpreter) and when an interpreter
is given up on (a task blocked in C) and replaced.

What this mode cannot do:

- Extension modules that do not support subinterpreters (NumPy, pandas, psutil and most
  compiled packages today) fail to import in a worker; the task gets an ImportError that
  names the module and says to use ``mode="processes"``.
- A crash in a worker (a segfault, ``os._exit``) ends this whole process: there is no
  other process to survive it, so there is no ``WorkerCrashed`` here.
- A task blocked in C cannot be stopped: ``STOP_GRACE`` after its timeout it gets
  ``TaskTimeout``, its interpreter is abandoned (destroyed when the task returns) and a
  new one takes its place; ``terminate()`` leaves it running, as threads do.
- A thread that a task starts and never ends keeps its interpreter from being destroyed.

At the program's end, pools still open are terminated and their idle interpreters
destroyed; the guard of one still busy is stopped and waited for, since the runtime would
wait forever for a subinterpreter's thread killed half-way (``_at_exit``).

Needs CPython 3.13+ (``_interpreters``; ``concurrent.interpreters`` from 3.14):
``require_interpreters()`` says why elsewhere.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib
import itertools
import os
import queue
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ...errors import (
    BackendUnavailable,
    InitializerFailed,
    NotPicklable,
    PoolClosed,
    PoolwiseError,
)
from ...transport import dumps_or_raise, load_exception, loads
from ..base import Backend, Chunk, WorkerOptions, drain
from ..child import frames as _frames
from ..child.interpreter_protocol import QUIT, TERMINATE, ChunkMessage
from ..child.results import FN_CACHE_SIZE
from ..packing import FunctionCache, check_sendable, pickle_tasks

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._types import Task

__all__ = [
    "InterpreterBackend",
    "Interpreters",
    "primitives",
    "require_interpreters",
    "why_unavailable",
]

#: What a worker runs first in its new interpreter, and then once per chunk.
_BOOT = """\
import sys
import _interpreters  # receiving a memoryview (a task's big buffer) needs it loaded here
sys.path[:] = _poolwise_path
from poolwise.backends.child import interpreter_worker as _poolwise_worker
_poolwise_worker.start(*_poolwise_start)
"""
_RUN = "_poolwise_worker.run(_poolwise_chunk)"

#: Seconds the program's exit waits for workers to destroy their interpreters, and for a
#: busy worker to stop (StopTask stops Python code at once; a task blocked in C, never).
EXIT_WAIT = 1.0
EXIT_WAIT_BUSY = 0.1

_HOW = (
    "run on CPython 3.13 or newer (for example `uv run --python 3.13 ...`); meanwhile "
    "mode='processes' runs CPU-bound Python code in parallel"
)


class _Failure(NamedTuple):
    """An exception that escaped code run in an interpreter: its type's name and text."""

    type_name: str
    text: str


class Interpreters:
    """The interpreter primitives, from ``concurrent.interpreters`` (3.14+) or the private
    ``_interpreters`` (3.13). The only place that touches them; they have no type stubs."""

    def __init__(self, public: Any, private: Any) -> None:
        self._public = public
        self._private = private

    @classmethod
    def load(cls) -> Interpreters | str:
        """The primitives, or why this Python cannot run interpreter workers."""
        why = why_unavailable(sys.implementation.name, tuple(sys.version_info[:2]))
        if why is not None:
            return why
        try:
            return cls(importlib.import_module("concurrent.interpreters"), None)
        except ImportError:
            pass
        try:
            return cls(None, importlib.import_module("_interpreters"))
        except ImportError:
            return "this Python was built without the _interpreters module"

    def create(self) -> Any:
        """A new isolated interpreter (its own GIL, its own modules)."""
        if self._public is not None:
            return self._public.create()
        return self._private.create("isolated")

    def exec(self, interp: Any, code: str, names: dict[str, object]) -> _Failure | None:
        """Run ``code`` in ``interp``'s ``__main__`` on this thread, with ``names`` bound
        there first (ints, floats, bytes, str, None, tuples, memoryviews); None if it ran
        to the end, else the exception that escaped it."""
        if self._public is not None:
            interp.prepare_main(**names)
            try:
                interp.exec(code)
            except self._public.ExecutionFailed as exc:
                return _failure(exc.excinfo)
            return None
        excinfo = self._private.exec(interp, code, names)
        return None if excinfo is None else _failure(excinfo)

    def destroy(self, interp: Any) -> None:
        """End ``interp``: waits for its threads (the guard), frees its modules."""
        if self._public is not None:
            interp.close()
        else:
            self._private.destroy(interp)


def why_unavailable(implementation: str, version: tuple[int, ...]) -> str | None:
    """Why interpreter workers cannot run on this Python, or None if its version can."""
    name = f"{version[0]}.{version[1]}"
    if implementation != "cpython":
        return f"{implementation} {name} has no subinterpreters"
    if version < (3, 12):
        return (
            f"Python {name} has no per-interpreter GIL (CPython 3.12 added it, 3.13 the "
            "_interpreters module that poolwise runs them with)"
        )
    if version < (3, 13):
        return (
            "Python 3.12 offers subinterpreters with their own GIL only through a private "
            "test module (_xxsubinterpreters) in which ctypes cannot load, so a running task "
            "could never be stopped (timeout=, terminate(), Ctrl-C)"
        )
    return None


def _failure(excinfo: Any) -> _Failure:
    """The exception CPython describes (its traceback where it gives one)."""
    name = getattr(excinfo.type, "__name__", None) or "Exception"
    text = (
        getattr(excinfo, "errdisplay", None)
        or getattr(excinfo, "formatted", None)
        or f"{name}: {excinfo.msg}"
    )
    return _Failure(str(name), str(text))


_loaded: Interpreters | str | None = None


def primitives() -> Interpreters | str:
    """The interpreter primitives of this Python (loaded once), or why it has none."""
    global _loaded
    if _loaded is None:
        _loaded = Interpreters.load()
    return _loaded


def require_interpreters() -> None:
    """Raise ``BackendUnavailable`` unless this Python can run interpreter workers."""
    loaded = primitives()
    if isinstance(loaded, str):
        raise BackendUnavailable("interpreters", loaded, _HOW)


class _Job:
    """A chunk, pickled once for whichever worker takes it (and again after a timeout)."""

    __slots__ = ("buffers", "chunk", "data", "fn_bytes", "has_unsent", "token")

    def __init__(
        self,
        chunk: Chunk,
        token: int,
        fn_bytes: bytes,
        data: bytes,
        buffers: tuple[memoryview, ...],
        has_unsent: bool,
    ) -> None:
        self.chunk = chunk
        self.token = token
        self.fn_bytes = fn_bytes
        self.data = data
        #: Big buffers kept out of the pickle; the interpreter reads them in place.
        self.buffers = buffers
        self.has_unsent = has_unsent


_Item = tuple[_Job, int]  # a job and the position to start at


class _Worker:
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
        self, name: str, work: Callable[[_Worker], None], read: Callable[[_Worker], None]
    ) -> None:
        self.lock = threading.Lock()
        self.result_r, self.result_w = os.pipe()
        self.control_r, self.control_w = os.pipe()
        self.interp: Any = None
        #: Chunks sent to the interpreter whose outcomes are not all in, by chunk id.
        self.inflight: dict[int, _Job] = {}
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


_LIVE: weakref.WeakSet[InterpreterBackend] = weakref.WeakSet()


class InterpreterBackend(Backend):
    """Runs chunks in subinterpreters of this process, one per worker thread."""

    mode: ClassVar[str] = "interpreters"
    unpickles_shared: ClassVar[bool] = True
    #: Measured on 2 cores (3.13.0): submit(int) answers in ~120 us against ~35 us on
    #: threads and ~210 us on processes (pickle, an exec into the interpreter, ~20 us of
    #: it, unpickle there, a frame back through the pipe, unpickle here).
    chunk_overhead: ClassVar[float] = 1.2e-4

    def __init__(self, workers: int, options: WorkerOptions) -> None:
        super().__init__(workers, options)
        loaded = primitives()
        if isinstance(loaded, str):
            raise BackendUnavailable("interpreters", loaded, _HOW)
        self._api = loaded
        self._initializer: bytes | None = None
        if options.initializer is not None:
            self._initializer = dumps_or_raise(
                (options.initializer, options.initargs), "initializer and initargs"
            )
        self._functions = FunctionCache()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Semaphore(0)
        self._workers: list[_Worker] = []
        self._active = 0  # workers taking work (not abandoned, retired or failed)
        self._closed = False
        #: Why the pool takes no more work (an initializer or an interpreter failed).
        self._broken: BaseException | None = None
        #: A worker's initializer raised; its INIT_FAILED frame is on its way.
        self._init_failing = False
        self._counters = {
            "interpreters_started": 0,
            "interpreters_retired": 0,
            "interpreters_abandoned": 0,
            "tasks_timed_out": 0,
        }
        _LIVE.add(self)

    # -- caller side -------------------------------------------------------------------

    def check_transport(self, fn: Callable[..., Any], first: Task | None) -> None:
        check_sendable(self._functions, fn, first)

    def submit(self, chunk: Chunk) -> None:
        self._raise_if_unusable()
        token, fn_bytes = self._functions.token_for(chunk.fn)
        self._functions.take_forgotten()  # each worker bounds its own cache
        data, has_unsent, buffers = pickle_tasks(chunk)
        job = _Job(chunk, token, fn_bytes, data, tuple(b.raw() for b in buffers), has_unsent)
        with self._lock:
            self._raise_if_unusable()
            self._queue.put((job, 0))
            # An idle worker will take it; otherwise start one while under the limit.
            if not self._idle.acquire(blocking=False):
                self._start_worker()

    def _raise_if_unusable(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise PoolClosed()

    def _start_worker(self, first: _Item | None = None) -> None:
        """Start a worker if under the limit, or to run ``first`` (call with the lock held).

        ``first`` is work a worker gave up (retired, or abandoned mid-chunk): it gets a
        worker of its own even after shutdown() closed the pool, or goes back to the queue
        when none may start.
        """
        refused = self._broken is not None or self._init_failing
        if first is None and (refused or self._closed or self._active >= self.workers):
            return
        if refused:
            assert first is not None
            self._queue.put(first)
            return
        worker = _Worker(
            f"poolwise-interpreters-{len(self._workers)}",
            lambda w: self._work(w, first),
            self._read,
        )
        self._workers.append(worker)
        self._active += 1
        worker.reader.start()
        worker.thread.start()

    # -- worker thread -------------------------------------------------------------------

    def _work(self, worker: _Worker, item: _Item | None) -> None:
        try:
            if not self._start_interpreter(worker):
                return
            while True:
                if item is None:
                    item = self._queue.get()
                    if item is None:
                        return
                if self._retire_before(worker, item):
                    return
                going_on = self._run(worker, *item)
                item = None  # drop fn, arguments and results while idle (issue16284)
                if not going_on:
                    return
                self._idle.release()
        except BaseException as exc:
            # A bug here must not hang callers: everything queued gets the error, and the
            # chunk this worker held gets it in _close.
            error = PoolwiseError(f"an interpreter worker failed: {exc!r}")
            error.__cause__ = exc
            self._break(error)
            raise
        finally:
            self._close(worker)

    def _start_interpreter(self, worker: _Worker) -> bool:
        """Create the worker's interpreter and set it up; False if that failed."""
        api = self._api
        try:
            worker.interp = api.create()
        except Exception as exc:  # noqa: BLE001 - no interpreter: the pool cannot work
            self._break(
                BackendUnavailable(
                    "interpreters", f"a worker interpreter could not be created ({exc})", _HOW
                )
            )
            return False
        with self._lock:
            self._counters["interpreters_started"] += 1
        names: dict[str, object] = {
            "_poolwise_path": tuple(map(str, sys.path)),
            "_poolwise_start": (
                worker.result_w,
                worker.control_r,
                worker.control_w,
                self._initializer,
            ),
        }
        try:
            failure = api.exec(worker.interp, _BOOT, names)
        except Exception as exc:  # noqa: BLE001 - the pool cannot work: say why
            failure = _Failure(type(exc).__name__, f"{type(exc).__name__}: {exc}")
        if failure is None:
            return True
        if failure.type_name == "InitializerRaised":
            # The reader turns the INIT_FAILED frame into InitializerFailed for all work.
            with self._lock:
                self._init_failing = True
            return False
        self._break(
            BackendUnavailable(
                "interpreters",
                f"a worker interpreter failed to set up:\n{failure.text}",
                "check that poolwise and cloudpickle import in a subinterpreter",
            )
        )
        return False

    def _retire_before(self, worker: _Worker, item: _Item) -> bool:
        """max_tasks_per_worker: hand ``item`` to a new worker if this one would go over."""
        limit = self.options.max_tasks_per_worker
        job, start = item
        tasks = len(job.chunk) - start
        if limit is None or not worker.assigned or worker.assigned + tasks <= limit:
            return False
        with self._lock:
            self._counters["interpreters_retired"] += 1
            self._active -= 1
            self._start_worker(first=item)
        return True

    def _run(self, worker: _Worker, job: _Job, start: int) -> bool:
        """Run one chunk in the worker's interpreter; False if the worker must stop."""
        chunk = job.chunk
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
            buffers=job.buffers,
            has_unsent=job.has_unsent,
            unary=chunk.unary,
            timeout=chunk.timeout or 0.0,
            first_index=-1 if chunk.first_index is None else chunk.first_index,
        )
        worker.busy = True
        try:
            failure = self._api.exec(worker.interp, _RUN, {"_poolwise_chunk": tuple(message)})
        except Exception as exc:  # noqa: BLE001 - the chunk could not be handed over
            failure = _Failure(type(exc).__name__, f"{type(exc).__name__}: {exc}")
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
        with self._lock:
            self._active -= 1
            self._start_worker()
        return False

    def _close(self, worker: _Worker) -> None:
        """End the worker's interpreter (its guard first) and close its pipes; then, once
        the reader has delivered all that came through, fail what never will."""
        if worker.interp is not None:
            worker.command(QUIT)
            try:
                self._api.destroy(worker.interp)
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
        if self._init_failing and self._broken is None:
            # The INIT_FAILED frame broke the pool with the initializer's own error, unless
            # it never came through.
            name = getattr(self.options.initializer, "__qualname__", "initializer")
            self._break(InitializerFailed(name, "an error that did not reach the pool"))

    # -- reader thread -------------------------------------------------------------------

    def _read(self, worker: _Worker) -> None:
        """Deliver what the worker's interpreter sends, until its pipe closes."""
        try:
            while True:
                frame = _frames.read_frame(worker.result_r)
                if frame is None:
                    return
                try:
                    self._on_frame(worker, *frame)
                except BaseException as exc:  # noqa: BLE001 - see below
                    # A bug here must not hang callers: every task still waiting gets it;
                    # the pipe is still drained so the interpreter never blocks on it.
                    error = PoolwiseError(f"the interpreter pool's reader failed: {exc!r}")
                    error.__cause__ = exc
                    self._break(error)
        finally:
            os.close(worker.result_r)

    def _on_frame(self, worker: _Worker, kind: int, key: int, body: bytes) -> None:
        if kind == _frames.RESULT:
            with worker.lock:
                job = worker.inflight.get(key)
            if job is None:
                return  # its chunk was finished otherwise (terminate)
            chunk = job.chunk
            offset, count = _frames.RESULT_PREFIX.unpack_from(body)
            try:
                payload = memoryview(body)[_frames.RESULT_PREFIX.size :]
                values, packed, (seconds, cpu) = loads(payload)
                errors = {pos: load_exception(p) for pos, p in packed.items()} or None
            except Exception as exc:  # noqa: BLE001 - a result that loads there, not here
                where = f"results of {count} task(s) from #{chunk.index_of(offset)}"
                failed = NotPicklable(where, type(exc).__qualname__, f"unpickling here: {exc}")
                values, errors = [None] * count, dict.fromkeys(range(count), failed)
                seconds = cpu = 0.0
            chunk.deliver(offset, values, errors, seconds, cpu)
            if chunk.delivered >= len(chunk):
                with worker.lock:
                    worker.inflight.pop(key, None)
        elif kind == _frames.GUARD:
            worker.guard_tid = key
        elif kind == _frames.TIMED_OUT:
            with self._lock:
                self._counters["tasks_timed_out"] += 1
        elif kind in (_frames.STOPPED, _frames.FAILED):
            with worker.lock:
                job = worker.inflight.pop(key, None)
            if job is not None:
                if kind == _frames.STOPPED:
                    job.chunk.fail_rest(lambda _offset: PoolClosed())
                else:
                    text = body.decode(errors="replace")
                    bug = PoolwiseError(f"an interpreter worker failed:\n{text}")
                    job.chunk.fail_rest(lambda _offset: bug)
        elif kind == _frames.ABANDONED:
            (position,) = _frames.POSITION.unpack(body)
            with worker.lock:
                job = worker.inflight.pop(key, None)
            self._on_abandoned(worker, job, position)
        elif kind == _frames.INIT_FAILED:
            payload = loads(body)
            cause = load_exception(payload)
            name = getattr(self.options.initializer, "__qualname__", "initializer")
            error = InitializerFailed(name, f"{payload[1]}: {payload[2]}")
            error.__cause__ = cause
            self._break(error)

    def _on_abandoned(self, worker: _Worker, job: _Job | None, position: int) -> None:
        """A task stuck in C past its timeout got TaskTimeout; its interpreter is left to
        it. The rest of its chunk goes to a new worker, which keeps the capacity."""
        rest: _Item | None = None
        if job is not None and position < len(job.chunk):
            rest = (job, position)
        with self._lock:
            worker.abandoned = True
            self._counters["interpreters_abandoned"] += 1
            self._active -= 1
            self._start_worker(first=rest)

    def _break(self, error: BaseException) -> None:
        """Fail everything queued and refuse more work; no worker is started again."""
        with self._lock:
            if self._broken is None:
                self._broken = error
            self._closed = True
        for job, _start in drain(self._queue):
            job.chunk.fail_rest(lambda _offset: error)

    # -- lifetime ------------------------------------------------------------------------

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        if cancel_pending:
            for job, start in drain(self._queue):
                if start == 0:
                    job.chunk.cancel()
                else:  # the rest of a chunk whose task timed out: it had begun
                    job.chunk.fail_rest(lambda _offset: PoolClosed())
        for _ in workers:
            self._queue.put(None)
        if wait:
            self._join(workers)

    def _join(self, workers: list[_Worker]) -> None:
        """Wait for workers to end, except those given up on or stopped by terminate()
        (they may be stuck in C)."""
        for worker in workers:
            if worker.abandoned or worker.terminated:
                continue
            for thread in (worker.thread, worker.reader):
                if thread is not threading.current_thread():
                    thread.join()

    def terminate(self) -> None:
        """Cancel what waits; stop running tasks with StopTask (at their next bytecode).

        Returns at once: a task blocked in C keeps its interpreter until it returns.
        """
        self.shutdown(wait=False, cancel_pending=True)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            if not worker.abandoned:
                worker.terminated = True
                worker.command(TERMINATE)

    def _at_exit(self) -> None:
        """At the end of the program: stop everything and let the workers destroy their
        interpreters (a little while: not one stuck in C).

        A worker still running then is stuck in C; its guard thread ended on terminate()
        (or when the worker was given up on). The runtime, as it ends, destroys each
        interpreter left and waits for that interpreter's threads: a guard not yet gone
        would be killed half-way and waited for forever. So this waits until they are gone.
        """
        self.terminate()
        with self._lock:
            workers = list(self._workers)
        start = time.monotonic()
        for worker in workers:
            while worker.thread.is_alive():
                waited = time.monotonic() - start
                if waited >= EXIT_WAIT or (worker.busy and waited >= EXIT_WAIT_BUSY):
                    break
                worker.thread.join(0.01)
        for worker in workers:
            if worker.thread.is_alive():
                worker.command(QUIT)
                _wait_until_gone(worker.guard_tid, start + EXIT_WAIT)

    def stats(self) -> dict[str, int]:
        with self._lock:
            counters = dict(self._counters)
            abandoned = [w for w in self._workers if w.abandoned]
        counters["interpreters_still_running"] = sum(1 for w in abandoned if w.thread.is_alive())
        return counters


def _wait_until_gone(native_id: int, deadline: float) -> None:
    """Wait (until ``deadline``) for the OS thread ``native_id`` of this process to end.

    Where /proc does not show threads (macOS), wait a moment: a guard ends within
    microseconds of its last command.
    """
    if not native_id:
        return
    if not os.path.isdir("/proc/self/task"):
        time.sleep(0.05)
        return
    while os.path.exists(f"/proc/self/task/{native_id}") and time.monotonic() < deadline:
        time.sleep(0.001)


@atexit.register
def _stop_all() -> None:
    for backend in list(_LIVE):
        backend._at_exit()
