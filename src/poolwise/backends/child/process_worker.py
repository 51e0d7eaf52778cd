"""The main loop of a worker process: receive chunks, run them, send outcomes back.

    parent ──FN/CHUNK/STOP frames──> receiver thread ──inbox──> main thread: run_tasks
    parent <────────RESULT frames (every FLUSH_SECONDS and at chunk end)────────┘
    parent ──REVOKE──> receiver thread ──REVOKED──> parent

The receiver thread keeps the task pipe drained, so the parent never blocks on a busy
worker, and ends the process when the parent dies (pipe closed, or parent pid gone).
It also answers REVOKE at once, even while a task runs: a chunk waiting in the inbox is
given back (``Claims``) for an idle worker to take, and never starts here.
Before each task the worker writes (chunk id, position, start time) into shared memory, so
the parent knows which task was running if this process dies.

Runs in the child: imports the standard library, ``transport``, ``errors`` and sibling
helpers only.
"""

from __future__ import annotations

# Imported here so that the forkserver, which preloads this module, has them ready for
# every worker: the worker's state arrives as a RawArray (sharedctypes), and
# multiprocessing runs the parent's main module with runpy in each child. Measured: 5 ms
# of each worker's start-up.
import logging
import multiprocessing.sharedctypes  # noqa: F401
import os
import queue
import runpy  # noqa: F401
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import NotPicklable
from ...transport import dumps, loads, pack_exception
from . import frames as _frames
from . import run as _run
from .log_forwarding import forward_logs
from .module_state import adopt
from .native_limits import limit_native_threads
from .results import call_unless_unsent, pack_result
from .run import Outcomes, run_tasks
from .segments import RESULTS_THROUGH_SHARED_MEMORY, ResultSegments, map_buffers

if TYPE_CHECKING:
    from collections.abc import Callable, MutableSequence
    from multiprocessing.connection import Connection

__all__ = ["main"]

#: Slots of the per-worker shared state array: the running chunk's id (-1: none), then the
#: running task's position and start time (written by ``run_tasks``).
STATE_CHUNK = 0
STATE_POSITION = 1 + _run.POSITION
STATE_STARTED = 1 + _run.STARTED
STATE_SIZE = 3


def _parent_alive(parent_pid: int) -> bool:
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else: a recycled pid, so gone
        return False
    return True


class Claims:
    """Which received chunks have not started: the main thread claims a chunk before it
    runs it, the receiver thread revokes one for the parent; whichever comes first wins."""

    __slots__ = ("_lock", "_revoked", "_waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[int] = set()
        self._revoked: set[int] = set()

    def received(self, chunk_id: int) -> None:
        with self._lock:
            self._waiting.add(chunk_id)

    def claim(self, chunk_id: int) -> bool:
        """True: run it now; False: it was given back."""
        with self._lock:
            self._waiting.discard(chunk_id)
            if chunk_id in self._revoked:
                self._revoked.discard(chunk_id)
                return False
            return True

    def revoke(self, chunk_id: int) -> bool:
        """True if the chunk had not started: it never will here."""
        with self._lock:
            if chunk_id not in self._waiting:
                return False
            self._waiting.discard(chunk_id)
            self._revoked.add(chunk_id)
            return True


def main(
    task_conn: Connection,
    result_conn: Connection,
    state: MutableSequence[float],
    parent_pid: int,
    initializer: bytes | None,
    log_level: int = logging.WARNING,
    native_environment: dict[str, str] | None = None,
    native_width: int | None = None,
) -> None:
    """Entry point of a worker process (the ``target`` of its ``Process``)."""
    limit_native_threads(native_environment or {}, native_width)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    task_fd, result_fd = task_conn.fileno(), result_conn.fileno()
    inbox: queue.SimpleQueue[tuple[int, int, bytes]] = queue.SimpleQueue()
    results = ResultSegments(parent_pid) if RESULTS_THROUGH_SHARED_MEMORY else None

    claims = Claims()
    writing = threading.Lock()  # frames from both threads must not interleave

    def send(kind: int, key: int, body: bytes = b"") -> None:
        with writing:
            _frames.write_frame(result_fd, kind, key, body)

    def receive() -> None:
        while True:
            frame = _frames.read_frame(task_fd, lambda: _parent_alive(parent_pid))
            if frame is None:  # the parent died or terminated us: stop at once
                if results is not None:
                    results.sweep()  # big results it never took
                os._exit(1)
            kind, key, _ = frame
            if kind == _frames.REVOKE:
                send(_frames.REVOKED, key, b"\x01" if claims.revoke(key) else b"\x00")
                continue
            if kind == _frames.CHUNK:
                claims.received(key)
            inbox.put(frame)
            if kind == _frames.STOP:
                return

    threading.Thread(target=receive, name="poolwise-receiver", daemon=True).start()
    forward_logs(lambda body: send(_frames.LOG, 0, body), log_level)

    if initializer is not None:
        try:
            init, initargs = loads(initializer)
            adopt(init)(*initargs)
        except BaseException as exc:
            send(_frames.INIT_FAILED, 0, dumps(pack_exception(exc)))
            return

    # A memoryview writes a double in ~30 ns, a ctypes array in ~100 ns: it counts per task.
    view = memoryview(state).cast("B").cast("d")  # type: ignore[arg-type]
    where = view[1:]
    functions: dict[int, Callable[..., Any] | NotPicklable] = {}
    while True:
        kind, key, body = inbox.get()
        if kind == _frames.CHUNK:
            if claims.claim(key):
                _run_chunk(key, body, functions, view, where, send, results)
        elif kind == _frames.FN:
            functions[key] = _load_function(body)
        elif kind == _frames.FORGET:
            functions.pop(key, None)
        elif kind == _frames.STOP:
            return


def _load_function(body: bytes) -> Callable[..., Any] | NotPicklable:
    """The function in an FN frame, or why it cannot be loaded here (each task of its
    chunks then gets that error; the worker lives on)."""
    try:
        return adopt(loads(body))  # type: ignore[no-any-return]
    except Exception as exc:
        return NotPicklable("fn", type(exc).__qualname__, f"loading it in the worker: {exc}")


def _run_chunk(
    chunk_id: int,
    body: bytes,
    functions: dict[int, Callable[..., Any] | NotPicklable],
    state: memoryview[float],
    where: memoryview[float],
    send: Callable[[int, int, bytes], None],
    results: ResultSegments | None,
) -> None:
    prefix = _frames.CHUNK_PREFIX.unpack_from(body)
    token, start, count, first_index, has_unsent, unary, timed, durable, apart = prefix
    fn = functions[token]
    shared = sys.modules.get("poolwise.shared")
    if shared is not None:  # some task received a Shared: unmap those the parent freed
        shared.forget_unlinked()

    def flush(outcomes: Outcomes) -> None:
        body = pack_result(outcomes, first_index, None if results is None else results.place)
        send(_frames.RESULT, chunk_id, body)

    if isinstance(fn, NotPicklable):
        error = fn
        flush(Outcomes.failed(start, count - start, lambda _index: error))
        return
    try:
        data = memoryview(body)[_frames.CHUNK_PREFIX.size :]
        buffers = map_buffers(data[:apart]) if apart else None
        tasks = loads(data[apart:], buffers)
    except Exception as exc:
        # An argument whose unpickling raises here: every task of the chunk gets that as
        # its outcome (which one is at fault cannot be told from one pickle).
        inputs = (
            "the inputs of this chunk"
            if first_index < 0
            else (f"inputs #{first_index + start} to #{first_index + count - 1}")
        )
        error = NotPicklable(inputs, type(exc).__qualname__, f"unpickling in the worker: {exc}")
        flush(Outcomes.failed(start, count - start, lambda _index: error))
        return
    if has_unsent:
        fn = call_unless_unsent(fn)

    begin_chunk(state, chunk_id, start)
    run_tasks(fn, tasks, flush, start=start, where=where, timed=timed, unary=unary, durable=durable)
    state[STATE_CHUNK] = -1


def begin_chunk(state: memoryview[float], chunk_id: int, start: int) -> None:
    """Publish that chunk ``chunk_id`` runs, from position ``start``, as of now.

    The position and start time go in first: published alone, the chunk id would pair with
    the previous chunk's last task (or a new worker's zeros), and the parent would time the
    new chunk from a start long past and kill it for a timeout it never ran into.
    """
    state[STATE_STARTED] = time.monotonic()
    state[STATE_POSITION] = start
    state[STATE_CHUNK] = chunk_id
