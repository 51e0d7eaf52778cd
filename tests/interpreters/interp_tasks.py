"""Task functions for the interpreter tests, importable inside each subinterpreter."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

#: Changed by ``bump`` in the interpreter that runs it, never in the caller's.
COUNTER = 0
#: Set by ``remember`` (an initializer) in each interpreter.
GREETING = ""


def bump(_: object = None) -> int:
    """Add one to this interpreter's COUNTER and return it."""
    global COUNTER
    COUNTER += 1
    return COUNTER


def remember(greeting: str) -> None:
    global GREETING
    GREETING = greeting


def greeting(_: object = None) -> str:
    return GREETING


def where(_: object = None) -> tuple[int, int, int]:
    """(pid, thread ident, interpreter id) of whoever runs this."""
    import _interpreters  # type: ignore[import-not-found]

    return os.getpid(), threading.get_ident(), _interpreters.get_current()[0]


def uses_numpy(x: int) -> int:
    import numpy

    return int(numpy.int64(x))


def loaded_modules(names: tuple[str, ...]) -> list[bool]:
    """Whether each module is loaded in the interpreter that runs this."""
    import sys

    return [name in sys.modules for name in names]


def size_and_type(value: Any) -> tuple[int, str, int]:
    return len(value), type(value).__name__, value[-1]


def announce_then_read(path: str, fd: int) -> bytes:
    """Create ``path`` (I have started), then block in C reading ``fd`` (a pipe)."""
    Path(path).touch()
    return os.read(fd, 1)


def announce_then_spin(path: str) -> None:
    """Create ``path`` (I have started), then loop in Python forever."""
    Path(path).touch()
    while True:
        pass


def log_then_fail(path: str) -> None:
    """An initializer that logs each call, then fails."""
    with open(path, "a") as log:
        log.write("init\n")
    raise RuntimeError("no database here")


def starts_a_thread(_: object = None) -> str:
    """Start a thread in this interpreter and wait for it (threads work there)."""
    box: list[str] = []
    thread = threading.Thread(target=lambda: box.append("ran"))
    thread.start()
    thread.join()
    return box[0]


def counted(_: object = None) -> tuple[int, int]:
    """(interpreter id, this interpreter's COUNTER after adding one)."""
    return where()[2], bump()


def spin_on(x: int, bad: int = 3) -> int:
    """A pure-Python loop that never ends, for input ``bad``."""
    if x == bad:
        while True:
            pass
    return x


def stuck_at(pair: tuple[int, int]) -> int:
    """Input 2 blocks in C reading the pipe ``fd``; the others return at once."""
    x, fd = pair
    if x == 2:
        os.read(fd, 1)
    return x


def write_first(value: Any) -> None:
    """Write 7 into the first byte of ``value`` (a writable shared buffer)."""
    value[0] = 7


def flaky(folder: str, x: int, how: str = "raise") -> int:
    """Fail the first run for ``x`` (raise, or spin forever), then return x; every run
    appends a line to ``folder/x``, so the test counts runs across interpreters."""
    log = Path(folder) / str(x)
    with open(log, "a") as f:
        f.write("run\n")
    if log.read_text().count("run") == 1:
        if how == "spin":
            while True:
                pass
        raise ConnectionError(f"flaky failure of {x}")
    return x
