"""Extension modules without subinterpreter support (NumPy) cannot load in a worker: the
task gets an ImportError that names the module and says to use mode='processes'."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from interp_tasks import size_and_type, uses_numpy

import poolwise

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 13), reason="mode='interpreters' needs Python 3.13+"
)


def _check(error: BaseException) -> None:
    assert isinstance(error, ImportError)
    message = str(error)
    assert "numpy._core._multiarray_umath" in message
    assert "does not support subinterpreters" in message
    assert "mode='processes'" in message


def test_importing_numpy_in_a_task_gives_a_clear_import_error() -> None:
    with poolwise.Pool("interpreters", 1) as pool:
        _check(pool.submit(uses_numpy, 3).exception(timeout=60))
        assert pool.map(abs, [-1]) == [1]  # the interpreter still works


def test_a_numpy_argument_or_function_gives_the_same_error() -> None:
    with poolwise.Pool("interpreters", 1) as pool:
        with pytest.raises(ImportError) as argument:
            pool.map(size_and_type, [np.arange(3)])
        _check(argument.value)
        with pytest.raises(ImportError) as function:
            pool.map(np.sum, [[1, 2]])
        _check(function.value)
        assert pool.map(abs, [-2]) == [2]
