"""Argument checks, run before any work starts, with messages that say what is accepted."""

from __future__ import annotations

import inspect
import multiprocessing
from typing import TYPE_CHECKING, Any

from .backends import MODES

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "check_arity",
    "check_callable",
    "check_chunksize",
    "check_mode",
    "check_optional_positive_int",
    "check_retries",
    "check_start_method",
    "check_timeout",
    "check_workers",
]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_mode(mode: object) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a mode; use one of {', '.join(map(repr, MODES))}")
    return mode


def check_workers(workers: object, name: str = "workers") -> int | None:
    if workers is None:
        return None
    if not _is_int(workers):
        raise TypeError(f"{name}={workers!r} must be a whole number of workers or None")
    if workers < 1:  # type: ignore[operator]
        raise ValueError(f"{name}={workers!r} must be 1 or more (None picks from poolwise.cpus())")
    return workers  # type: ignore[return-value]


def check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout={timeout!r} must be a number of seconds or None")
    if not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be more than 0 seconds (None: no limit)")
    return float(timeout)


def check_chunksize(chunksize: object) -> int | None:
    if chunksize is None:
        return None
    if not _is_int(chunksize):
        raise TypeError(f"chunksize={chunksize!r} must be a whole number or None (automatic)")
    if chunksize < 1:  # type: ignore[operator]
        raise ValueError(f"chunksize={chunksize!r} must be 1 or more (None: automatic)")
    return chunksize  # type: ignore[return-value]


def check_retries(retries: object) -> int:
    if not _is_int(retries):
        raise TypeError(f"retries={retries!r} must be a whole number")
    if retries < 0:  # type: ignore[operator]
        raise ValueError(f"retries={retries!r} must be 0 or more")
    return retries  # type: ignore[return-value]


def check_optional_positive_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        raise ValueError(f"{name}={value!r} must be a whole number, 1 or more, or None")
    return value  # type: ignore[return-value]


def check_callable(fn: object, name: str = "fn") -> None:
    if not callable(fn):
        raise TypeError(f"{name}={fn!r} is not callable; pass a function (or any callable)")


def check_start_method(method: object) -> str | None:
    if method is None:
        return None
    methods = multiprocessing.get_all_start_methods()
    if method not in methods:
        raise ValueError(
            f"start_method={method!r} is not available here; use one of "
            f"{', '.join(map(repr, methods))} or None (forkserver where it exists)"
        )
    return str(method)


def check_arity(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise TypeError now if the first task's arguments cannot bind to ``fn``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and C functions without a signature
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"input #0 does not fit {name}{signature}: {exc}; "
            "map() passes one item from each iterable, starmap() unpacks each item"
        ) from None
