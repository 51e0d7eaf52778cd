"""An input iterator that raises: every input read before the error has its result, in
order, then the iterator's exception (the builtin ``map``'s semantics) (#15)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tasks import square

import poolwise

if TYPE_CHECKING:
    from collections.abc import Iterator

GOOD = 5_000


class InputBroke(Exception):
    pass


def inputs() -> Iterator[int]:
    yield from range(GOOD)
    raise InputBroke("row 5000 is malformed")


@pytest.mark.parametrize("mode", ["serial", "threads", "processes", "auto"])
@pytest.mark.parametrize("ordered", [True, False])
def test_imap_yields_every_result_before_the_inputs_error(mode: str, ordered: bool) -> None:
    results: list[int] = []
    lazy = poolwise.imap(square, inputs(), mode=mode, workers=2, ordered=ordered)  # type: ignore[arg-type]
    with pytest.raises(InputBroke, match="row 5000"):
        results.extend(lazy)  # extend keeps what came before the error
    expected = [x * x for x in range(GOOD)]
    # before #15, threads and processes yielded 1 of 5,000
    assert results == expected if ordered else sorted(results) == expected


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_task_error_before_the_inputs_error_comes_first(mode: str) -> None:
    def broken() -> Iterator[int]:
        yield from [1, 2, -1, 4]
        raise InputBroke("late")

    def root(x: int) -> float:
        if x < 0:
            raise ValueError("negative")
        return x**0.5

    with poolwise.Pool(mode, 2) as pool, pytest.raises(ValueError, match="negative"):  # type: ignore[arg-type]
        pool.map(root, broken())
