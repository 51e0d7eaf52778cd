"""Task functions that misbehave on purpose, importable by worker processes."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path
from typing import Any


def exit_on(x: int, bad: int = 3, code: int = 7) -> int:
    if x == bad:
        os._exit(code)
    return x


def segfault_on(x: int, bad: int = 3) -> int:
    if x == bad:
        ctypes.string_at(0)
    return x


def announce_and_block(path: str) -> None:
    """Write this worker's pid to ``path``, then block until killed."""
    Path(path + ".tmp").write_text(str(os.getpid()))
    os.replace(path + ".tmp", path)
    while True:
        time.sleep(3600)


def return_lock(x: int) -> Any:
    return threading.Lock() if x == 2 else x


class UnpicklableError(Exception):
    def __init__(self) -> None:
        super().__init__("this error holds a lock")
        self.lock = threading.Lock()


def raise_unpicklable(x: int) -> None:
    raise UnpicklableError()


def count_and_fail(path: str) -> None:
    """An initializer that logs each call, then fails."""
    with open(path, "a") as log:
        log.write("init\n")
    raise RuntimeError("no database here")


def pid(_: object = None) -> int:
    return os.getpid()


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
    Path(path + ".tmp").write_text(repr(time.monotonic()))
    os.replace(path + ".tmp", path)
    while True:
        pass


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
    """Pickles in the worker; unpickling it in the parent raises."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_boom, ())


def raise_bad_error(_: object) -> None:
    raise ErrorFailingToUnpickle("cannot come back")


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
