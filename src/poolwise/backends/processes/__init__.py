"""mode="processes": worker processes fed through pipes by one dispatcher thread."""

from .backend import ProcessBackend
from .popen import worker_process_class

__all__ = ["ProcessBackend", "worker_process_class"]
