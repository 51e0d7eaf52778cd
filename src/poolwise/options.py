"""A run's options, checked once before any work starts, and its inputs shaped into tasks.

Every map-like call (``Pool.map``/``imap``/``starmap``..., ``poolwise.map``..., the CLI's
``run``) turns its keyword arguments into one frozen ``RunOptions`` and its iterables into
``Inputs``; both are checked here, with messages that say what was wrong and what is
accepted, before a task runs.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import multiprocessing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypedDict

from .backends import MODES
from .backends.base import WorkerOptions
from .native_threads import check_native_threads
from .progress import ProgressOption, check_progress
from .retrying import RetryOn, RetryPolicy, check_retry_on

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ._types import Task

__all__ = [
    "NO_KWARGS",
    "Inputs",
    "MapOptions",
    "RunOptions",
    "UnorderedOptions",
    "check_arity",
    "check_callable",
    "check_chunksize",
    "check_mode",
    "check_optional_positive_int",
    "check_pool",
    "check_retries",
    "check_start_method",
    "check_timeout",
    "check_workers",
    "shape_inputs",
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
        # the stdlib's words first, for code ported from concurrent.futures
        raise ValueError(
            f"{name} must be greater than 0: {name}={workers!r} must be 1 or more "
            "(None picks from poolwise.cpus())"
        )
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


#: Modes whose workers can be processes, and those whose workers are replaced after
#: max_tasks_per_worker tasks (auto may choose processes).
_STARTS_PROCESSES = ("processes", "auto")
_REPLACES_WORKERS = ("processes", "interpreters", "auto", "dask")  # dask: its own refusal


def check_pool(
    mode: object,
    workers: object,
    *,
    timeout: object,
    retries: object,
    retry_on: object,
    max_tasks_per_worker: object,
    initializer: Callable[..., object] | None,
    initargs: Iterable[object],
    start_method: object,
    progress: object,
    address: str | None,
    native_threads: object = "auto",
) -> tuple[int | None, RunOptions, WorkerOptions]:
    """A ``Pool``'s arguments, checked: the workers asked for (None: the mode's default),
    the defaults of its runs, and what each worker starts with."""
    check_mode(mode)
    requested = check_workers(workers)
    defaults = RunOptions(
        timeout=check_timeout(timeout),
        progress=check_progress(progress),
        policy=RetryPolicy(check_retries(retries), check_retry_on(retry_on)),
    )
    max_tasks = check_optional_positive_int(max_tasks_per_worker, "max_tasks_per_worker")
    if initializer is not None:
        check_callable(initializer, "initializer")
    if not isinstance(initargs, Iterable):
        raise TypeError(f"initargs={initargs!r} must be an iterable of arguments (a tuple)")
    method = check_start_method(start_method)
    if method is not None and mode not in _STARTS_PROCESSES:
        raise ValueError(
            f"start_method={method!r} is for mode='processes' (or 'auto', which may choose "
            f"them); mode={mode!r} starts no processes: leave start_method out"
        )
    if max_tasks is not None and mode not in _REPLACES_WORKERS:
        raise ValueError(
            f"max_tasks_per_worker={max_tasks!r} replaces process and interpreter workers; "
            f"mode={mode!r} has none to replace: leave it out, or use mode='processes'"
        )
    if address is not None and mode != "dask":
        raise ValueError(f"address={address!r} is only for mode='dask', not mode={mode!r}")
    native = check_native_threads(native_threads)
    options = WorkerOptions(initializer, tuple(initargs), max_tasks, method, address, native)
    return requested, defaults, options


class UnorderedOptions(TypedDict, total=False):
    """The per-run keyword arguments of ``imap_unordered`` (and, with ``ordered``, of every
    other map-like call): see ``Pool.map`` for what each does."""

    timeout: float | None
    chunksize: int | None
    buffersize: int | None
    progress: ProgressOption
    retries: int
    retry_on: RetryOn
    return_exceptions: bool


class MapOptions(UnorderedOptions, total=False):
    """The per-run keyword arguments of ``map``, ``imap``, ``starmap`` and ``istarmap``."""

    ordered: bool


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How one run behaves, checked once (``from_call``) and never changed after.

    ``Pool`` keeps one as its defaults (``timeout=``, ``retries=``, ``progress=`` given to the
    pool); a call's own options override them where given.
    """

    timeout: float | None = None
    chunksize: int | None = None
    ordered: bool = True
    progress: ProgressOption = False
    policy: RetryPolicy = dataclasses.field(default_factory=lambda: RetryPolicy(0, None))
    #: imap: most inputs read ahead of the caller (None: about two chunks per worker, at
    #: most ``maprun.MAX_READ_AHEAD``).
    buffersize: int | None = None
    #: Return ``(results, report)`` from ``map``/``starmap``.
    report: bool = False
    #: A failed task's exception stands at its position instead of being raised.
    return_exceptions: bool = False

    def from_call(
        self,
        *,
        timeout: object = None,
        chunksize: object = None,
        buffersize: object = None,
        ordered: object = True,
        progress: object = False,
        retries: object = 0,
        retry_on: object = None,
        report: object = False,
        return_exceptions: object = False,
    ) -> RunOptions:
        """These defaults overridden by one call's keyword arguments, each checked."""
        checked_timeout = check_timeout(timeout)
        policy = self.policy
        if retries or retry_on is not None:
            policy = RetryPolicy(
                check_retries(retries) or policy.retries,
                check_retry_on(retry_on) or policy.retry_on,
            )
        return RunOptions(
            timeout=self.timeout if checked_timeout is None else checked_timeout,
            chunksize=check_chunksize(chunksize),
            buffersize=check_optional_positive_int(buffersize, "buffersize"),
            ordered=check_flag(ordered, "ordered"),
            progress=check_progress(progress) or self.progress,
            policy=policy,
            report=check_flag(report, "report"),
            return_exceptions=check_flag(return_exceptions, "return_exceptions"),
        )


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be True or False")
    return value


#: One empty kwargs dict shared by every task of a map: pickled once per chunk (the pickler
#: memoizes it) instead of once per task. Never mutated: ``fn(**kwargs)`` copies it.
NO_KWARGS: dict[str, Any] = {}


@dataclasses.dataclass
class Inputs:
    """A map call's inputs as tasks, read lazily.

    ``tasks`` yields the items themselves when ``unary`` (one iterable, no star: a single
    argument per call, which saves two tuples per tiny task) or ``(args, kwargs)`` pairs.
    """

    tasks: Iterator[Any]
    #: How many, when every iterable knows its length.
    total: int | None
    unary: bool
    #: The first task as ``(args, kwargs)``, already read (and still in ``tasks``), for the
    #: checks before any work; None for no inputs.
    first: Task | None


def shape_inputs(
    fn: Callable[..., Any], iterables: tuple[Iterable[Any], ...], star: bool
) -> Inputs:
    """The tasks of a map call; raises before any work when they cannot fit ``fn``."""
    check_callable(fn)
    if not iterables:
        raise TypeError("map() needs at least one iterable of inputs")
    lengths = [len(it) if hasattr(it, "__len__") else None for it in iterables]  # type: ignore[arg-type]
    known = [n for n in lengths if n is not None]
    if len(known) == len(lengths) and len(set(known)) > 1:
        raise ValueError(
            f"the iterables have different lengths {known}; map() needs one item from each "
            "per call: trim them to the same length (or use zip() to truncate on purpose)"
        )
    total = known[0] if len(known) == len(lengths) else None
    unary = False
    tasks: Iterator[Any]
    if star:
        (iterable,) = iterables
        tasks = ((_star_args(item), NO_KWARGS) for item in iterable)
    elif len(iterables) == 1:
        tasks, unary = iter(iterables[0]), True
    else:
        tasks = ((args, NO_KWARGS) for args in zip(*iterables, strict=True))
    try:
        head = next(tasks)
    except StopIteration:
        return Inputs(iter(()), total, unary, None)
    first: Task = ((head,), NO_KWARGS) if unary else head
    check_arity(fn, *first)
    return Inputs(itertools.chain((head,), tasks), total, unary, first)


def _star_args(item: object) -> tuple[Any, ...]:
    if isinstance(item, tuple):
        return item
    try:
        return tuple(item)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"starmap() needs an iterable of argument tuples; got an item of type "
            f"{type(item).__name__}: {item!r}. Use map() for one argument per call"
        ) from None
