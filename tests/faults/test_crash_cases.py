"""loky-style table: objects that fail to pickle or unpickle, or end the process, on every
leg of a task's trip. Each row names the poolwise outcome it expects, and the pool keeps
working afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tasks import (
    ExitsWhenUnpickled,
    FailsToPickle,
    FailsToUnpickle,
    give,
    make,
    pid,
    raise_bad_error,
)

import poolwise

if TYPE_CHECKING:
    from collections.abc import Callable

CASES: list[tuple[str, Callable[..., Any], Callable[[], object], type[BaseException]]] = [
    # (leg, fn, the bad argument, expected outcome)
    ("argument fails to pickle in the parent", give, FailsToPickle, poolwise.NotPicklable),
    ("argument fails to unpickle in the worker", give, FailsToUnpickle, poolwise.NotPicklable),
    ("argument ends the worker when unpickled", give, ExitsWhenUnpickled, poolwise.WorkerCrashed),
    (
        "result fails to pickle in the worker",
        make,
        lambda: "fails_to_pickle",
        poolwise.NotPicklable,
    ),
    (
        "result fails to unpickle in the parent",
        make,
        lambda: "fails_to_unpickle",
        poolwise.NotPicklable,
    ),
    ("exception fails to unpickle in the parent", raise_bad_error, lambda: 1, poolwise.RemoteError),
]


@pytest.mark.parametrize(("leg", "fn", "argument", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_value_gives_that_task_a_defined_outcome(
    pool: poolwise.Pool,
    leg: str,
    fn: Callable[..., Any],
    argument: Callable[[], object],
    expected: type[BaseException],
) -> None:
    before = pool.map(pid, range(4))  # workers are up and the checks before work passed
    bad = pool.submit(fn, argument())
    with pytest.raises(expected):
        bad.result(timeout=60)
    assert pool.map(give, range(6), chunksize=2) == list(range(6))  # the pool still works
    assert len(before) == 4
