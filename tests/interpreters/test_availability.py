"""Where mode='interpreters' cannot run, it says why and what to do (runs on every Python)."""

from __future__ import annotations

import sys

import pytest

import poolwise
from poolwise.backends.interpreters import why_unavailable


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="this Python has interpreter workers")
def test_older_pythons_refuse_the_mode_naming_the_version_that_has_it() -> None:
    with pytest.raises(poolwise.BackendUnavailable) as info:
        poolwise.Pool("interpreters", 2)
    error = info.value
    assert error.mode == "interpreters"
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in error.why
    assert "3.13" in error.how
    assert "uv run --python 3.13" in error.how
    assert "mode='processes'" in error.how


@pytest.mark.parametrize(
    ("implementation", "version", "words"),
    [
        ("cpython", (3, 11), "no per-interpreter GIL"),
        ("cpython", (3, 12), "_xxsubinterpreters"),
        ("pypy", (3, 10), "pypy 3.10 has no subinterpreters"),
    ],
)
def test_each_reason_names_what_is_missing(
    implementation: str, version: tuple[int, int], words: str
) -> None:
    why = why_unavailable(implementation, version)
    assert why is not None
    assert words in why


def test_cpython_313_and_later_can() -> None:
    assert why_unavailable("cpython", (3, 13)) is None
    assert why_unavailable("cpython", (3, 14)) is None


@pytest.mark.skipif(sys.version_info < (3, 13), reason="needs Python 3.13+")
def test_this_python_runs_the_mode() -> None:
    with poolwise.Pool("interpreters", 1) as pool:
        assert pool.mode == "interpreters"
        assert pool.map(abs, [-1, -2]) == [1, 2]
