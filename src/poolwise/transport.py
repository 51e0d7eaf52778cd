"""How functions, arguments, results and exceptions travel between processes.

Everything goes through cloudpickle with pickle protocol 5, so lambdas, closures and
functions defined in ``__main__`` or a notebook travel by value in every start method.
(Measured on 20,000 small tuples: cloudpickle 0.82 ms, pickle 0.85 ms, so one pickler serves
all.) When pickling fails, ``find_unpicklable`` walks the object to name the culprit and
where it sits, for ``NotPicklable``.

This module is imported by worker processes: stdlib, cloudpickle and ``errors`` only.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from typing import TYPE_CHECKING, Any

import cloudpickle

from .errors import NotPicklable, RemoteError, RemoteTraceback

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "BIG_BUFFER",
    "ExceptionPayload",
    "Unsent",
    "dumps",
    "dumps_apart",
    "dumps_or_raise",
    "find_unpicklable",
    "load_exception",
    "loads",
    "pack_exception",
    "type_name",
]

PROTOCOL = 5
#: Modules registered with cloudpickle to travel by value (``_main_by_value``).
_BY_VALUE: set[ModuleType] = set()
#: Buffers of this many bytes or more (NumPy arrays, bytes, bytearray) travel to a process
#: worker apart from the pickle, through shared memory, instead of through the pipe (a
#: guess at where a copy into a segment beats two copies and a stream of syscalls: at 1 MiB
#: both take well under a millisecond).
BIG_BUFFER = 1 << 20
#: How deep ``dumps_apart`` looks for big bytes and bytearrays in containers: a map's
#: tasks are list -> (args, kwargs) -> args -> a user's list or dict -> the bytes.
_BYTES_DEPTH = 5
#: How deep ``find_unpicklable`` looks into containers and attributes (a guess; deeper
#: structures are reported at this depth, which still names the container).
_SEARCH_DEPTH = 8


def dumps(obj: object) -> bytes:
    """Pickle ``obj`` with cloudpickle (protocol 5)."""
    _main_by_value()
    return cloudpickle.dumps(obj, protocol=PROTOCOL)  # type: ignore[no-any-return]


def _main_by_value() -> None:
    """Send what ``__mp_main__`` defines by value, as cloudpickle does for ``__main__``.

    In a child that multiprocessing started with spawn or forkserver, the parent's script
    runs as ``__mp_main__``; cloudpickle would send its functions by name, and a poolwise
    worker (which never runs that script) could not find them (#15).
    """
    module = sys.modules.get("__mp_main__")
    if module is None or module.__name__ != "__mp_main__" or module in _BY_VALUE:
        return
    cloudpickle.register_pickle_by_value(module)
    _BY_VALUE.add(module)


def loads(data: bytes | memoryview, buffers: list[memoryview] | None = None) -> Any:
    """Unpickle what ``dumps`` (or ``dumps_apart``, with its buffers) made."""
    return pickle.loads(data, buffers=buffers)


def dumps_apart(obj: object) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Pickle ``obj`` with its big buffers left out (protocol 5 out-of-band buffers).

    NumPy arrays hand their memory to the pickler as a buffer; ``bytes`` and ``bytearray``
    never do (the pickler writes them itself), so a pickle that came out big is made again
    with the big ones wrapped to travel apart too (the worker gets a copy of the same type).
    """
    _main_by_value()
    buffers: list[pickle.PickleBuffer] = []

    def keep_apart(buffer: pickle.PickleBuffer) -> bool:
        if memoryview(buffer).nbytes < BIG_BUFFER:
            return True  # in the pickle
        buffers.append(buffer)
        return False

    data: bytes = cloudpickle.dumps(obj, protocol=PROTOCOL, buffer_callback=keep_apart)
    if len(data) >= BIG_BUFFER:
        wrapped = _wrap_big_bytes(obj, _BYTES_DEPTH)
        if wrapped is not obj:
            buffers.clear()
            data = cloudpickle.dumps(wrapped, protocol=PROTOCOL, buffer_callback=keep_apart)
    return data, buffers


class _Apart:
    """Pickles a big ``bytes``/``bytearray`` as an out-of-band buffer of the same type."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data

    def __reduce__(self) -> tuple[type, tuple[pickle.PickleBuffer]]:
        return type(self.data), (pickle.PickleBuffer(self.data),)


def _wrap_big_bytes(obj: Any, depth: int) -> Any:
    """``obj`` with big bytes and bytearrays wrapped in ``_Apart`` (the same object when
    there are none, so the caller can tell)."""
    kind = type(obj)
    if kind is bytes or kind is bytearray:
        return _Apart(obj) if len(obj) >= BIG_BUFFER else obj
    if depth == 0:
        return obj
    if kind is list or kind is tuple:
        items = [_wrap_big_bytes(item, depth - 1) for item in obj]
        if all(new is old for new, old in zip(items, obj, strict=True)):
            return obj
        return items if kind is list else tuple(items)
    if kind is dict:
        values = {key: _wrap_big_bytes(value, depth - 1) for key, value in obj.items()}
        if all(values[key] is value for key, value in obj.items()):
            return obj
        return values
    return obj


def type_name(obj: object) -> str:
    """``module.QualName`` of the object's type, as users see it in tracebacks."""
    kind = type(obj)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _children(obj: object, where: str) -> list[tuple[str, object]]:
    if isinstance(obj, (tuple, list)):
        return [(f"{where}[{i}]", item) for i, item in enumerate(obj)]
    if isinstance(obj, dict):
        return [(f"{where}[{key!r}]", value) for key, value in obj.items()]
    if isinstance(obj, (set, frozenset)):
        return [(f"{where}{{...}}", item) for item in obj]
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        return [(f"{where}.{name}", value) for name, value in attributes.items()]
    return []


def find_unpicklable(obj: object, where: str, depth: int = 0) -> NotPicklable | None:
    """The innermost part of ``obj`` that cannot be pickled, as a ``NotPicklable``, or None.

    ``where`` names ``obj`` (for example ``"input #3 args"``); children extend it with
    ``[1]``, ``['key']`` or ``.attribute``, giving ``input #3 args[1]['lock']``.
    """
    try:
        dumps(obj)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:
        return None
    # An object that pickles itself (its own __reduce__) failed for its own reason, which
    # names the problem better than any of its parts would.
    reduces_itself = getattr(type(obj), "__reduce__", None) is not object.__reduce__
    if depth < _SEARCH_DEPTH and not reduces_itself:
        for child_where, child in _children(obj, where):
            found = find_unpicklable(child, child_where, depth + 1)
            if found is not None:
                return found
    return NotPicklable(where, type_name(obj), reason)


def dumps_or_raise(obj: object, where: str) -> bytes:
    """``dumps(obj)``, or raise ``NotPicklable`` naming the part that failed."""
    try:
        return dumps(obj)
    except Exception as exc:
        error = find_unpicklable(obj, where)
        if error is None:  # fails as a whole though every part pickles alone
            error = NotPicklable(where, type_name(obj), f"{type(exc).__name__}: {exc}")
        raise error from exc


#: An exception on its way back: pickled exception (None if it would not pickle), type
#: name, message and traceback text, so the caller gets *something* whatever happens.
ExceptionPayload = tuple[bytes | None, str, str, str]


def pack_exception(exc: BaseException) -> ExceptionPayload:
    """Prepare a task's exception for the trip back to the caller."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    data: bytes | None
    try:
        data = dumps(exc)
        try:
            loads(data)  # an __init__ of its own (MyErr(code, detail)) fails here...
        except Exception:  # ...so it travels as its args and attributes
            data = dumps(_Rebuild(exc))
    except Exception:
        data = None
    try:
        message = str(exc)
    except Exception:
        message = "<str() of the exception failed>"
    return (data, type_name(exc), message, text)


def load_exception(payload: ExceptionPayload) -> BaseException:
    """Rebuild a task's exception, with the worker's traceback as ``__cause__``.

    If the exception cannot be rebuilt here, a ``RemoteError`` carries its type name,
    message and traceback text instead.
    """
    data, name, message, text = payload
    exc: BaseException | None = None
    if data is not None:
        try:
            exc = loads(data)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(name, message, text)
    exc.__cause__ = RemoteTraceback(f'\n"""\n{text}"""')
    return exc


class _Rebuild:
    """Pickles an exception as its class, ``args`` and attributes, without calling its
    ``__init__``: pickle's default calls ``cls(*args)``, which fails for a class whose
    ``__init__`` takes other arguments than it passes to ``Exception.__init__`` (#15)."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        exc = self.exc
        return (_rebuilt, (type(exc), exc.args, dict(getattr(exc, "__dict__", {}))))


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """The exception ``_Rebuild`` pickled, of its own class, with its args and attributes."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class Unsent:
    """Stands in a chunk for a task whose arguments could not be pickled.

    The worker raises ``error`` as that task's outcome, so the chunk keeps its order and
    the other tasks still run.
    """

    __slots__ = ("error",)

    def __init__(self, error: NotPicklable) -> None:
        self.error = error

    def __reduce__(self) -> tuple[type[Unsent], tuple[NotPicklable]]:
        return (Unsent, (self.error,))
