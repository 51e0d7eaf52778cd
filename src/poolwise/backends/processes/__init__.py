"""mode="processes": worker processes fed through pipes by one dispatcher thread."""

from .backend import ProcessBackend

__all__ = ["ProcessBackend"]
