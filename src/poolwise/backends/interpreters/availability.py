"""Whether this Python can run interpreter workers, and the primitives that run them.

``Interpreters`` is the one place that touches CPython's interpreter primitives
(``concurrent.interpreters`` from 3.14, the private ``_interpreters`` in 3.13); they have
no type stubs. ``primitives()`` loads them once, or says why this Python has none;
``why_unavailable`` decides from the implementation and version alone, so it is tested
on every Python.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NamedTuple

from ...errors import BackendUnavailable

__all__ = [
    "HOW",
    "Failure",
    "Interpreters",
    "primitives",
    "require_interpreters",
    "why_unavailable",
]

#: What to do where interpreter workers cannot run.
HOW = (
    "run on CPython 3.13 or newer (for example `uv run --python 3.13 ...`); meanwhile "
    "mode='processes' runs CPU-bound Python code in parallel"
)


class Failure(NamedTuple):
    """An exception that escaped code run in an interpreter: its type's name and text."""

    type_name: str
    text: str


class Interpreters:
    """The interpreter primitives, from ``concurrent.interpreters`` (3.14+) or the private
    ``_interpreters`` (3.13). The only place that touches them; they have no type stubs."""

    def __init__(self, public: Any, private: Any) -> None:
        self._public = public
        self._private = private

    @classmethod
    def load(cls) -> Interpreters | str:
        """The primitives, or why this Python cannot run interpreter workers."""
        why = why_unavailable(sys.implementation.name, tuple(sys.version_info[:2]))
        if why is not None:
            return why
        try:
            return cls(importlib.import_module("concurrent.interpreters"), None)
        except ImportError:
            pass
        try:
            return cls(None, importlib.import_module("_interpreters"))
        except ImportError:
            return "this Python was built without the _interpreters module"

    def create(self) -> Any:
        """A new isolated interpreter (its own GIL, its own modules)."""
        if self._public is not None:
            return self._public.create()
        return self._private.create("isolated")

    def exec(self, interp: Any, code: str, names: dict[str, object]) -> Failure | None:
        """Run ``code`` in ``interp``'s ``__main__`` on this thread, with ``names`` bound
        there first (ints, floats, bytes, str, None, tuples, memoryviews); None if it ran
        to the end, else the exception that escaped it."""
        if self._public is not None:
            interp.prepare_main(**names)
            try:
                interp.exec(code)
            except self._public.ExecutionFailed as exc:
                return _failure(exc.excinfo)
            return None
        excinfo = self._private.exec(interp, code, names)
        return None if excinfo is None else _failure(excinfo)

    def destroy(self, interp: Any) -> None:
        """End ``interp``: waits for its threads (the guard), frees its modules."""
        if self._public is not None:
            interp.close()
        else:
            self._private.destroy(interp)


def why_unavailable(implementation: str, version: tuple[int, ...]) -> str | None:
    """Why interpreter workers cannot run on this Python, or None if its version can."""
    name = f"{version[0]}.{version[1]}"
    if implementation != "cpython":
        return f"{implementation} {name} has no subinterpreters"
    if version < (3, 12):
        return (
            f"Python {name} has no per-interpreter GIL (CPython 3.12 added it, 3.13 the "
            "_interpreters module that poolwise runs them with)"
        )
    if version < (3, 13):
        return (
            "Python 3.12 offers subinterpreters with their own GIL only through a private "
            "test module (_xxsubinterpreters) in which ctypes cannot load, so a running task "
            "could never be stopped (timeout=, terminate(), Ctrl-C)"
        )
    return None


def _failure(excinfo: Any) -> Failure:
    """The exception CPython describes (its traceback where it gives one)."""
    name = getattr(excinfo.type, "__name__", None) or "Exception"
    text = (
        getattr(excinfo, "errdisplay", None)
        or getattr(excinfo, "formatted", None)
        or f"{name}: {excinfo.msg}"
    )
    return Failure(str(name), str(text))


_loaded: Interpreters | str | None = None


def primitives() -> Interpreters | str:
    """The interpreter primitives of this Python (loaded once), or why it has none."""
    global _loaded
    if _loaded is None:
        _loaded = Interpreters.load()
    return _loaded


def require_interpreters() -> None:
    """Raise ``BackendUnavailable`` unless this Python can run interpreter workers."""
    loaded = primitives()
    if isinstance(loaded, str):
        raise BackendUnavailable("interpreters", loaded, HOW)
