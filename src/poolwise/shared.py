"""``share()``: a NumPy array or a buffer in shared memory, handed to process workers as a
view of the same pages instead of a pickled copy.

    parent: share(array) ──copy once──> /dev/shm/poolwise-<pid>-<id> ── Shared.value
                                               │ mapped, not copied
    worker: pickled Shared (a name) ──attach──> ndarray / memoryview over those pages

A ``Shared`` pickles to its segment's name and layout, a few dozen bytes, so a task
carrying one costs a process nothing to send. Each worker maps a segment once and keeps
it until the parent frees it. Read-only unless ``writable=True``: then a worker's writes
are the parent's too. Threads and serial runs get ``Shared.value`` itself.

Segments are registered with multiprocessing's resource tracker, a separate process that
unlinks them if the parent dies without doing so (even by SIGKILL), so nothing is left in
/dev/shm. Attaching in a worker registers nothing (the tracker is shared with the parent:
a worker's unregister would drop the parent's registration). A segment freed by a
finalizer tells the tracker later (see ``_untrack_later``).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib
import mmap
import os
import secrets
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "SEGMENT_PREFIX",
    "Segment",
    "Shared",
    "attach",
    "create_segment",
    "forget_unlinked",
    "segment_exists",
    "share",
]

#: Names of the segments poolwise creates start with this (after the pid), so a leak
#: check can tell them from other programs' segments.
SEGMENT_PREFIX = "poolwise-"
#: Segments a worker keeps mapped at most; the least recently used is dropped first.
ATTACHED_MAX = 64

_SUPPORTED = "a NumPy array, bytes, bytearray or memoryview"
#: memoryview formats ``memoryview.cast`` can rebuild from bytes: one native item each.
_CASTABLE = "bBhHiIlLqQnNfd?cP"


def _posixshmem() -> Any:
    try:
        return importlib.import_module("_posixshmem")
    except ImportError:  # pragma: no cover - Windows: no POSIX shared memory
        from .errors import BackendUnavailable

        raise BackendUnavailable(
            "share", "POSIX shared memory is missing here", "run on Linux or macOS"
        ) from None


class Segment:
    """A shared-memory segment this process created: its name, size and mapping."""

    __slots__ = ("__weakref__", "mapping", "name", "size", "unlinked")

    def __init__(self, name: str, size: int, mapping: mmap.mmap) -> None:
        self.name = name
        self.size = size
        self.mapping = mapping
        self.unlinked = False

    def unlink(self) -> None:
        """Remove the name (no new attachments); the pages live while something maps them.

        Safe in a finalizer: the resource tracker hears of it later (``_untrack_later``).
        """
        if self.unlinked:
            return
        self.unlinked = True
        with contextlib.suppress(FileNotFoundError):
            _posixshmem().shm_unlink(self.name)
        _untrack_later(self.name)

    def release(self) -> None:
        """Unlink, and unmap here unless views of it are still alive (they keep it)."""
        self.unlink()
        # A view (an array a task returned, say) may still use it: then GC unmaps it.
        with contextlib.suppress(BufferError):
            self.mapping.close()


#: Segments unlinked whose resource-tracker registration is still to drop. Segments are
#: often freed by finalizers (a ``Shared`` or a map's job garbage-collected), and a
#: collection can run while this very thread is inside a resource-tracker call (in
#: ``register`` below, say): calling the tracker then is a reentrant call it refuses
#: (Python 3.13: "ResourceTracker called reentrantly ... might leak"; seen on a
#: free-threaded build, #16). So ``unlink`` only queues the name (a deque: no lock a
#: finalizer could deadlock on), and ``create_segment``, ``Shared.close`` and exit tell
#: the tracker. Until then the tracker holds a name that no longer exists: harmless.
_untracked: collections.deque[str] = collections.deque()
_untrack_at_exit = False


def _untrack_later(name: str) -> None:
    global _untrack_at_exit
    _untracked.append(name)
    if not _untrack_at_exit:
        _untrack_at_exit = True
        atexit.register(untrack_unlinked)


def untrack_unlinked() -> None:
    """Tell the resource tracker about the segments unlinked since the last call (never
    from a finalizer: see ``_untracked``)."""
    if not _untracked:  # the usual case, once per finished chunk: no import, no loop
        return
    from multiprocessing import resource_tracker

    while True:
        try:
            name = _untracked.popleft()
        except IndexError:
            return
        resource_tracker.unregister(name, "shared_memory")


def create_segment(size: int, contents: memoryview | None = None) -> Segment:
    """A new segment of ``size`` bytes, registered for cleanup, holding ``contents`` (bytes,
    written through the file: ~2-3x faster than copying into a fresh mapping, which takes a
    page fault per 4 KiB) or reserved now; either way a full /dev/shm is an ``OSError`` here,
    not a SIGBUS at the first write."""
    from multiprocessing import resource_tracker

    untrack_unlinked()
    shm = _posixshmem()
    size = max(1, size)
    name = f"/{SEGMENT_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    fd = shm.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        os.ftruncate(fd, size)
        if contents is not None and contents.nbytes:
            _write_all(fd, contents)
        elif hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)
        mapping = mmap.mmap(fd, size)
    except OSError as exc:
        shm.shm_unlink(name)
        raise OSError(
            exc.errno,
            f"cannot make a {size:,}-byte shared-memory segment ({exc.strerror}); "
            "/dev/shm may be too small (Docker: --shm-size)",
        ) from None
    finally:
        os.close(fd)
    resource_tracker.register(name, "shared_memory")
    return Segment(name, size, mapping)


def _write_all(fd: int, contents: memoryview) -> None:
    view = contents.cast("B") if contents.format != "B" or contents.ndim != 1 else contents
    while view.nbytes:
        view = view[os.write(fd, view) :]


def segment_exists(name: str) -> bool:
    """Whether the segment still has its name (the parent has not freed it)."""
    try:
        fd = _posixshmem().shm_open(name, os.O_RDONLY, mode=0o600)
    except FileNotFoundError:
        return False
    os.close(fd)
    return True


def map_segment(name: str, size: int, *, writable: bool) -> mmap.mmap:
    """Map an existing segment, shared (writes reach everyone) or read-only.

    A chunk's big buffers are mapped copy-on-write instead, by the worker
    (``backends.child.segments.map_buffers``).
    """
    flags = os.O_RDWR if writable else os.O_RDONLY
    fd = _posixshmem().shm_open(name, flags, mode=0o600)
    try:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        return mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot)
    finally:
        os.close(fd)


# -- the worker's side: segments mapped by name, kept while the parent keeps them ----------

_attached: collections.OrderedDict[tuple[str, bool], memoryview] = collections.OrderedDict()
_attached_lock = threading.Lock()


def _mapped(name: str, size: int, writable: bool) -> memoryview:
    key = (name, writable)
    with _attached_lock:
        view = _attached.get(key)
        if view is not None:
            _attached.move_to_end(key)
            return view
    try:
        mapping = map_segment(name, size, writable=writable)
    except FileNotFoundError:
        raise RuntimeError(
            f"shared object {name} was closed before this task could use it; keep the Shared "
            "open (or referenced) until the tasks that use it are done"
        ) from None
    view = memoryview(mapping)
    if not writable:
        view = view.toreadonly()
    with _attached_lock:
        _attached[key] = view
        while len(_attached) > ATTACHED_MAX:
            _attached.popitem(last=False)
    return view


def forget_unlinked() -> None:
    """Drop the mappings of segments the parent has freed (a worker calls this between
    chunks); the pages go once no task's array uses them."""
    with _attached_lock:
        names = list(_attached)
    gone = [key for key in names if not segment_exists(key[0])]
    if gone:
        with _attached_lock:
            for key in gone:
                _attached.pop(key, None)


#: (segment name, bytes, kind, dtype, shape, order, writable): what a Shared pickles to.
_Spec = tuple[str, int, str, Any, tuple[int, ...], str, bool]


def attach(spec: _Spec) -> Any:
    """The value a pickled ``Shared`` stands for, over the mapped segment (no copy)."""
    name, nbytes, kind, dtype, shape, order, writable = spec
    view = _mapped(name, max(1, nbytes), writable)
    if kind == "bytes":
        return _shaped(view[:nbytes], (dtype, shape, order))
    numpy: Any = importlib.import_module("numpy")
    return numpy.ndarray(shape, dtype=numpy.dtype(dtype), buffer=view, order=order)


# -- the parent's side --------------------------------------------------------------------


class Shared:
    """An array or buffer in shared memory: pass it to tasks in place of the object.

    Process workers receive ``value`` as a view of the same memory (no pickling, no copy);
    threads and serial runs receive ``value`` itself. Use one ``Shared`` in as many tasks,
    maps and pools as you like; it is freed by ``close()`` (or leaving a ``with`` block),
    or when garbage-collected, and by the resource tracker if this process dies.

    .. versionadded:: 0.1
    """

    def __init__(self, segment: Segment, spec: _Spec, value: Any) -> None:
        self._segment = segment
        self._spec = spec
        self._value = value
        self._finalizer = weakref.finalize(self, segment.release)

    @property
    def value(self) -> Any:
        """The shared data: a NumPy array for an array, else a ``memoryview`` of bytes
        (read-only unless shared with ``writable=True``)."""
        if not self._finalizer.alive:
            raise ValueError(f"{self!r} is closed")
        return self._value

    @property
    def name(self) -> str:
        """The shared-memory segment's name (``/dev/shm/<name>`` on Linux)."""
        return self._segment.name.lstrip("/")

    @property
    def nbytes(self) -> int:
        return self._spec[1]

    @property
    def writable(self) -> bool:
        return self._spec[6]

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Free the shared memory (workers' views of it stay valid until they drop them)."""
        self._value = None
        self._finalizer()
        untrack_unlinked()

    def __enter__(self) -> Shared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Callable[[_Spec], Any], tuple[_Spec]]:
        if self.closed:
            raise ValueError(f"{self!r} is closed: it cannot be sent to a worker")
        return attach, (self._spec,)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        """``numpy.asarray(shared)`` is the shared array itself (no copy)."""
        import numpy

        value = numpy.asarray(self.value)
        return value if dtype is None else value.astype(dtype, copy=bool(copy))

    def __repr__(self) -> str:
        _, nbytes, kind, dtype, shape, _, writable = self._spec
        what = f"ndarray {dtype} {shape}" if kind == "ndarray" else f"{nbytes:,} bytes"
        state = "closed" if self.closed else ("writable" if writable else "read-only")
        return f"<poolwise.Shared {what} {state}>"


def share(obj: Any, *, writable: bool = False) -> Shared:
    """Copy ``obj`` (a NumPy array, bytes, bytearray or memoryview) into shared memory once,
    so that process workers read it in place.

    Args:
        obj: the data. An array keeps its dtype, shape and memory order (C or Fortran; a
            non-contiguous view is stored contiguously).
        writable: let tasks write into it; a process worker's writes are then seen by
            the parent in ``Shared.value``.

    Raises:
        TypeError: ``obj`` is of another type, or an array of Python objects.
        OSError: /dev/shm has no room for it.

    .. versionadded:: 0.1
    """
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ndarray):
        if type(obj) is not numpy.ndarray:
            kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
            raise TypeError(
                f"share() takes a plain numpy.ndarray, not the subclass {kind}: it would come "
                "back as a plain ndarray, without what the subclass adds (a mask, matrix "
                "products); share the arrays it is made of (numpy.asarray(obj), its mask) and "
                "rebuild it in the task"
            )
        return _share_array(numpy, obj, writable)
    if isinstance(obj, bytes | bytearray | memoryview):
        return _share_bytes(obj, writable)
    raise TypeError(
        f"share() takes {_SUPPORTED}, not {type(obj).__module__}.{type(obj).__qualname__}; "
        "pass other objects to tasks as they are (they are pickled for each task)"
    )


def _share_array(numpy: Any, array: Any, writable: bool) -> Shared:
    if array.dtype.hasobject:
        raise TypeError(
            f"share() cannot place an array of dtype {array.dtype} in shared memory: it "
            "holds pointers to Python objects; pass it to tasks as it is"
        )
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    # A contiguous array's bytes go in as they lie (an F-ordered one is its transpose's C
    # bytes); any other is copied item by item into the segment's view.
    flat = array if order == "C" else array.T
    contiguous = flat.flags.c_contiguous
    contents = memoryview(flat.reshape(-1).view(numpy.uint8)) if contiguous else None
    segment = create_segment(array.nbytes, contents)
    value = numpy.ndarray(array.shape, dtype=array.dtype, buffer=segment.mapping, order=order)
    if not contiguous:
        value[...] = array
    if not writable:
        value.flags.writeable = False
    spec: _Spec = (
        segment.name,
        array.nbytes,
        "ndarray",
        array.dtype.str if array.dtype.fields is None else array.dtype.descr,
        tuple(array.shape),
        order,
        writable,
    )
    return Shared(segment, spec, value)


def _share_bytes(data: bytes | bytearray | memoryview, writable: bool) -> Shared:
    source = memoryview(data)
    layout = _layout(source)
    if not source.c_contiguous:
        source = memoryview(source.tobytes())
    source = source.cast("B")
    segment = create_segment(source.nbytes, source)
    view = memoryview(segment.mapping)[: source.nbytes]
    if not writable:
        view = view.toreadonly()
    spec: _Spec = (segment.name, source.nbytes, "bytes", *layout, writable)
    return Shared(segment, spec, _shaped(view, layout))


def _layout(view: memoryview) -> tuple[str, tuple[int, ...], str]:
    """(format, shape, "C") of a memoryview, as ``memoryview.cast`` can rebuild it.

    Raises ``TypeError`` for a layout cast cannot make (a struct of several fields, an
    explicit byte order): a flat byte view would be a silent change (#15).
    """
    fmt = view.format.removeprefix("@")
    if view.ndim <= 1 and fmt == "B":
        return "", (view.nbytes,), "C"
    if len(fmt) != 1 or fmt not in _CASTABLE:
        raise TypeError(
            f"share() cannot keep a memoryview of format {view.format!r}: memoryview.cast "
            f"rebuilds only one native item ({_CASTABLE}); share a NumPy array "
            "(numpy.asarray(view)) or the bytes (view.cast('B'))"
        )
    return fmt, tuple(view.shape or ()), "C"


def _shaped(view: memoryview, layout: tuple[str, tuple[int, ...], str]) -> memoryview:
    """A byte view cast back to the shared memoryview's item format and shape."""
    fmt, shape, _ = layout
    if not fmt:
        return view
    return view.cast(fmt, shape)  # type: ignore[call-overload,no-any-return]
