"""Ground-truth workloads for profile(): each has an obvious right answer."""

from __future__ import annotations

import hashlib
import time


def nap(_: object) -> None:
    time.sleep(0.02)


def count_primes(start: int) -> int:
    return sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(start, start + 4000))


def sha256_rounds(size: int) -> str:
    data = b"x" * size
    for _ in range(20):
        data = hashlib.sha256(data).digest() * (size // 32)
    return hashlib.sha256(data).hexdigest()


def identity(x: object) -> object:
    return x


def record(path: str, x: int) -> int:
    """Append x to a file (one line, atomic with O_APPEND), then return it."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{x}\n".encode())
    finally:
        os.close(fd)
    return x


def fail_on_one(x: int) -> int:
    if x == 1:
        raise ValueError("one")
    return x


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
