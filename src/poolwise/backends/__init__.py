"""Where tasks run: one module per mode, loaded only when that mode is asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Backend

__all__ = ["MODES", "backend_class"]

#: Every mode name the API accepts, in the order the docs list them.
MODES = ("auto", "serial", "threads", "processes", "interpreters", "async", "dask")


def backend_class(mode: str) -> type[Backend]:
    """The backend class for ``mode``; ``BackendUnavailable`` if it cannot run here."""
    if mode == "serial":
        from .serial import SerialBackend

        return SerialBackend
    if mode == "threads":
        from .threads import ThreadBackend

        return ThreadBackend
    if mode == "processes":
        from .processes import ProcessBackend

        return ProcessBackend
    if mode == "interpreters":
        from .interpreters import InterpreterBackend, require_interpreters

        require_interpreters()
        return InterpreterBackend
    if mode == "async":
        from .aio import AsyncBackend

        return AsyncBackend
    if mode == "dask":
        from .dask import DaskBackend, require_distributed

        require_distributed()
        return DaskBackend
    if mode == "auto":
        raise ValueError("mode='auto' is not a backend: the pool measures, then uses one")
    raise ValueError(f"mode={mode!r} is not a mode; use one of {', '.join(map(repr, MODES))}")
