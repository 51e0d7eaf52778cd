"""Type aliases shared by the pool and the backends."""

from __future__ import annotations

from typing import Any, TypeAlias

__all__ = ["Task"]

#: One call: positional and keyword arguments for the function.
Task: TypeAlias = tuple[tuple[Any, ...], dict[str, Any]]
