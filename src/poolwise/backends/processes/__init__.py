"""mode="processes": worker processes fed through pipes by one dispatcher thread.

Names load on first use (as ``concurrent.futures`` loads its executors): a worker process
unpickles its ``Process`` object from ``popen.py``, and importing this package must not
pull the parent's dispatcher into every worker (it did: ~40 ms more per worker start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import ProcessBackend
    from .popen import worker_process_class

__all__ = ["ProcessBackend", "worker_process_class"]


def __getattr__(name: str) -> Any:
    if name == "ProcessBackend":
        from .backend import ProcessBackend

        return ProcessBackend
    if name == "worker_process_class":
        from .popen import worker_process_class

        return worker_process_class
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
