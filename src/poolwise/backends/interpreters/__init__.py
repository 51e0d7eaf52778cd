"""mode="interpreters": one isolated subinterpreter per worker thread (Python 3.13+).

``backend`` opens with the data flow and names the modules of this package.
"""

from .availability import (
    Interpreters,
    primitives,
    require_interpreters,
    why_unavailable,
)
from .backend import InterpreterBackend

__all__ = [
    "InterpreterBackend",
    "Interpreters",
    "primitives",
    "require_interpreters",
    "why_unavailable",
]
