"""Run a worker's initializer once and turn its failure into one clear error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InitializerFailed

if TYPE_CHECKING:
    from .base import WorkerOptions

__all__ = ["run_initializer"]


def run_initializer(options: WorkerOptions) -> None:
    """Call ``options.initializer(*initargs)``; raise ``InitializerFailed`` from its error."""
    if options.initializer is None:
        return
    try:
        options.initializer(*options.initargs)
    except Exception as exc:
        name = getattr(options.initializer, "__qualname__", repr(options.initializer))
        raise InitializerFailed(name, f"{type(exc).__name__}: {exc}") from exc
