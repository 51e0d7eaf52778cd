"""What users' type checkers see: mypy checks this file; pytest never runs it."""

from __future__ import annotations

from concurrent.futures import Future
from typing import assert_type

import poolwise


def length(text: str) -> int:
    return len(text)


def scaled(x: int, *, by: float) -> float:
    return x * by


def check_api() -> None:
    assert_type(poolwise.map(length, ["a", "bb"], mode="threads"), list[int])
    for n in poolwise.imap(length, ["a"], mode="threads", buffersize=4):
        assert_type(n, int)
    assert_type(poolwise.starmap(scaled, [(7,)], mode="serial"), list[float])
    assert_type(poolwise.map(length, ["a"], report=True), tuple[list[int], poolwise.Report])
    assert_type(poolwise.starmap(scaled, [(7,)], report=True), tuple[list[float], poolwise.Report])
    with poolwise.Pool("processes", 4) as pool:
        assert_type(pool.submit(scaled, 3, by=2.0), Future[float])
        assert_type(pool.map(length, ["a"]), list[int])
        assert_type(pool.map(length, ["a"], report=True), tuple[list[int], poolwise.Report])
        for n in pool.imap_unordered(length, ["a"]):
            assert_type(n, int)
        for n in pool.imap(length, ["a"], buffersize=8, timeout=1.0, ordered=False):
            assert_type(n, int)
        assert_type(pool.map(length, ["a"], timeout=2, retries=1, chunksize=4), list[int])
        # a misspelt option is an error for the user's type checker (strict mypy flags an
        # ignore that is no longer needed, so this line fails if the check goes away)
        pool.map(length, ["a"], timout=1)  # type: ignore[call-overload]
        assert_type(pool.report(), poolwise.Report)
        assert_type(pool.report().reasons, list[str])
    with poolwise.Executor("threads", max_workers=2) as ex:
        assert_type(ex.submit(length, "abc"), Future[int])
    assert_type(poolwise.cpus(), int)
