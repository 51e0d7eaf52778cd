"""Log records of a process worker, handled by the parent's logging setup (#15).

A worker started by forkserver or spawn has none of the parent's handlers, so records
logged in tasks vanished (only fork inherited ``logging.basicConfig``). ``forward_logs``
makes the worker's root logger send each record, at the parent's root level or above, as
a LOG frame; the parent hands it to the logger of the same name there (``receive``), whose
level and handlers decide. Inherited handlers are removed, so a fork child does not write
a record twice. An initializer may still add handlers of its own in the worker.

Imported inside workers: stdlib and ``transport`` only.
"""

from __future__ import annotations

import logging
import logging.handlers
from typing import TYPE_CHECKING, Any

from ...transport import dumps, loads

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["forward_logs", "receive"]


class _FrameQueue:
    """What QueueHandler puts records in: here, a LOG frame to the parent."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send

    def put_nowait(self, record: logging.LogRecord) -> None:
        self._send(dumps(record.__dict__))


def forward_logs(send: Callable[[bytes], None], level: int) -> None:
    """Send this process's log records at ``level`` or above to the parent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # QueueHandler.prepare formats the message and drops args and exc_info (which may not
    # pickle), keeping the traceback as text
    root.addHandler(logging.handlers.QueueHandler(_FrameQueue(send)))  # type: ignore[arg-type]
    root.setLevel(level)


def receive(body: bytes) -> None:
    """Handle a worker's record in this process, as if logged here by the same logger."""
    fields: dict[str, Any] = loads(body)
    record = logging.makeLogRecord(fields)
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)
