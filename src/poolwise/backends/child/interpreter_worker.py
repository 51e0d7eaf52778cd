"""The worker's side of mode="interpreters": this module runs inside each subinterpreter.

    pool thread (main interpreter)                   this subinterpreter
    ──────────────────────────────                   ───────────────────
    exec("start(...)") once  ──────────────────────> guard thread starts; initializer runs
    exec("run(chunk)") per chunk ──────────────────> runner (the pool thread itself, switched
                                                       into this interpreter): run_tasks
    reader thread <── GUARD, RESULT, TIMED_OUT, ABANDONED, STOPPED frames ── result pipe
    terminate(), close() ── b"T" (stop), b"Q" (quit) ──> control pipe ──> guard thread

The pool's thread enters this interpreter for each chunk (``exec`` runs on the calling
thread, under this interpreter's own GIL), so the runner is always that OS thread. The
outcomes go back through a pipe, in frames (``_frames``), every ``FLUSH_SECONDS``: a
reader thread in the main interpreter blocks on it, so outcomes arrive while the chunk
still runs, and nothing polls.

The guard thread lives here because an asynchronous exception (``StopTask``) can only be
raised in a thread of the interpreter that raises it. It sleeps in ``select`` on the
control pipe until the running task's deadline (the runner writes b"W" when a timed chunk
starts) and then raises ``StopTask`` in the runner: a pure-Python task stops at its next
bytecode and gets ``TaskTimeout``. A task blocked in C cannot be stopped; ``STOP_GRACE``
after its deadline the guard gives up on it: it sends the task's ``TaskTimeout`` and an
ABANDONED frame (the pool requeues the rest of the chunk and starts a replacement), and
this interpreter is destroyed once the task returns. b"T" (terminate) raises ``StopTask``
in whatever runs; b"Q" ends the guard, which must happen before the interpreter can be
destroyed (subinterpreters may not have daemon threads).

Imports the standard library, ``transport``, ``errors`` and sibling helpers only: NumPy
and other extension modules without subinterpreter support cannot load here.
"""

from __future__ import annotations

import os
import re
import select
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import NotPicklable, TaskTimeout
from ...transport import dumps, loads, pack_exception
from ..base import Chunk
from . import frames as _frames
from .interrupt import StopTask, TaskWatch, raise_in_thread, run_timed_tasks
from .results import FN_CACHE_SIZE, call_unless_unsent, pack_result
from .run import run_tasks

if TYPE_CHECKING:
    from collections.abc import Callable

    from .chunk import TimedChunk

__all__ = [
    "STOP_GRACE",
    "InitializerRaised",
    "WorkerAbandoned",
    "clarify",
    "run",
    "start",
]

#: Seconds a task has, after StopTask at its deadline, to stop before the guard gives up on
#: it (it is blocked in C). Process workers promise "stopped within timeout + 0.5 s"; this
#: keeps the TaskTimeout of a task stuck in C within that too.
STOP_GRACE = 0.25

# Bytes on the control pipe.
WAKE, TERMINATE, QUIT = b"W", b"T", b"Q"

#: CPython's ImportError for an extension module that does not support subinterpreters
#: (single-phase init, or multi-phase without Py_mod_multiple_interpreters).
_NOT_SUPPORTED = re.compile(r"module ([\w.]+) does not support loading in subinterpreters")


class WorkerAbandoned(Exception):
    """Raised out of ``run`` to tell the pool's thread this interpreter is done for."""


class InitializerRaised(Exception):
    """Raised out of ``start`` after the initializer failed (INIT_FAILED was sent)."""


def clarify(exc: BaseException) -> BaseException:
    """``exc``, or, if it comes from an extension module that cannot load in a
    subinterpreter, an ImportError that names it and says what to do."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError):
            match = _NOT_SUPPORTED.search(str(current))
            if match is not None:
                module = match.group(1)
                clear = ImportError(
                    f"{module} cannot be imported here: it is an extension module that does "
                    "not support subinterpreters, and mode='interpreters' runs each worker "
                    "in one (NumPy and many other compiled packages are in this case); run "
                    "this work with mode='processes'",
                    name=module,
                )
                clear.__cause__ = exc
                clear.__traceback__ = exc.__traceback__
                return clear
        current = current.__cause__ or current.__context__
    return exc


class _NoSink:
    """The interpreter's copy of a chunk delivers through ``flush``, never to a sink."""

    def begin(self, chunk: Chunk) -> bool:
        raise AssertionError("a chunk in an interpreter worker has no sink")

    def cancel(self, chunk: Chunk) -> None:
        raise AssertionError("a chunk in an interpreter worker has no sink")

    def deliver(
        self,
        chunk: Chunk,
        offset: int,
        values: list[Any],
        errors: dict[int, BaseException] | None,
        seconds: float,
        cpu_seconds: float,
    ) -> None:
        raise AssertionError("a chunk in an interpreter worker has no sink")


_NO_SINK = _NoSink()


def _send(fd: int, kind: int, key: int, body: bytes = b"") -> None:
    """Write one frame with one system call where the pipe takes it, so an asynchronous
    StopTask (which lands between bytecodes, never inside a call) cannot cut it in two."""
    header = _frames.HEADER.pack(kind, key, len(body))
    total = len(header) + len(body)
    written = os.writev(fd, [header, body])
    if written < total:  # interrupted by a signal part-way: write the rest
        rest = memoryview(header + body)[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


class _Interpreter:
    """This interpreter's worker state: its pipes, functions, runner watch and guard."""

    def __init__(self, result_fd: int, control_r: int, control_w: int) -> None:
        self.result_fd = result_fd
        self.control_r = control_r
        self.control_w = control_w
        self.functions: dict[int, Callable[..., Any] | BaseException] = {}
        #: The runner is the pool's thread, the same OS thread for every exec.
        self.watch = TaskWatch(threading.get_ident())
        # The timed chunk running now (read by the guard under watch.lock).
        self.seq = 0
        self.flush: Callable[[int, list[Any], dict[int, BaseException] | None, float, float], None]
        self.flush = _never
        self.guard = threading.Thread(target=self._guard, name="poolwise-interpreter-guard")
        self.guard.start()

    # -- runner ---------------------------------------------------------------------------

    def run(self, message: tuple[Any, ...]) -> None:
        try:
            self._run(message)
        except StopTask:  # terminate() landed outside a task's own outcome
            _send(self.result_fd, _frames.STOPPED, message[0])
        if self.watch.abandoned:
            raise WorkerAbandoned()

    def _run(self, message: tuple[Any, ...]) -> None:
        seq, start, count, token, fn_bytes, forget, data, buffers = message[:8]
        has_unsent, unary, timeout, first_index = message[8:]
        result_fd = self.result_fd

        def flush(
            offset: int,
            values: list[Any],
            errors: dict[int, BaseException] | None,
            seconds: float,
            cpu_seconds: float,
        ) -> None:
            if errors:
                errors = {position: clarify(exc) for position, exc in errors.items()}
            body = pack_result(offset, values, errors, (seconds, cpu_seconds), first_index)
            _send(result_fd, _frames.RESULT, seq, body)

        fn = self._function(token, fn_bytes, forget)
        shared = sys.modules.get("poolwise.shared")
        if shared is not None:  # some task received a Shared: unmap those the parent freed
            shared.forget_unlinked()
        try:
            tasks = loads(data, list(buffers))
        except Exception as exc:  # noqa: BLE001 - every task gets it as its outcome
            error = clarify(exc)
            if error is exc:
                inputs = (
                    "the inputs of this chunk"
                    if first_index < 0
                    else f"inputs #{first_index + start} to #{first_index + count - 1}"
                )
                error = NotPicklable(
                    inputs, type(exc).__qualname__, f"unpickling in the interpreter worker: {exc}"
                )
            fn = error
        if isinstance(fn, BaseException):  # every task of the chunk gets that error
            flush(start, [None] * (count - start), dict.fromkeys(range(count - start), fn), 0, 0)
            return
        if has_unsent:
            fn = call_unless_unsent(fn)
        chunk = Chunk(
            fn,
            tasks,
            None if first_index < 0 else first_index,
            _NO_SINK,
            unary=unary,
            timeout=timeout if timeout > 0 else None,
        )
        watch = self.watch
        with watch.lock:
            if watch.abandoned:  # terminate() came while this chunk was on its way
                raise StopTask()
            if chunk.timeout is None:
                watch.in_chunk = True
            else:
                watch.chunk = chunk
                self.seq, self.flush = seq, flush
        try:
            if chunk.timeout is None:
                run_tasks(fn, tasks, flush, start=start, unary=unary, passthrough=(StopTask,))
            else:
                os.write(self.control_w, WAKE)  # the guard learns the deadlines to watch
                run_timed_tasks(chunk, start, watch, flush)
        finally:
            with watch.lock:
                watch.in_chunk = False
                watch.chunk = None
                self.flush = _never
        if watch.terminated:
            raise StopTask()

    def _function(
        self, token: int, fn_bytes: bytes | None, forget: tuple[int, ...]
    ) -> Callable[..., Any] | BaseException:
        """The chunk's function (or why it could not be loaded here), cached by token.

        The pool mirrors this cache: it sends ``fn_bytes`` only for a token it has not sent
        this interpreter yet, and ``forget`` lists the tokens it dropped (least recently
        used beyond FN_CACHE_SIZE), so both sides hold the same tokens.
        """
        functions = self.functions
        for old in forget:
            functions.pop(old, None)
        if fn_bytes is not None:
            try:
                functions[token] = loads(fn_bytes)
            except Exception as exc:  # noqa: BLE001 - every task gets it as its outcome
                error = clarify(exc)
                if error is exc:
                    error = NotPicklable(
                        "fn", type(exc).__qualname__, f"unpickling in the interpreter worker: {exc}"
                    )
                functions[token] = error
        if len(functions) > FN_CACHE_SIZE:  # the pool's mirror keeps it below; never grows
            raise AssertionError(f"{len(functions)} functions cached, over {FN_CACHE_SIZE}")
        return functions[token]

    # -- guard ----------------------------------------------------------------------------

    def _guard(self) -> None:
        """Wait on the control pipe until the next deadline; act on commands and deadlines.

        Ends on b"Q", and as soon as the interpreter is given up on or terminated: there is
        nothing left to guard, and a guard thread still alive when the program ends would
        keep the runtime from finishing.
        """
        while True:
            wait = self._check(time.monotonic())
            if self.watch.abandoned:
                return
            if not select.select([self.control_r], [], [], wait)[0]:
                continue
            data = os.read(self.control_r, 64)
            if TERMINATE in data:
                self._terminate()
            if not data or QUIT in data:
                return

    def _check(self, now: float) -> float | None:
        """Stop the task past its deadline, give up on one stuck past the grace; seconds
        until something could next be due (None: nothing timed runs)."""
        watch = self.watch
        with watch.lock:
            chunk = watch.chunk
            if chunk is None or chunk.timeout is None or watch.abandoned:
                return None
            timeout = chunk.timeout
            if not watch.running:
                return timeout  # a task starting after this look is due no sooner
            deadline = watch.started + timeout
            if watch.fired:
                give_up_at = deadline + STOP_GRACE
                if now < give_up_at:
                    return give_up_at - now
                self._give_up(chunk, timeout, now)
                return None
            if now < deadline:
                return deadline - now
            watch.fired = True
            raise_in_thread(watch.ident, StopTask)
            _send(self.result_fd, _frames.TIMED_OUT, self.seq)
            return STOP_GRACE

    def _give_up(self, chunk: TimedChunk, timeout: float, now: float) -> None:
        """The timed-out task is stuck in C: deliver its TaskTimeout and leave this
        interpreter to it (called with ``watch.lock`` held, while the task runs)."""
        watch = self.watch
        watch.abandoned = True
        position = watch.position
        watch.flush_held(self.flush)  # the outcomes before it, in order
        error = TaskTimeout(timeout, chunk.index_of(position))
        self.flush(position, [None], {0: error}, now - watch.started, 0.0)
        _send(self.result_fd, _frames.ABANDONED, self.seq, _frames.POSITION.pack(position + 1))

    def _terminate(self) -> None:
        """terminate(): stop what runs (StopTask at its next bytecode) and take no more."""
        watch = self.watch
        with watch.lock:
            if watch.abandoned:
                return
            watch.abandoned = watch.terminated = True
            if watch.in_chunk or watch.running:
                raise_in_thread(watch.ident, StopTask)


def _never(
    offset: int,
    values: list[Any],
    errors: dict[int, BaseException] | None,
    seconds: float,
    cpu_seconds: float,
) -> None:
    raise AssertionError("no timed chunk is running")


_state: _Interpreter | None = None


def start(result_fd: int, control_r: int, control_w: int, initializer: bytes | None) -> None:
    """Set this interpreter up as a worker (the pool's first exec here)."""
    global _state
    _state = _Interpreter(result_fd, control_r, control_w)
    _send(result_fd, _frames.GUARD, _state.guard.native_id or 0)
    if initializer is None:
        return
    try:
        init, initargs = loads(initializer)
        init(*initargs)
    except BaseException as exc:  # noqa: BLE001 - InitializerFailed, whatever it raised
        payload = dumps(pack_exception(clarify(exc)))
        _send(result_fd, _frames.INIT_FAILED, 0, payload)
        raise InitializerRaised() from None


def run(message: tuple[Any, ...]) -> None:
    """Run one chunk (the pool's exec for each chunk); outcomes go out as RESULT frames.

    ``message`` is (chunk id, first task to run, number of tasks, function token, pickled
    function or None when this interpreter has it, tokens to forget, pickled tasks, their
    big buffers, whether some tasks are Unsent markers, unary, timeout (0: none), input
    index of task 0 (-1: none)).
    """
    assert _state is not None, "start() runs first"
    _state.run(message)
