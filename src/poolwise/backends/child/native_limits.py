"""In a worker process at start: narrow native (BLAS/OpenMP) thread pools as the pool said.

The parent computes the width and the variables (``poolwise.native_threads``); here they
take effect before the initializer or any task loads a library: the variables for what
loads later, threadpoolctl for what the process already has (the forkserver preloads
NumPy, a forked worker inherits the parent's). Tasks run on the worker's main thread, so
OpenMP's per-thread width set here is the one they see.

Runs in the child: imports the standard library (and threadpoolctl when needed) only.
"""

from __future__ import annotations

import os
import sys

__all__ = ["limit_native_threads"]

#: Modules that load a native thread pool (as ``poolwise.native_threads.NATIVE_MODULES``).
_NATIVE_MODULES = ("numpy", "scipy", "sklearn", "torch", "numexpr", "numba", "mkl", "cv2")


def limit_native_threads(environment: dict[str, str], width: int | None) -> None:
    """Set ``environment`` and, if a native library is loaded already, limit it to ``width``."""
    os.environ.update(environment)
    if width is None or not any(name in sys.modules for name in _NATIVE_MODULES):
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a worker without it still has the variables
        return
    threadpool_limits(limits=width)
