"""poolwise: run a function over many inputs on threads or processes, and say why.

    import poolwise
    results = poolwise.map(fn, inputs, mode="processes")

The public API is exactly ``__all__``; module paths are not API.
"""

from __future__ import annotations

from .errors import (
    BackendUnavailable,
    InitializerFailed,
    NotPicklable,
    PoolClosed,
    PoolwiseError,
    RemoteError,
    RemoteTraceback,
    TaskTimeout,
    WorkerCrashed,
)
from .executor import Executor
from .pool import Mode, Pool
from .report import Report
from .system import cpus
from .warm import imap, map, starmap

__all__ = [
    "BackendUnavailable",
    "Executor",
    "InitializerFailed",
    "Mode",
    "NotPicklable",
    "Pool",
    "PoolClosed",
    "PoolwiseError",
    "RemoteError",
    "RemoteTraceback",
    "Report",
    "TaskTimeout",
    "WorkerCrashed",
    "cpus",
    "imap",
    "map",
    "starmap",
]

__version__ = "0.1.0.dev0"
