"""poolwise: run a function over many inputs on threads or processes, and say why.

    import poolwise
    results = poolwise.map(fn, inputs, mode="processes")

The public API is exactly ``__all__``; module paths are not API. Names load on first use
(as ``concurrent.futures`` loads its executors), so ``import poolwise`` stays cheap, and so
does every worker process, which imports this package to reach its worker module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .executor import Executor
    from .pool import Mode, Pool
    from .profiling import Profile, profile
    from .report import Report
    from .shared import Shared, share
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
    "Profile",
    "RemoteError",
    "RemoteTraceback",
    "Report",
    "Shared",
    "TaskTimeout",
    "WorkerCrashed",
    "cpus",
    "imap",
    "map",
    "profile",
    "share",
    "starmap",
]

__version__ = "0.1.0.dev0"

#: Where each lazily loaded public name lives.
_LAZY = {
    "Executor": ".executor",
    "Mode": ".pool",
    "Pool": ".pool",
    "Profile": ".profiling",
    "profile": ".profiling",
    "Report": ".report",
    "Shared": ".shared",
    "share": ".shared",
    "cpus": ".system",
    "imap": ".warm",
    "map": ".warm",
    "starmap": ".warm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'poolwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
