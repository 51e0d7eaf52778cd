"""Errors build their message from their fields and survive pickling with them."""

from __future__ import annotations

import pickle
import signal

import pytest

from poolwise import errors

CASES = [
    errors.TaskTimeout(2.5, 17),
    errors.WorkerCrashed(None, signal.SIGKILL, 17, 4121),
    errors.WorkerCrashed(3, None, None, None),
    errors.NotPicklable("input #3 args[1]['lock']", "_thread.lock", "TypeError: no"),
    errors.PoolClosed(),
    errors.BackendUnavailable("dask", "distributed is not installed", "pip install x"),
    errors.InitializerFailed("setup", "ValueError: bad"),
    errors.RemoteError("mod.Err", "text", "Traceback..."),
]


@pytest.mark.parametrize("error", CASES, ids=lambda e: type(e).__name__)
def test_error_pickles_with_fields_and_message(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_worker_crashed_by_sigkill_names_signal_task_and_advice() -> None:
    text = str(errors.WorkerCrashed(None, signal.SIGKILL, 17, 4121))
    assert "worker 4121 was killed by SIGKILL while running task #17" in text
    assert "out of memory" in text


def test_worker_crashed_with_exit_code() -> None:
    text = str(errors.WorkerCrashed(3, None, 2, 10))
    assert "exited with code 3 while running task #2" in text


def test_task_timeout_is_a_timeout_error() -> None:
    error = errors.TaskTimeout(1.5, 4)
    assert isinstance(error, TimeoutError)
    assert "task #4 ran longer than timeout=1.5s" in str(error)


def test_not_picklable_is_a_type_error_naming_where() -> None:
    error = errors.NotPicklable("args[1]['lock']", "_thread.lock", "TypeError: nope")
    assert isinstance(error, TypeError)
    assert str(error).startswith("args[1]['lock']: _thread.lock cannot be pickled")
