"""Task functions that every suite shares: one module, importable by every kind of worker.

Workers find it by name: ``tests/`` is on ``sys.path`` (pytest puts the folder of the root
``conftest.py`` there), process workers (fork, forkserver, spawn) and a LocalCluster's spawned
Dask workers inherit that ``sys.path``, and the external Dask cluster of
``dask/test_external_cluster.py`` gets ``tests/`` through ``PYTHONPATH``. Pickle sends each
function by reference (``tasks.square``), so a task defined anywhere else would need that
other module importable in the worker too.

``interpreters/interp_tasks.py`` stays apart on purpose: its functions keep module state
(``COUNTER``) that the interpreter tests compare between the caller and each subinterpreter,
and they import only what a subinterpreter can load.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

# --- Tasks that behave -----------------------------------------------------------------


def square(x: int) -> int:
    return x * x


def add(x: int, y: int) -> int:
    return x + y


def identity(x: Any) -> Any:
    return x


def fail_on(x: int, bad: int = 5) -> int:
    if x == bad:
        raise ValueError(f"input {x} is bad")
    return x


def record(path: str, x: int) -> int:
    """Append x to a file (O_APPEND writes of one line are atomic), then return it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{x}\n".encode())
    finally:
        os.close(fd)
    return x


def worker_id(_: object = None) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def keyword(x: int, *, scale: int = 1) -> int:
    return x * scale


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def raise_custom(x: int) -> None:
    raise CustomError(x, "custom")


class CodedError(Exception):
    """An __init__ whose arguments are not what it passes on: pickle's default
    ``cls(*args)`` fails to rebuild it."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"error {code}: {detail}")
        self.code = code
        self.detail = detail


def raise_coded(x: int) -> None:
    raise CodedError(x, "disk full")


def busy(x: int) -> int:
    """Compute for 1 ms of this thread's CPU time."""
    spin(0.001)
    return x


def doze(x: int) -> int:
    """Wait 10 ms without computing."""
    time.sleep(0.01)
    return x


def pid(_: object = None) -> int:
    return os.getpid()


def hold(folder: str, x: int) -> int:
    """Say "x started" (a file), then wait until the file "release" exists."""
    Path(folder, f"started-{x}").touch()
    while not Path(folder, "release").exists():
        time.sleep(0.01)
    return x


_SETTING: list[str] = []


def remember(path: str, value: str) -> None:
    """An initializer: note the call in ``path`` (one line per worker), keep ``value``."""
    with open(path, "a") as log:
        log.write(f"{os.getpid()}\n")
    _SETTING.append(value)


def setting(_: object = None) -> tuple[int, list[str]]:
    """What ``remember`` kept in this worker, and the worker's pid."""
    return os.getpid(), list(_SETTING)


# --- Workloads with an obvious right answer, for profile() and mode="auto" ----------------


def nap(_: object) -> None:
    time.sleep(0.02)


def count_primes(start: int) -> int:
    return sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(start, start + 4000))


def sha256_rounds(size: int) -> str:
    data = b"x" * size
    for _ in range(20):
        data = hashlib.sha256(data).digest() * (size // 32)
    return hashlib.sha256(data).hexdigest()


def fail_on_one(x: int) -> int:
    """``fail_on`` with input 1 bad: its own function, so mode="auto" profiles it apart."""
    return fail_on(x, bad=1)


def spin(seconds: float) -> None:
    """Hold the GIL computing for ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def waits_then_computes(x: int) -> int:
    """Inputs below 100 wait 5 ms (I/O-like); from 100 on, each computes for 5 ms."""
    if x < 100:
        time.sleep(0.005)
    else:
        spin(0.005)
    return x


def computes(x: int) -> int:
    spin(0.002)
    return x


# --- Arrays and shared memory (NumPy is imported inside, where a test asks for it) ---------


def where_is(value: Any) -> tuple[int, str]:
    """This process's pid and the /proc/self/maps line that holds ``value``'s memory."""
    address = _address(value)
    with open("/proc/self/maps") as maps:
        for line in maps:
            span = line.split(maxsplit=1)[0]
            low, high = (int(part, 16) for part in span.split("-"))
            if low <= address < high:
                return os.getpid(), line.strip()
    return os.getpid(), ""


def _address(value: Any) -> int:
    import numpy

    return int(numpy.asarray(value).__array_interface__["data"][0])


def describe(value: Any) -> tuple[Any, tuple[int, ...], bool, bool, bytes]:
    """What a task saw: dtype, shape, Fortran order, writability, and the data."""
    import numpy

    array = numpy.asarray(value)
    return (
        array.dtype,
        array.shape,
        bool(array.flags.f_contiguous and not array.flags.c_contiguous),
        bool(array.flags.writeable),
        array.tobytes(order="A"),
    )


def write_first(value: Any, number: int) -> int:
    """Write ``number`` into the first element of ``value`` (an array or a memoryview)."""
    value[0] = number
    return os.getpid()


def kind_of(value: Any) -> str:
    return type(value).__name__


def scribble_and_sum(value: Any) -> int:
    """Write into the argument (allowed: it is this task's own copy), then sum it."""
    value[0] = -1_000_000
    return int(value.sum())


def size_and_type(value: Any) -> tuple[int, str, int]:
    return len(value), type(value).__name__, value[-1]


def exit_holding(value: Any, code: int = 9) -> None:
    """Touch a shared array, then end the worker at once."""
    _ = value[0]
    os._exit(code)


def spin_holding(value: Any) -> None:
    """Touch a shared array, then spin until stopped."""
    _ = value[0]
    while True:
        pass


def mapped_segments(_: object = None) -> str:
    """The /dev/shm paths this process has mapped now."""
    with open("/proc/self/maps") as maps:
        return "\n".join(line.strip() for line in maps if "/dev/shm/" in line)


# --- Tasks that misbehave on purpose: exit, crash, hang, fail -----------------------------


def exit_on(x: int, bad: int = 3, code: int = 7) -> int:
    if x == bad:
        os._exit(code)
    return x


def segfault_on(x: int, bad: int = 3) -> int:
    if x == bad:
        ctypes.string_at(0)
    return x


def _announce(path: str, text: str) -> None:
    """Write ``text`` to ``path`` at once (a rename), so a reader never sees half of it."""
    Path(path + ".tmp").write_text(text)
    os.replace(path + ".tmp", path)


def announce_and_block(path: str) -> None:
    """Write this worker's pid to ``path``, then block until killed."""
    _announce(path, str(os.getpid()))
    while True:
        time.sleep(3600)


def spin_on(x: int, bad: int = 3) -> int:
    """A pure-Python loop that never ends, for input ``bad``."""
    if x == bad:
        while True:
            pass
    return x


def sleep_on(x: int, bad: int = 3) -> int:
    """Blocked in C (time.sleep) for an hour, for input ``bad``."""
    if x == bad:
        time.sleep(3600)
    return x


def stubborn_sleep_on(x: int, bad: int = 3) -> int:
    """Ignores SIGTERM, then blocks, for input ``bad``: only SIGKILL stops it."""
    if x == bad:
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)
    return x


def started_then_spin(path: str) -> None:
    """Write time.monotonic() (comparable across processes) to ``path``, then spin."""
    _announce(path, repr(time.monotonic()))
    while True:
        pass


def record_or_spin(path: str, x: int, bad: int = 3) -> int:
    """``record``, except that input ``bad`` spins for ever."""
    return record(path, spin_on(x, bad))


def flaky(folder: str, x: int, how: str = "raise", fail_times: int = 1) -> int:
    """Fail the first ``fail_times`` runs for ``x`` (raise, os._exit or spin), then return x.

    Every run appends a line to ``folder/x``, so tests count runs across processes.
    """
    log = Path(folder) / str(x)
    with open(log, "a") as f:
        f.write("run\n")
    runs = log.read_text().count("run")
    if runs <= fail_times:
        if how == "exit":
            os._exit(9)
        if how == "spin":
            while True:
                pass
        raise ConnectionError(f"flaky failure of {x} (run {runs})")
    return x


def fails_with_value_error(x: int) -> int:
    raise ValueError(f"always fails: {x}")


def count_and_fail(path: str) -> None:
    """An initializer that logs each call, then fails."""
    with open(path, "a") as log:
        log.write("init\n")
    raise RuntimeError("no database here")


# --- Values and errors that fail to cross a process boundary ------------------------------


def return_lock(x: int) -> Any:
    return threading.Lock() if x == 2 else x


class UnpicklableError(Exception):
    def __init__(self) -> None:
        super().__init__("this error holds a lock")
        self.lock = threading.Lock()


def raise_unpicklable(x: int) -> None:
    raise UnpicklableError()


def _boom(*args: object) -> None:
    raise RuntimeError("boom in __setstate__/reduce")


class FailsToUnpickle:
    """Pickles fine; raises when unpickled (in the worker, or back in the parent)."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_boom, ())


class ExitsWhenUnpickled:
    """Unpickling it ends the process: os._exit inside the worker."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (os._exit, (5,))


class FailsToPickle:
    def __reduce__(self) -> tuple[Any, ...]:
        raise RuntimeError("refuses to pickle")


def give(value: object) -> object:
    """Return what it was given (used to send a bad value back)."""
    return value


def make(kind: str) -> object:
    """Build a bad value inside the worker and return it."""
    return {"fails_to_unpickle": FailsToUnpickle, "fails_to_pickle": FailsToPickle}[kind]()


class ErrorFailingToUnpickle(Exception):
    """Pickles in the worker; unpickling it raises, and so does rebuilding it from its
    args and attributes (one of them fails to unpickle)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.part = FailsToUnpickle()

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_boom, ())


def raise_bad_error(_: object) -> None:
    raise ErrorFailingToUnpickle("cannot come back")


def filled(value: int, megabytes: float = 2) -> Any:
    """A new float64 array of ``megabytes`` MiB, every item ``value``: a big result."""
    import numpy as np

    return np.full(int(megabytes * (1 << 20)) // 8, value, dtype=np.float64)


def big_bytes(value: int) -> bytes:
    """2 MiB of ``value``: a big result that is not an array."""
    return bytes([value]) * (2 << 20)


def orphan_result_segment_then(pool_pid: int, how: str, path: str = "") -> None:
    """Leave a result segment as a worker of the pool in ``pool_pid`` would just before it
    sends its RESULT frame, then die there (``how="exit"``) or write the segment's name to
    ``path`` and wait to be killed."""
    from poolwise.backends.child.segments import ResultSegments, parse

    text = ResultSegments(pool_pid).place([memoryview(b"x" * (1 << 20))])
    if how == "exit":
        os._exit(3)
    _announce(path, parse(text)[0][0].lstrip("/"))
    threading.Event().wait()


def wait_for_the_others(folder: str, x: int, others: int) -> bool:
    """Task 0 waits (up to 60 s) until ``others`` other tasks have marked ``folder``; the
    others mark it. True if task 0 saw them all: only if none was stuck queued behind it."""
    if x:
        Path(folder, str(x)).touch()
        return True
    deadline = time.monotonic() + 60
    while len(os.listdir(folder)) < others:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def follow_plan(path: str, x: int, plan: str) -> int:
    """Record ``x`` (see ``record``), then: "ok" return it, "slow" return it after 300 ms,
    "exit" kill the worker, "hang" spin until stopped."""
    record(path, x)
    if plan == "slow":
        time.sleep(0.3)
    elif plan == "exit":
        os._exit(5)
    elif plan == "hang":
        spin(600)
    return x


def zlib_level6(seed: int) -> int:
    """zlib level 6 over 4 MiB of compressible bytes (C code that releases the GIL)."""
    import zlib

    block = bytes((seed + i * 7) % 251 for i in range(4096)) * 1024
    return len(zlib.compress(block, 6))


def numpy_matmul(seed: int) -> float:
    """A 300 x 300 float64 matrix product, five times (BLAS releases the GIL)."""
    import numpy as np

    matrix = np.random.default_rng(seed).random((300, 300))
    for _ in range(5):
        matrix = matrix @ matrix
        matrix /= np.abs(matrix).max()
    return float(matrix.sum())


def sqlite_query(path: str) -> int:
    """Aggregate a table of 200,000 rows in a SQLite file (the query releases the GIL)."""
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        (total,) = db.execute("SELECT sum(a * b % 7) FROM t WHERE a % 3 != 0").fetchone()
    return int(total)


def nested_sum(n: int, mode: str = "threads", workers: int | None = 2, depth: int = 1) -> int:
    """Sum of squares below n, by a warm map nested in this task (``depth`` levels deep)."""
    import poolwise

    if depth <= 1:
        return sum(poolwise.map(square, range(n), mode=mode, workers=workers))  # type: ignore[arg-type]
    inner = [(n, mode, workers, depth - 1)] * 2
    return sum(poolwise.starmap(nested_sum, inner, mode=mode, workers=workers)) // 2  # type: ignore[arg-type]


def nested_imap_sum(n: int, mode: str = "threads") -> int:
    """As nested_sum, through a lazy imap that is consumed while the outer pool is busy."""
    import poolwise

    return sum(poolwise.imap(square, range(n), mode=mode, workers=2))  # type: ignore[arg-type]


def view_layout(view: memoryview) -> tuple[str, tuple[int, ...], list[Any]]:
    """A memoryview's format, shape and items, as a task saw it."""
    return view.format, tuple(view.shape or ()), view.tolist()


class MyObject:
    """As in CPython's executor tests: an object whose method is submitted."""

    def my_method(self) -> None:
        pass


def make_dummy_object(_: object) -> MyObject:
    return MyObject()


def log_and_return(x: int) -> int:
    """Log at INFO (and an exception with its traceback for x == 2), and a DEBUG record."""
    import logging

    log = logging.getLogger("tests.worker")
    log.info("working on %s", x)
    if x == 2:
        try:
            1 / 0  # noqa: B018 - the error to log
        except ZeroDivisionError:
            log.exception("failed on %s", x)
    log.debug("too detailed to forward")
    return x


def dask_profiler_enabled(_: object = None) -> bool:
    """Whether this Dask worker runs Dask's statistical profiler."""
    import dask.config

    return bool(dask.config.get("distributed.worker.profile.enabled"))
