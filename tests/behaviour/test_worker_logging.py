"""Log records made in process workers reach the parent's logging setup, once, with every
start method (forkserver and spawn workers have none of the parent's handlers) (#15)."""

from __future__ import annotations

import logging
import os

import pytest
from tasks import log_and_return

import poolwise


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_worker_records_reach_the_parents_handlers(
    caplog: pytest.LogCaptureFixture, method: str
) -> None:
    caplog.set_level(logging.INFO)  # the root level when the workers start
    with poolwise.Pool("processes", 2, start_method=method) as pool:
        assert pool.map(log_and_return, range(4)) == [0, 1, 2, 3]
    mine = [r for r in caplog.records if r.name == "tests.worker"]
    assert sorted(r.getMessage() for r in mine if r.levelno == logging.INFO) == [
        f"working on {x}" for x in range(4)
    ]
    [error] = [r for r in mine if r.levelno == logging.ERROR]
    assert error.getMessage().startswith("failed on 2")
    assert "ZeroDivisionError" in error.getMessage()  # the traceback, as text
    assert not [r for r in mine if r.levelno == logging.DEBUG]  # under the root level
    assert {r.process for r in mine} - {os.getpid()}  # made in the workers


def test_a_logger_the_parent_silenced_stays_silent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("tests.worker").setLevel(logging.ERROR)
    try:
        with poolwise.Pool("processes", 1) as pool:
            pool.map(log_and_return, range(3))
    finally:
        logging.getLogger("tests.worker").setLevel(logging.NOTSET)
    levels = {r.levelno for r in caplog.records if r.name == "tests.worker"}
    assert levels == {logging.ERROR}
