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
