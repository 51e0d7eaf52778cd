"""Where tasks run: one module per mode, loaded only when that mode is asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BackendUnavailable

if TYPE_CHECKING:
    from .base import Backend

__all__ = ["MODES", "backend_class"]

#: Every mode name the API accepts, in the order the docs list them.
MODES = ("auto", "serial", "threads", "processes", "interpreters", "async", "dask")

_LATER = {
    "interpreters": (
        "subinterpreter workers are not built yet (issue #8)",
        "Use mode='processes' for isolated workers",
    ),
    "async": (
        "the asyncio mode is not built yet (issue #8)",
        "Use mode='threads' and call asyncio.run() inside the task, or run the coroutines "
        "with asyncio.gather()",
    ),
    "dask": (
        "the Dask cluster mode is not built yet (issue #8)",
        "Use mode='processes' on this machine, or distributed.Client.map for a cluster",
    ),
}


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
    if mode in _LATER:
        why, how = _LATER[mode]
        raise BackendUnavailable(mode, why, how)
    if mode == "auto":
        raise ValueError("mode='auto' is not a backend: the pool measures, then uses one")
    raise ValueError(f"mode={mode!r} is not a mode; use one of {', '.join(map(repr, MODES))}")
