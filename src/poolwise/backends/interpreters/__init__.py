"""mode="interpreters": one isolated subinterpreter per worker thread (Python 3.13+)."""

from .backend import (
    InterpreterBackend,
    Interpreters,
    primitives,
    require_interpreters,
    why_unavailable,
)

__all__ = [
    "InterpreterBackend",
    "Interpreters",
    "primitives",
    "require_interpreters",
    "why_unavailable",
]
