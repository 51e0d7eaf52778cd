"""Memory sharing: a worker changes a shared object; who sees the change, and what a copy costs.

The seed says memory is not shared between processes and is shared between threads. Measured
here with poolwise pools of one worker: the worker appends to a module-level list and writes
into a ``bytearray`` it was given, and the parent looks at both. A thread changes the
parent's own objects; a process (fork, spawn or forkserver) changes its copy, so the parent
sees nothing. A third kind, processes given a ``poolwise.share(..., writable=True)`` buffer,
shows that processes can share memory when they ask for it.

What "not shared" costs is the second half: the time to hand a large buffer to a worker and
get its checksum back, from a thread (no copy), a process (the buffer is copied: poolwise
sends big buffers through a fresh shared-memory segment, and the worker makes its own
``bytes`` of it) and a process given the buffer ``share()``d (no copy).
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..shared import SEGMENT_PREFIX, share
from .base import Measurement, Verdict, near

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..pool import Pool
    from .base import LabSettings

__all__ = ["EXPERIMENT", "MemorySharingExperiment", "Sharing"]

#: Size of the buffer handed to a worker (MB). 64 MB is large enough that the copy dominates
#: the checksum (measured on 2 cores: zlib.crc32 of 64 MB in 0.03 s, the copy to a process
#: ~0.2 s) and small enough for any machine the lab runs on; the full lab doubles it.
QUICK_BUFFER_MB = 64
FULL_BUFFER_MB = 128
#: The verdict is "depends" (not "holds") only if the shared block hands the buffer over at
#: least this many times faster than the copy: then sharing is a real option a program can
#: take, and "not shared" is a default rather than a law. A guess: 2x is well under the ~4x
#: measured for 64 MB on 2 cores, and above what noise between two runs gives.
SHARED_SAVING_FACTOR = 2.0
#: Shared-memory segments (``share()``'s and the big-buffer transport's) are named with this
#: prefix, so a leak (a segment left in /dev/shm) is easy to find and to test for.
SHM_PREFIX = SEGMENT_PREFIX
#: Keep this many MB free in /dev/shm beyond the block (a full tmpfs gives SIGBUS on write;
#: Docker's default /dev/shm is only 64 MB).
SHM_HEADROOM_MB = 16

_SAW = ": parent saw the write"
_HAND_OVER = ": hand-over s"


@dataclass(frozen=True)
class Sharing:
    """Who saw a worker's writes ("yes", "no" or "partly") and what a hand-over took (s)."""

    buffer_mb: int
    threads_saw: str
    threads_hand_over_s: float
    #: By start method, e.g. {"fork": "no", "spawn": "no"}, the default method last.
    processes_saw: dict[str, str] = field(default_factory=dict)
    #: The default start method, whose pool also timed the copy and the shared block.
    start_method: str = ""
    copy_hand_over_s: float = 0.0
    #: Also "unavailable" where no shared memory could be made; None if not tried.
    shared_saw: str | None = None
    #: None where /dev/shm had no room for the buffer.
    shared_hand_over_s: float | None = None

    def figures(self) -> dict[str, float | str]:
        """The answers and times by name, for people."""
        figures: dict[str, float | str] = {
            "buffer MB": self.buffer_mb,
            "threads" + _SAW: self.threads_saw,
            "threads" + _HAND_OVER: self.threads_hand_over_s,
        }
        for method, saw in self.processes_saw.items():
            figures[f"processes ({method}){_SAW}"] = saw
        if self.start_method:
            figures["processes: start method"] = self.start_method
            figures["processes, copy" + _HAND_OVER] = self.copy_hand_over_s
        if self.shared_saw is not None:
            figures["processes with share()" + _SAW] = self.shared_saw
        if self.shared_hand_over_s is not None:
            figures["processes, share()" + _HAND_OVER] = self.shared_hand_over_s
        return figures


#: Markers appended by ``_write``. In a thread this is the parent's list; in a process, the
#: worker's own copy of this module's list.
_SEEN: list[str] = []


def _write(marker: str, buffer: bytearray) -> int:
    """A worker's change to two shared objects: a module-level list and its argument."""
    _SEEN.append(marker)
    buffer[0] = 1
    return os.getpid()


def _write_first(buffer: Any) -> int:
    """A worker's write into a buffer it was handed (a ``share()``d one, here)."""
    buffer[0] = 1
    return os.getpid()


def _checksum(data: Any) -> int:
    """What the worker does with the buffer it was handed (bytes or a shared memoryview):
    read all of it."""
    return zlib.crc32(data)


def _saw(seen: list[bool]) -> str:
    """The parent's answer: "yes" when it saw every write, "no" when none, else "partly"."""
    if all(seen):
        return "yes"
    return "no" if not any(seen) else "partly"


def _write_seen(pool: Pool) -> str:
    """Have one worker of ``pool`` change a module list and a bytearray; did the parent see?"""
    marker = secrets.token_hex(8)
    buffer = bytearray(1)
    try:
        pool.submit(_write, marker, buffer).result()
        return _saw([marker in _SEEN, buffer[0] == 1])
    finally:
        if marker in _SEEN:
            _SEEN.remove(marker)


def _shared_write_seen(pool: Pool) -> str:
    """Have one worker of ``pool`` write into a ``share()``d buffer; did the parent see?"""
    with share(bytearray(mmap.PAGESIZE), writable=True) as shared:
        pool.submit(_write_first, shared).result()
        return _saw([shared.value[0] == 1])


def _best_seconds(repeats: int, call: Callable[[], int], expected: int) -> float:
    """The fastest of ``repeats`` calls; each must return the checksum ``expected``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        got = call()
        elapsed = time.perf_counter() - started
        if got != expected:
            raise RuntimeError(f"a worker's checksum {got} differs from the parent's {expected}")
        best = min(best, elapsed)
    return best


def _hand_over_seconds(pool: Pool, data: bytes, repeats: int) -> float:
    """Seconds to hand ``data`` to a worker of ``pool`` and get its checksum back."""
    expected = zlib.crc32(data)
    return _best_seconds(repeats, lambda: pool.submit(_checksum, data).result(), expected)


def _shared_hand_over_seconds(pool: Pool, data: bytes, repeats: int) -> float:
    """``hand_over_seconds`` with the buffer ``share()``d instead of copied.

    It is shared before the clock starts, as a program that shares its data once and hands
    it to many tasks would; the time is the worker's attach (the first time), read and answer.
    """
    expected = zlib.crc32(data)
    with share(data) as shared:
        return _best_seconds(repeats, lambda: pool.submit(_checksum, shared).result(), expected)


def _shared(pool: Pool, data: bytes, repeats: int, notes: list[str]) -> tuple[str, float | None]:
    """Whether the parent saw a write through ``share()``, and the shared hand-over's
    seconds (None where /dev/shm has no room for ``data``); why not, in ``notes``."""
    try:
        saw = _shared_write_seen(pool)
    except OSError as exc:
        notes.append(f"no shared memory here: {exc}")
        return "unavailable", None
    free = _shm_free_mb()
    needed = len(data) / 2**20 + SHM_HEADROOM_MB
    if free is not None and free < needed:
        notes.append(
            f"/dev/shm has {free:.0f} MB free, the shared-memory hand-over needs "
            f"{needed:.0f} MB (in Docker: --shm-size=256m): not timed"
        )
        return saw, None
    return saw, round(_shared_hand_over_seconds(pool, data, repeats), 4)


def _shm_free_mb() -> float | None:
    """Free space in /dev/shm (MB), or None where there is no such folder."""
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize / 2**20


class MemorySharingExperiment:
    """Whose objects a worker changes, per kind of worker, and what a copy costs."""

    key = "memory-sharing"
    row = "Memory sharing"
    claim = (
        "Memory is not shared between processes; memory is shared between threads within a process"
    )

    def run(self, settings: LabSettings) -> Measurement[Sharing]:
        """Have a thread and each kind of process write; time handing a buffer over."""
        import poolwise
        from poolwise.system import default_start_method

        megabytes = settings.scale(QUICK_BUFFER_MB, FULL_BUFFER_MB)
        data = bytes(megabytes * 2**20)
        repeats = settings.repeats

        with poolwise.Pool("threads", 1) as pool:
            threads_saw = _write_seen(pool)
            threads_s = round(_hand_over_seconds(pool, data, repeats), 4)

        default = default_start_method()
        methods = [
            m for m in multiprocessing.get_all_start_methods() if m in ("fork", "spawn", default)
        ]
        # The default method last: its pool also times the copy and the shared block.
        methods.sort(key=lambda m: m == default)
        processes_saw: dict[str, str] = {}
        notes: list[str] = []
        for method in methods:
            with poolwise.Pool("processes", 1, start_method=method) as pool:
                processes_saw[method] = _write_seen(pool)
                if method == default:
                    copy_s = round(_hand_over_seconds(pool, data, repeats), 4)
                    shared_saw, shared_s = _shared(pool, data, repeats, notes)
        sharing = Sharing(
            buffer_mb=megabytes,
            threads_saw=threads_saw,
            threads_hand_over_s=threads_s,
            processes_saw=processes_saw,
            start_method=default,
            copy_hand_over_s=copy_s,
            shared_saw=shared_saw,
            shared_hand_over_s=shared_s,
        )
        return Measurement(sharing, notes=notes)

    def judge(self, measurement: Measurement[Sharing]) -> Verdict:
        """Holds if threads share and processes do not, unless share() pays (depends)."""
        sharing = measurement.record
        threads = sharing.threads_saw
        plain = {f"processes ({method})": saw for method, saw in sharing.processes_saw.items()}
        if not plain:
            return Verdict.depends("no process start method could be measured here")
        if threads != "yes":
            return Verdict.not_here(
                f"a thread worker's write to the parent's objects was not seen (seen: {threads})",
            )
        seen_by_parent = [kind for kind, saw in plain.items() if saw != "no"]
        if seen_by_parent:
            return Verdict.not_here(
                f"the parent saw writes made in {', '.join(seen_by_parent)}: those processes "
                "shared its memory",
            )
        megabytes = float(sharing.buffer_mb)
        thread_s = sharing.threads_hand_over_s
        copy_s = sharing.copy_hand_over_s
        methods = ", ".join(sharing.processes_saw)
        facts = (
            f"threads saw the write, processes ({methods}) did not; a {megabytes:.0f} MB "
            f"buffer reached a process worker in {copy_s:.2f} s by copy, a thread in "
            f"{thread_s:.2f} s"
        )
        shared = sharing.shared_saw
        shared_s = sharing.shared_hand_over_s
        # Rule: the row is a default, not a law ("depends"), when a process can opt into
        # sharing and it pays: its write reaches the parent through a shared block, and the
        # block hands the buffer over at least SHARED_SAVING_FACTOR times faster than the
        # copy. Shared memory that saves nothing leaves processes no better off than with
        # copies, and where there is none they cannot share at all: the row holds.
        if shared != "yes":
            if shared in ("no", "partly"):
                return Verdict.holds(f"{facts}; even a write through share() was not seen")
            return Verdict.holds(f"{facts}; no shared memory could be used here")
        if shared_s is None:
            return Verdict.holds(
                f"{facts}; a write through share() was seen, its hand-over not timed"
            )
        if shared_s * SHARED_SAVING_FACTOR <= copy_s:
            return Verdict.depends(
                f"not shared by default ({facts}); but through poolwise.share() a "
                f"process worker's write reached the parent and the buffer went over in "
                f"{shared_s:.2f} s: processes share memory when they ask",
            )
        return Verdict.holds(
            f"{facts}; share() took {shared_s:.2f} s, "
            f"no {SHARED_SAVING_FACTOR:.0f}x saving over the copy",
        )

    def near_threshold(self, measurement: Measurement[Sharing]) -> bool:
        """Whether share()'s saving over the copy sits near SHARED_SAVING_FACTOR (the lab's
        runner then measures again)."""
        sharing = measurement.record
        shared_s = sharing.shared_hand_over_s
        if sharing.shared_saw != "yes" or not shared_s:
            return False
        return near(sharing.copy_hand_over_s / shared_s, SHARED_SAVING_FACTOR)


EXPERIMENT = MemorySharingExperiment()
