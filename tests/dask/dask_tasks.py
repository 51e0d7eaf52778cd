"""Task functions for the Dask tests, importable by Dask worker processes.

LocalCluster workers start by spawn with this process's ``sys.path``; the workers of the
external cluster get this folder through ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


def square(x: int) -> int:
    return x * x


def pid(_: object = None) -> int:
    return os.getpid()


def fail_on(x: int, bad: int = 5) -> int:
    if x == bad:
        raise ValueError(f"input {x} is bad")
    return x


class CustomError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def raise_custom(x: int) -> None:
    raise CustomError(x, "custom")


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


def exit_on(x: int, bad: int = 3, code: int = 7) -> int:
    if x == bad:
        os._exit(code)
    return x


def announce_and_block(path: str) -> None:
    """Write this worker's pid to ``path``, then block until killed."""
    Path(path + ".tmp").write_text(str(os.getpid()))
    os.replace(path + ".tmp", path)
    while True:
        time.sleep(3600)


def record(path: str, x: int) -> int:
    """Append x to a file (O_APPEND writes of one line are atomic), then return it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{x}\n".encode())
    finally:
        os.close(fd)
    return x


def record_or_spin(path: str, x: int, bad: int = 3) -> int:
    """``record``, except that input ``bad`` spins for ever."""
    if x == bad:
        while True:
            pass
    return record(path, x)


def hold(folder: str, x: int) -> int:
    """Say "x started" (a file), then wait until the file "release" exists."""
    Path(folder, f"started-{x}").touch()
    while not Path(folder, "release").exists():
        time.sleep(0.01)
    return x


def flaky(folder: str, x: int, how: str = "raise") -> int:
    """Fail the first run for ``x`` (raise, or end the worker), then return x.

    Every run appends a line to ``folder/x``, so tests count runs across processes.
    """
    log = Path(folder) / str(x)
    with open(log, "a") as f:
        f.write("run\n")
    if log.read_text().count("run") == 1:
        if how == "exit":
            os._exit(9)
        raise ConnectionError(f"flaky failure of {x}")
    return x


def return_lock(x: int) -> Any:
    return threading.Lock() if x == 2 else x


_SETTING: list[str] = []


def remember(path: str, value: str) -> None:
    """An initializer: note the call in ``path`` (one line per worker), keep ``value``."""
    with open(path, "a") as log:
        log.write(f"{os.getpid()}\n")
    _SETTING.append(value)


def setting(_: object = None) -> tuple[int, list[str]]:
    """What ``remember`` kept in this worker, and the worker's pid."""
    return os.getpid(), list(_SETTING)


def count_and_fail(path: str) -> None:
    """An initializer that logs each call, then fails."""
    with open(path, "a") as log:
        log.write("init\n")
    raise RuntimeError("no database here")


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
