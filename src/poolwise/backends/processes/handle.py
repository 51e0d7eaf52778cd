"""The parent's handle on one worker process: its pipes, its clock slot, what it holds.

Everything here runs in the parent, on the dispatcher thread. The parent's pipe ends are
non-blocking: ``write()`` sends what the pipe takes and keeps the rest, ``read()`` returns
the frames that are complete.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
from typing import TYPE_CHECKING, Any

from ..child import frames as _frames
from ..child import process_worker as _worker

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from ..packing import Job

__all__ = ["READ_SIZE", "WorkerHandle", "WorkerRecipe"]

#: Bytes read from a result pipe per wake-up (1 MiB: a guess, large enough for most chunks).
READ_SIZE = 1 << 20
#: Buffers handed to one writev call (Linux takes up to 1024; 64 keeps each call short).
_WRITEV_BUFFERS = 64


class WorkerRecipe:
    """How a pool starts its workers: the multiprocessing context, the Process class
    (``popen.worker_process_class``), the pickled ``(initializer, initargs)`` and the
    native thread limit (the variables to set, the width to apply: ``native_threads.py``)."""

    __slots__ = ("context", "initializer", "native_environment", "native_width", "process_class")

    def __init__(
        self,
        context: Any,
        process_class: type[BaseProcess],
        initializer: bytes | None,
        native_environment: dict[str, str] | None = None,
        native_width: int | None = None,
    ) -> None:
        self.context = context
        self.process_class = process_class
        self.initializer = initializer
        self.native_environment = native_environment or {}
        self.native_width = native_width


class WorkerHandle:
    """One worker process as the pool sees it."""

    __slots__ = (
        "assigned",
        "exitcode",
        "gone",
        "kill_at",
        "outbox",
        "parser",
        "pid",
        "process",
        "result_conn",
        "retiring",
        "running",
        "state",
        "stop_sent",
        "stopping_task",
        "task_conn",
        "tokens",
        "watching_writes",
    )

    def __init__(
        self,
        process: BaseProcess,
        task_conn: Connection,
        result_conn: Connection,
        state: Any,
    ) -> None:
        self.process = process
        self.pid = process.pid or -1
        self.task_conn = task_conn
        self.result_conn = result_conn
        #: Shared with the worker: (chunk id, position, start time) of the running task.
        self.state = state
        self.outbox: collections.deque[bytes | memoryview] = collections.deque()
        self.parser = _frames.FrameParser()
        #: Jobs sent to it, in order; the first one is running (or about to).
        self.running: collections.deque[Job] = collections.deque()
        #: Function tokens it has received.
        self.tokens: set[int] = set()
        #: Tasks given to it so far (for max_tasks_per_worker).
        self.assigned = 0
        self.retiring = False
        self.stop_sent = False
        self.gone = False
        self.watching_writes = False
        self.exitcode: int | None = None
        #: (chunk id, position) of the task it is being stopped for (timeout), if any.
        self.stopping_task: tuple[int, int] | None = None
        #: When to send SIGKILL if SIGTERM has not ended it.
        self.kill_at: float | None = None

    @classmethod
    def start(cls, recipe: WorkerRecipe, name: str) -> WorkerHandle:
        """Start a worker process with its two pipes and its shared clock slot."""
        context = recipe.context
        task_reader, task_writer = context.Pipe(duplex=False)
        result_reader, result_writer = context.Pipe(duplex=False)
        state = context.RawArray("d", _worker.STATE_SIZE)
        state[_worker.STATE_CHUNK] = -1
        process = recipe.process_class(
            target=_worker.main,
            args=(
                task_reader,
                result_writer,
                state,
                os.getpid(),
                recipe.initializer,
                logging.getLogger().getEffectiveLevel(),
                recipe.native_environment,
                recipe.native_width,
            ),
            name=name,
        )
        process.start()
        # The child has its ends now; closing ours lets EOF tell us when it is gone.
        task_reader.close()
        result_writer.close()
        os.set_blocking(task_writer.fileno(), False)
        os.set_blocking(result_reader.fileno(), False)
        return cls(process, task_writer, result_reader, state)

    def queue(self, *buffers: bytes | memoryview) -> None:
        """Add buffers to send, in order; ``write()`` sends them."""
        self.outbox.extend(buffers)

    def write(self) -> bool:
        """Send what the pipe takes now; True if something is left to send."""
        outbox = self.outbox
        fd = self.task_conn.fileno()
        while outbox:
            try:
                written = os.writev(fd, list(itertools.islice(outbox, _WRITEV_BUFFERS)))
            except BlockingIOError:
                break
            except (BrokenPipeError, ConnectionResetError):
                outbox.clear()  # the worker is gone; its sentinel will tell
                break
            while written:
                head = outbox[0]
                if written >= len(head):
                    written -= len(head)
                    outbox.popleft()
                else:
                    outbox[0] = memoryview(head)[written:]
                    written = 0
        return bool(outbox)

    def read(self) -> list[tuple[int, int, bytes]] | None:
        """The frames completed by what can be read now; None when the pipe is closed."""
        try:
            data = os.read(self.result_conn.fileno(), READ_SIZE)
        except BlockingIOError:
            return []
        except OSError:
            return None
        return self.parser.feed(data) if data else None

    def drain(self) -> list[tuple[int, int, bytes]]:
        """The last frames a dead worker wrote before it died."""
        frames: list[tuple[int, int, bytes]] = []
        while True:
            more = self.read()
            if not more:
                return frames
            frames.extend(more)

    def running_task(self) -> tuple[int, int, float] | None:
        """(chunk id, position, start time) of the task it runs now, read consistently.

        The chunk id is -1 while it runs nothing; None if the slot changed while being read
        (look again soon).
        The worker writes the start time before the position, so two equal reads of the
        position around the start time belong together.
        """
        state = self.state
        chunk_id = state[_worker.STATE_CHUNK]
        position = state[_worker.STATE_POSITION]
        started = state[_worker.STATE_STARTED]
        if (position, chunk_id) != (
            state[_worker.STATE_POSITION],
            state[_worker.STATE_CHUNK],
        ):
            return None
        return int(chunk_id), int(position), float(started)

    def close(self) -> None:
        """Close its pipes and release the process object (after it exited)."""
        self.outbox.clear()
        self.task_conn.close()
        self.result_conn.close()
        self.process.close()
