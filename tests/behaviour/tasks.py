"""Task functions for the behaviour suite, importable by worker processes."""

from __future__ import annotations

import os
import threading
import time
from typing import Any


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


def busy(x: int) -> int:
    """Compute for 1 ms of this thread's CPU time."""
    end = time.thread_time() + 0.001
    while time.thread_time() < end:
        pass
    return x


def doze(x: int) -> int:
    """Wait 10 ms without computing."""
    time.sleep(0.01)
    return x


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
