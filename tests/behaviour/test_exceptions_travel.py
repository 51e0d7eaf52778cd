"""A task's exception comes back as its own type, with its args and attributes, from
every mode, even when its class's ``__init__`` cannot rebuild it from ``args`` (#15)."""

from __future__ import annotations

import pytest
from tasks import CodedError, raise_coded

import poolwise
from poolwise.lab.base import interpreters_unavailable

MODES = ["serial", "threads", "processes", "interpreters"]


@pytest.mark.parametrize("mode", MODES)
def test_an_exception_with_its_own_init_arrives_as_itself(mode: str) -> None:
    if mode == "interpreters" and (why := interpreters_unavailable()) is not None:
        pytest.skip(why)
    with poolwise.Pool(mode, 1) as pool, pytest.raises(CodedError) as info:  # type: ignore[arg-type]
        pool.map(raise_coded, [42])
    error = info.value
    assert type(error) is CodedError
    assert (error.code, error.detail) == (42, "disk full")
    assert str(error) == "error 42: disk full"
    if mode in ("processes", "interpreters"):  # the worker's traceback as the cause
        assert "raise_coded" in str(error.__cause__)
