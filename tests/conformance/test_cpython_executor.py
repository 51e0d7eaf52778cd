"""CPython's own executor tests (Lib/test/test_concurrent_futures), run on poolwise.Executor.

The tests the stdlib runs on ThreadPoolExecutor and ProcessPoolExecutor through its
mixins run here on ``poolwise.Executor("threads")`` and ``("processes")`` with each start
method, unchanged (#15). Tests of CPython's internals (``executor._processes``, the call
queue) are not collected: only the generic mixins are. Python's test package ships with
CPython builds from source (pyenv, the python.org installers); Debian packages it apart
(libpython3.X-testsuite), so where it is missing the module is skipped saying so.
"""

from __future__ import annotations

import functools

import pytest

try:
    from test.test_concurrent_futures import executor as _executor
    from test.test_concurrent_futures import test_as_completed, test_init, test_shutdown, test_wait
    from test.test_concurrent_futures.util import (
        BaseTestCase,
        ProcessPoolForkMixin,
        ProcessPoolForkserverMixin,
        ProcessPoolSpawnMixin,
        ThreadPoolMixin,
    )
except ImportError as exc:  # pragma: no cover - depends on the Python build
    pytest.skip(
        f"CPython's test package is not installed with this Python ({exc}); install it "
        "(Debian: libpython3.X-testsuite) or use a CPython built from source",
        allow_module_level=True,
    )

import poolwise

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


# The stdlib's own mixins (their contexts, events, managers), with poolwise's executor.
class _Threads(ThreadPoolMixin):
    executor_type = staticmethod(functools.partial(poolwise.Executor, "threads"))


class _Fork(ProcessPoolForkMixin):
    executor_type = staticmethod(functools.partial(poolwise.Executor, "processes"))


class _Forkserver(ProcessPoolForkserverMixin):
    executor_type = staticmethod(functools.partial(poolwise.Executor, "processes"))


class _Spawn(ProcessPoolSpawnMixin):
    executor_type = staticmethod(functools.partial(poolwise.Executor, "processes"))


_KINDS = {"Threads": _Threads, "Fork": _Fork, "Forkserver": _Forkserver, "Spawn": _Spawn}
_SUITES = {
    "Executor": _executor.ExecutorTest,
    "AsCompleted": test_as_completed.AsCompletedTests,
    "Wait": test_wait.WaitTests,
    "Shutdown": test_shutdown.ExecutorShutdownTest,
    "Initializer": test_init.InitializerMixin,
    "FailingInitializer": test_init.FailingInitializerMixin,
}

#: Tests that cannot run on another executor as written, and why; each has a port in
#: tests/behaviour/test_executor_exactness.py where the behaviour applies.
_NOT_APPLICABLE = {
    "test_interpreter_shutdown": "its script imports the executor from concurrent.futures "
    "by name (ported: test_submitted_work_finishes_before_the_interpreter_exits)",
    "test_submit_after_interpreter_shutdown": "its script imports the executor from "
    "concurrent.futures by name, and it matches the stdlib's message word for word",
    "test_hang_gh83386": "its script imports the executor from concurrent.futures by name "
    "(ported: test_submitted_work_finishes_before_the_interpreter_exits)",
    "test_cancel_futures": "it asserts that some of 50 futures submitted just before "
    "shutdown(cancel_futures=True) already ran: the stdlib's call queue marks futures "
    "running before a worker starts them; poolwise cancels every future no worker has "
    "started, as cancel_futures promises (ported: test_cancel_futures_on_shutdown)",
    "test_initializer": "FailingInitializer: it reads executor._broken and has the child "
    "log into a multiprocessing.Queue inherited at process start; poolwise raises "
    "InitializerFailed, a BrokenExecutor (ported: test_a_failing_initializer_breaks_it)",
}


def _not_applicable(name: str, why: str) -> object:
    def test(self: object) -> None:
        pytest.skip(f"{name}: {why}")

    return test


for _suite_name, _suite in _SUITES.items():
    for _kind_name, _kind in _KINDS.items():
        _name = f"TestPoolwise{_kind_name}{_suite_name}"
        _skips = {
            test: _not_applicable(test, why)
            for test, why in _NOT_APPLICABLE.items()
            if hasattr(_suite, test)
            and (test != "test_initializer" or _suite is test_init.FailingInitializerMixin)
        }
        if _suite is test_init.FailingInitializerMixin and _kind is not _Threads:
            # its setUp passes a multiprocessing.Queue in initargs, which only a process
            # created with it can receive: poolwise sends the initializer by pickle
            _skips["setUp"] = _not_applicable(
                "test_initializer", _NOT_APPLICABLE["test_initializer"]
            )
        _bases = (_suite, _kind, BaseTestCase)
        globals()[_name] = type(_name, _bases, {"__module__": __name__, **_skips})
