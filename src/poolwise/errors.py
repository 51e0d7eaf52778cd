"""Every error poolwise raises, under one base class.

    PoolwiseError
    ├── TaskTimeout (also a TimeoutError)   a task ran past its timeout
    ├── WorkerCrashed                       the worker running a task died
    ├── NotPicklable (also a TypeError)     a function, argument or result cannot travel
    ├── PoolClosed (also a RuntimeError)    work was given to a closed pool
    ├── BackendUnavailable                  a mode cannot run here
    ├── InitializerFailed                   a worker's initializer raised
    └── RemoteError                         a worker's exception that could not travel back

An exception raised by the user's function is never wrapped: it reaches the caller as
itself, with the worker's traceback attached as ``__cause__`` (a ``RemoteTraceback``).

Each error builds its message from its fields and pickles with them (``__reduce__``), so it
survives the trip from a worker process to the caller.
"""

from __future__ import annotations

import signal as _signal
from concurrent.futures import BrokenExecutor

__all__ = [
    "BackendUnavailable",
    "InitializerFailed",
    "NotPicklable",
    "PoolClosed",
    "PoolwiseError",
    "RemoteError",
    "RemoteTraceback",
    "TaskTimeout",
    "WorkerCrashed",
]


class PoolwiseError(Exception):
    """Base class of every error poolwise raises itself."""


class TaskTimeout(PoolwiseError, TimeoutError):
    """A task ran longer than its ``timeout``; its worker was stopped.

    Attributes:
        timeout: the limit in seconds.
        task_index: the input index of the task, or None for a lone ``submit``.
    """

    def __init__(self, timeout: float, task_index: int | None = None) -> None:
        self.timeout = timeout
        self.task_index = task_index
        where = "a task" if task_index is None else f"task #{task_index}"
        super().__init__(f"{where} ran longer than timeout={timeout:g}s and was stopped")

    def __reduce__(self) -> tuple[type[TaskTimeout], tuple[float, int | None]]:
        return (type(self), (self.timeout, self.task_index))


def _signal_name(signum: int) -> str:
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class WorkerCrashed(PoolwiseError):
    """The worker process running a task died before it returned.

    Attributes:
        exitcode: the worker's exit code when it exited, else None.
        signal: the number of the signal that killed it, else None.
        task_index: the input index of the task it was running, or None if unknown.
        pid: the worker's process id.
    """

    def __init__(
        self,
        exitcode: int | None,
        signal: int | None,
        task_index: int | None,
        pid: int | None = None,
        note: str | None = None,
    ) -> None:
        self.exitcode = exitcode
        self.signal = signal
        self.task_index = task_index
        self.pid = pid
        #: Why this outcome was given to a task other than the one running, if it was.
        self.note = note
        super().__init__(self._message())

    def _message(self) -> str:
        worker = "a worker" if self.pid is None else f"worker {self.pid}"
        if self.signal is not None:
            how = f"was killed by {_signal_name(self.signal)}"
        elif self.exitcode is not None:
            how = f"exited with code {self.exitcode}"
        else:
            how = "died"
        task = "" if self.task_index is None else f" while running task #{self.task_index}"
        advice = "the task's function ended the process (os._exit, sys.exit in C, a crash)"
        if self.signal == _signal.SIGKILL:
            advice = (
                "SIGKILL often means out of memory: try fewer workers= or max_tasks_per_worker="
            )
        elif self.signal == _signal.SIGSEGV:
            advice = "SIGSEGV is a crash in C code (an extension module or ctypes)"
        message = f"{worker} {how}{task}; {advice}"
        return message if self.note is None else f"{self.note}: {message}"

    def __reduce__(
        self,
    ) -> tuple[
        type[WorkerCrashed], tuple[int | None, int | None, int | None, int | None, str | None]
    ]:
        return (type(self), (self.exitcode, self.signal, self.task_index, self.pid, self.note))


class NotPicklable(PoolwiseError, TypeError):
    """A function, argument or result cannot be pickled to travel between processes.

    Attributes:
        where: where the object sits, for example ``args[1]['lock']``.
        type_name: the qualified name of the object's type.
        reason: what the pickler said.
    """

    def __init__(self, where: str, type_name: str, reason: str) -> None:
        self.where = where
        self.type_name = type_name
        self.reason = reason
        super().__init__(
            f"{where}: {type_name} cannot be pickled ({reason}); process workers need "
            "picklable functions, arguments and results: pass what the object is built from "
            "and build it in the task, or use mode='threads'"
        )

    def __reduce__(self) -> tuple[type[NotPicklable], tuple[str, str, str]]:
        return (type(self), (self.where, self.type_name, self.reason))


class PoolClosed(PoolwiseError, RuntimeError):
    """Work was submitted to a pool after ``close()``, ``shutdown()`` or its ``with`` block."""

    def __init__(self, what: str = "pool") -> None:
        self.what = what
        super().__init__(
            f"this {what} is closed and takes no more work; start a new one "
            "or use poolwise.map(), which keeps a pool for you"
        )

    def __reduce__(self) -> tuple[type[PoolClosed], tuple[str]]:
        return (type(self), (self.what,))


class BackendUnavailable(PoolwiseError):
    """A mode cannot run in this Python or on this machine.

    Attributes:
        mode: the mode asked for.
        why: why it cannot run here.
        how: how to get it.
    """

    def __init__(self, mode: str, why: str, how: str) -> None:
        self.mode = mode
        self.why = why
        self.how = how
        super().__init__(f"mode={mode!r} is not available: {why}. {how}")

    def __reduce__(self) -> tuple[type[BackendUnavailable], tuple[str, str, str]]:
        return (type(self), (self.mode, self.why, self.how))


class InitializerFailed(PoolwiseError, BrokenExecutor):
    """A worker's ``initializer`` raised; the pool stops instead of respawning forever.

    The initializer's own exception is the ``__cause__``. It is a
    ``concurrent.futures.BrokenExecutor`` too, as the stdlib's executors raise then.
    """

    def __init__(self, initializer: str, detail: str) -> None:
        self.initializer = initializer
        self.detail = detail
        super().__init__(
            f"the worker initializer {initializer} raised {detail}; the pool was shut down, "
            "fix the initializer or its initargs"
        )

    def __reduce__(self) -> tuple[type[InitializerFailed], tuple[str, str]]:
        return (type(self), (self.initializer, self.detail))


class RemoteError(PoolwiseError):
    """A worker's exception that could not be pickled back, carried as text.

    Attributes:
        type_name: the qualified name of the original exception's type.
        text: its message.
        traceback_text: the worker's formatted traceback.
    """

    def __init__(self, type_name: str, text: str, traceback_text: str) -> None:
        self.type_name = type_name
        self.text = text
        self.traceback_text = traceback_text
        super().__init__(f"{type_name}: {text} (the exception could not be pickled back)")

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (type(self), (self.type_name, self.text, self.traceback_text))


class RemoteTraceback(Exception):
    """The worker's traceback, attached as ``__cause__`` of a task's exception."""

    def __init__(self, traceback_text: str) -> None:
        self.traceback_text = traceback_text
        super().__init__(traceback_text)

    def __str__(self) -> str:
        return self.traceback_text
