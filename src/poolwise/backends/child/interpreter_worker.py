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

A guard thread in this interpreter stops a task past its ``timeout`` and answers
terminate() (``interpreter_guard``). What the pool sends (the chunk, control bytes) and
how frames are written back is in ``interpreter_protocol``.

Imports the standard library, ``transport``, ``errors`` and sibling helpers only: NumPy
and other extension modules without subinterpreter support cannot load here.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any

from ...errors import NotPicklable
from ...transport import dumps, loads, pack_exception
from . import frames as _frames
from .chunk import WorkerChunk
from .interpreter_guard import Guard, no_flush
from .interpreter_protocol import WAKE, ChunkMessage, send_frame
from .interrupt import StopTask, TaskWatch, run_timed_tasks
from .module_state import adopt
from .results import FN_CACHE_SIZE, call_unless_unsent, pack_result
from .run import Outcomes, run_tasks

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "InitializerRaised",
    "WorkerAbandoned",
    "clarify",
    "run",
    "start",
]

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


class _Interpreter:
    """This interpreter's worker state: its pipes, functions, runner watch and guard."""

    def __init__(self, result_fd: int, control_r: int, control_w: int) -> None:
        self.result_fd = result_fd
        self.control_w = control_w
        self.functions: dict[int, Callable[..., Any] | BaseException] = {}
        #: The runner is the pool's thread, the same OS thread for every exec.
        self.watch = TaskWatch(threading.get_ident())
        self.guard = Guard(self.watch, result_fd, control_r)

    # -- runner ---------------------------------------------------------------------------

    def run(self, message: ChunkMessage) -> None:
        try:
            self._run(message)
        except StopTask:  # terminate() landed outside a task's own outcome
            send_frame(self.result_fd, _frames.STOPPED, message.seq)
        if self.watch.abandoned:
            raise WorkerAbandoned()

    def _run(self, message: ChunkMessage) -> None:
        seq, start, count = message.seq, message.start, message.total
        first_index, unary, timeout = message.first_index, message.unary, message.timeout
        result_fd = self.result_fd

        def flush(outcomes: Outcomes) -> None:
            if outcomes.errors:
                outcomes.errors = {pos: clarify(exc) for pos, exc in outcomes.errors.items()}
            body = pack_result(outcomes, first_index)
            send_frame(result_fd, _frames.RESULT, seq, body)

        fn = self._function(message.token, message.fn_bytes, message.forget)
        shared = sys.modules.get("poolwise.shared")
        if shared is not None:  # some task received a Shared: unmap those the parent freed
            shared.forget_unlinked()
        try:
            tasks = loads(message.data, list(message.buffers))
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
            error = fn
            flush(Outcomes.failed(start, count - start, lambda _index: error))
            return
        if message.has_unsent:
            fn = call_unless_unsent(fn)
        chunk = WorkerChunk(
            fn,
            tasks,
            None if first_index < 0 else first_index,
            unary,
            timeout if timeout > 0 else None,
        )
        watch = self.watch
        with watch.lock:
            if watch.abandoned:  # terminate() came while this chunk was on its way
                raise StopTask()
            if chunk.timeout is None:
                watch.in_chunk = True
            else:
                watch.chunk = chunk
                self.guard.seq, self.guard.flush = seq, flush
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
                self.guard.flush = no_flush
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
                functions[token] = adopt(loads(fn_bytes))
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


_state: _Interpreter | None = None


def start(result_fd: int, control_r: int, control_w: int, initializer: bytes | None) -> None:
    """Set this interpreter up as a worker (the pool's first exec here)."""
    global _state
    _state = _Interpreter(result_fd, control_r, control_w)
    send_frame(result_fd, _frames.GUARD, _state.guard.thread.native_id or 0)
    if initializer is None:
        return
    try:
        init, initargs = loads(initializer)
        adopt(init)(*initargs)
    except BaseException as exc:  # noqa: BLE001 - InitializerFailed, whatever it raised
        payload = dumps(pack_exception(clarify(exc)))
        send_frame(result_fd, _frames.INIT_FAILED, 0, payload)
        raise InitializerRaised() from None


def run(message: tuple[Any, ...]) -> None:
    """Run one chunk (the pool's exec for each chunk); outcomes go out as RESULT frames.

    ``message`` is a ``ChunkMessage`` sent as a plain tuple (only those cross).
    """
    assert _state is not None, "start() runs first"
    _state.run(ChunkMessage._make(message))
