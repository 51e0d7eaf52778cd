"""What runs inside a Dask worker: one poolwise chunk per Dask task (``run_chunk``).

    parent (dask/sending.py) ──client.submit(run_chunk, Spec, fn bytes, task bytes)──> Dask
    Dask worker thread: run_chunk
        initializer, once per worker process and pool (remembered, failure included)
        function, unpickled once per worker process (cached by the pool's token)
        untimed chunk: run_tasks right here, in Dask's thread
        timed chunk:   TimedRun (dask_timed.py) in a thread of our own, watched by this
                       process's watchdog; at a deadline the Dask task returns at once,
                       saying where to resume
    <──── bytes: every outcome of the tasks it ran, pickled here (dask_results.py) as one
          Outcome (dask_messages.py)

Dask workers import ``run_chunk`` by this module's path: moving it changes what travels.

Runs in Dask workers: imports the standard library, ``transport``, ``errors`` and sibling
helpers only (never ``distributed``: the worker has it, the parent may not have loaded it).
"""

from __future__ import annotations

import collections
import sys
import threading
from typing import TYPE_CHECKING, Any

from ...errors import NotPicklable
from ...transport import ExceptionPayload, dumps, loads, pack_exception
from .chunk import WorkerChunk
from .dask_messages import Outcome, Spec
from .dask_results import GatheredOutcomes
from .dask_timed import TimedRun
from .module_state import adopt
from .results import call_unless_unsent
from .run import Outcomes, run_tasks

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["run_chunk"]

#: Functions a worker process keeps unpickled (least recently used dropped first).
FUNCTIONS_KEPT = 64
#: Pools whose initializer outcome a worker process remembers (a long-lived worker serves
#: many pools; each remembers a few bytes).
POOLS_REMEMBERED = 1024


# -- per worker process state ----------------------------------------------------------------

_lock = threading.Lock()
_functions: collections.OrderedDict[tuple[str, int], Callable[..., Any]] = collections.OrderedDict()
#: Pool id -> None (its initializer ran) or the packed exception it raised.
_initialized: collections.OrderedDict[str, ExceptionPayload | None] = collections.OrderedDict()
_init_lock = threading.Lock()


def run_chunk(
    spec: Spec, fn_bytes: bytes, init: bytes | None, data: bytes, buffers: list[bytearray]
) -> bytes:
    """The body of one Dask task: run a chunk's tasks, return all their outcomes pickled."""
    if init is not None:
        failed = _initialize(spec.pool, init)
        if failed is not None:
            return dumps(Outcome(spec.start, [], {}, 0.0, 0.0, None, 0, failed))
    shared = sys.modules.get("poolwise.shared")
    if shared is not None:  # some task received a Shared: unmap those the parent freed
        shared.forget_unlinked()
    results = GatheredOutcomes(spec.start)
    try:
        fn = _function(spec.pool, spec.token, fn_bytes)
    except Exception as exc:  # noqa: BLE001 - the chunk's outcome, whatever it is
        # e.g. a module the worker cannot import: every task of the chunk gets that
        return _unloadable(spec, results, "fn", exc)
    try:
        tasks: Sequence[Any] = loads(data, [memoryview(b) for b in buffers] or None)
    except Exception as exc:  # noqa: BLE001 - the chunk's outcome, whatever it is
        # An argument whose unpickling raises here: every task of the chunk gets that as
        # its outcome (which one is at fault cannot be told from one pickle).
        where = "the inputs"
        if spec.first_index >= 0:
            first, last = spec.first_index + spec.start, spec.first_index + spec.size - 1
            where = f"inputs #{first} to #{last}"
        return _unloadable(spec, results, where, exc)
    if spec.has_unsent:
        fn = call_unless_unsent(fn)
    if spec.timeout is None:
        run_tasks(fn, tasks, results.flush, start=spec.start, unary=spec.unary)
        return results.packed(spec.first_index, None, 0)
    index = None if spec.first_index < 0 else spec.first_index
    chunk = WorkerChunk(fn, tasks, index, spec.unary, spec.timeout)
    run = TimedRun(chunk, spec.start, results)
    run.run()
    return results.packed(spec.first_index, run.resume_at, run.timed_out)


def _unloadable(spec: Spec, results: GatheredOutcomes, where: str, exc: Exception) -> bytes:
    """Every task of the chunk gets ``NotPicklable``: ``where`` would not unpickle here."""
    error = NotPicklable(where, type(exc).__qualname__, f"unpickling in the Dask worker: {exc}")
    count = spec.size - spec.start
    results.flush(Outcomes.failed(spec.start, count, lambda _index: error))
    return results.packed(spec.first_index, None, 0)


def _initialize(pool: str, init: bytes) -> ExceptionPayload | None:
    """Run the pool's initializer once in this process; its failure is remembered."""
    with _init_lock:  # other chunks of this pool wait here: the initializer runs first
        if pool in _initialized:
            return _initialized[pool]
        outcome: ExceptionPayload | None = None
        try:
            initializer, initargs = loads(init)
            adopt(initializer)(*initargs)
        except BaseException as exc:  # noqa: BLE001 - becomes the pool's InitializerFailed
            outcome = pack_exception(exc)
        _initialized[pool] = outcome
        while len(_initialized) > POOLS_REMEMBERED:
            _initialized.popitem(last=False)
        return outcome


def _function(pool: str, token: int, fn_bytes: bytes) -> Callable[..., Any]:
    key = (pool, token)
    with _lock:
        known = _functions.get(key)
        if known is not None:
            _functions.move_to_end(key)
            return known
    fn: Callable[..., Any] = adopt(loads(fn_bytes))
    with _lock:
        _functions[key] = fn
        while len(_functions) > FUNCTIONS_KEPT:
            _functions.popitem(last=False)
    return fn
