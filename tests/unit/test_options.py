"""Bad arguments raise a clear ValueError/TypeError before any work starts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

import poolwise

if TYPE_CHECKING:
    from collections.abc import Callable

CALLS: list[object] = []


def _tracked(x: object) -> object:
    CALLS.append(x)
    return x


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"workers": 0}, ValueError, "workers must be greater than 0: workers=0 must be 1 or more"),
        ({"workers": -2}, ValueError, "workers=-2"),
        ({"workers": 1.5}, TypeError, "workers=1.5 must be a whole number"),
        ({"workers": True}, TypeError, "workers=True"),
        ({"mode": "gpu"}, ValueError, "mode='gpu' is not a mode; use one of 'auto'"),
        ({"timeout": -1}, ValueError, "timeout=-1 must be more than 0"),
        ({"timeout": "3"}, TypeError, "timeout='3' must be a number"),
        ({"chunksize": 0}, ValueError, "chunksize=0 must be 1 or more"),
        ({"retries": -1}, ValueError, "retries=-1 must be 0 or more"),
    ],
)
def test_map_rejects_bad_arguments_before_work(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    kwargs.setdefault("mode", "serial")
    with pytest.raises(error, match=match):
        poolwise.map(_tracked, [1, 2, 3], **kwargs)
    assert CALLS == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"workers": 0}, ValueError, "workers=0"),
        ({"max_tasks_per_worker": 0}, ValueError, "max_tasks_per_worker=0"),
        ({"initializer": 3}, TypeError, "initializer=3 is not callable"),
        ({"start_method": "teleport"}, ValueError, "start_method='teleport' is not available"),
        ({"address": "tcp://x:1"}, ValueError, "only for mode='dask'"),
    ],
)
def test_pool_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        poolwise.Pool("threads", **kwargs)


def test_non_callable_fn() -> None:
    with pytest.raises(TypeError, match="fn=42 is not callable"):
        poolwise.map(42, [1], mode="serial")  # type: ignore[arg-type]


def test_iterables_of_different_lengths() -> None:
    with pytest.raises(ValueError, match=r"different lengths \[3, 2\]"):
        poolwise.map(lambda a, b: a, [1, 2, 3], [1, 2], mode="serial")


def test_no_iterable() -> None:
    with pytest.raises(TypeError, match="at least one iterable"):
        poolwise.map(_tracked, mode="serial")


def test_starmap_item_that_is_not_a_tuple() -> None:
    with pytest.raises(TypeError, match="iterable of argument tuples; got an item of type int"):
        poolwise.starmap(_tracked, [1, 2], mode="serial")
    assert CALLS == []


def test_first_input_that_does_not_fit_the_function() -> None:
    two: Callable[[int, int], int] = lambda a, b: a + b  # noqa: E731
    with pytest.raises(TypeError, match="input #0 does not fit"):
        poolwise.map(two, [1, 2], mode="serial")


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="interpreters run on 3.13+")
def test_interpreters_before_3_13_say_which_python_has_them() -> None:
    with pytest.raises(poolwise.BackendUnavailable) as info:
        poolwise.Pool("interpreters")
    assert info.value.mode == "interpreters"
    assert "3.13" in str(info.value)


def test_progress_takes_true_false_or_always() -> None:
    with pytest.raises(ValueError, match="progress='yes' must be True"):
        poolwise.map(_tracked, [1], mode="serial", progress="yes")  # type: ignore[arg-type]
    assert CALLS == []
