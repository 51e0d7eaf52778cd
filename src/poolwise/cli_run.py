"""``poolwise profile`` and ``poolwise run``: a function named on the command line, over
inputs read from a file (or ``--range N``), profiled or run, results as JSON lines.

``run`` streams: it reads the inputs line by line as the pool takes them (a bounded number
ahead) and writes each outcome as it comes, so an endless ``--inputs -`` or a huge
``--range`` runs in flat memory.

Everything a user can get wrong (the function's name, the inputs file, options, a function
that cannot take the inputs, a mode this machine lacks) is found before any task runs and
reported as a ``UsageError``: one line, exit status 2. A later input that cannot be read
(not UTF-8, not a list for ``--star``) is found when it is read: the run stops there with
the same one line and status 2.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import importlib.util
import inspect
import itertools
import json
import sys
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Iterator

    from .progress import ProgressOption

__all__ = ["UsageError", "load_function", "open_inputs", "profile_command", "run_command"]


class UsageError(Exception):
    """What was wrong on the command line, and what to do instead."""


def load_function(spec: str) -> Callable[..., Any]:
    """The function named ``MODULE:FUNCTION`` (a dotted module importable from the current
    directory, or a path to a ``.py`` file); ``FUNCTION`` may be dotted (``Class.method``)."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(
            f"{spec!r} is not MODULE:FUNCTION; write e.g. mymodule:convert or "
            "path/to/script.py:convert"
        )
    if module_name.endswith(".py") or "/" in module_name:
        module = _module_from_file(Path(module_name))
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UsageError(
                f"cannot import module {module_name!r}: {exc}; run from the directory that "
                "holds it, or give a path to the file"
            ) from None
        except Exception as exc:  # noqa: BLE001 - the user's module failed: say so, in a line
            raise UsageError(f"importing {module_name!r} raised {_one_line(exc)}") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise UsageError(f"{spec} is a {type(target).__name__}, not a function")
    return target  # type: ignore[no-any-return]


def _module_from_file(path: Path) -> Any:
    """The module of the file at ``path``, run as ``python path`` would run it: its folder
    first on ``sys.path``, so it imports the modules beside it (workers get that path)."""
    if not path.is_file():
        raise UsageError(f"no file {str(path)!r}; give a path to a .py file or a module name")
    folder = str(path.resolve().parent)
    if sys.path[:1] != [folder]:
        sys.path.insert(0, folder)
    name = f"poolwise_cli_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file failed: say so, in a line
        del sys.modules[name]
        raise UsageError(f"running {str(path)!r} raised {_one_line(exc)}") from None
    # Workers cannot import a module by this made-up name: its functions travel by value.
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


@contextlib.contextmanager
def open_inputs(path: str | None, count: int | None) -> Iterator[Iterable[Any]]:
    """The inputs, read lazily: ``range(count)``, or one per line of the file (``-``:
    stdin), each line JSON if it parses as JSON, else the line's text (a blank line is
    ``""``, so output line k is always input line k). The file is closed on the way out."""
    if count is not None:
        if count < 0:
            raise UsageError(f"--range {count}: give a number of inputs, 0 or more")
        yield range(count)
        return
    assert path is not None
    if path == "-":
        yield _parse_lines(sys.stdin.buffer, "-")
        return
    try:
        lines = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise UsageError(f"--inputs {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--inputs {path}: cannot read it ({exc.strerror})") from None
    with lines:
        yield _parse_lines(lines, path)


def _parse_lines(lines: IO[bytes], path: str) -> Iterator[Any]:
    """Each line's input, parsed as it is read; each line is decoded alone, so a line that
    is not UTF-8 is named by its number."""
    for number, raw in enumerate(lines, 1):
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"--inputs {path}: line {number} is not UTF-8 text ({exc.reason} at byte "
                f"{exc.start}); convert the file to UTF-8"
            ) from None
        try:
            yield json.loads(text)
        except ValueError:
            yield text


def profile_command(args: argparse.Namespace) -> int:
    from .profiling import profile

    fn = load_function(args.function)
    with open_inputs(args.inputs, args.range) as read:
        inputs = list(read)
    if not inputs:
        raise UsageError("no inputs to measure: the file is empty (or --range 0)")
    result = profile(fn, inputs)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=repr))
    else:
        print(result)
        print(f"({result.tasks_run} of {len(inputs)} inputs ran to measure)")
    return 0


def run_command(args: argparse.Namespace) -> int:
    with open_inputs(args.inputs, args.range) as read:
        return _run(args, read)


def _run(args: argparse.Namespace, read: Iterable[Any]) -> int:
    """Check everything, then run ``fn`` over the inputs as they are read, writing each
    outcome as it comes; the exit status."""
    from .options import RunOptions
    from .pool import Pool

    fn = load_function(args.function)
    head, rest = _peek(read)
    if head:
        _check_fits(fn, head[0], star=args.star)
    _check_mode(args.mode)
    shown: dict[str, ProgressOption] = {"auto": True, "always": "always", "never": False}
    options = RunOptions().from_call(
        timeout=args.timeout,
        progress=shown[args.progress],
        retries=args.retries,
        return_exceptions=True,
    )
    taken = _taken(_lists_only(rest) if args.star else rest)
    written = failed = 0
    with _opened(args.output) as out, Pool(args.mode, args.workers) as pool:
        for batch in pool.start(fn, (taken,), options, star=args.star).batches():
            for outcome in batch:
                record = _record(taken.waiting.popleft(), outcome)
                failed += "error" in record
                out.write(json.dumps(record) + "\n")
            written += len(batch)
            out.flush()  # as they come: whoever reads the pipe or the file sees them now
        report = pool.report()
    print(
        f"poolwise run: {written} inputs, {written - failed} done, {failed} failed; "
        f"mode {report.mode}, {report.workers} workers, {report.wall_seconds:.2f} s",
        file=sys.stderr,
    )
    if args.report:
        print(report, file=sys.stderr)
    return 1 if failed else 0


def _peek(items: Iterable[Any]) -> tuple[list[Any], Iterable[Any]]:
    """The first input (a list of at most one) and all the inputs again: a ``range``
    stays a range, whose length gives the progress bar its total."""
    if isinstance(items, range):
        return list(items[:1]), items
    stream = iter(items)
    head = list(itertools.islice(stream, 1))
    return head, itertools.chain(head, stream)


def _check_fits(fn: Callable[..., Any], first: Any, *, star: bool) -> None:
    """Refuse, before any work, a function that cannot take the first input: every task
    would fail with the same TypeError."""
    if star and not isinstance(first, list):
        raise UsageError(_not_a_list(0, first))
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and C functions without a signature
        return
    try:
        signature.bind(*(first if star else [first]))
    except TypeError as exc:
        name = getattr(fn, "__qualname__", "the function")
        hint = (
            "--star passes the items of each input's JSON list as the arguments"
            if star
            else "each input is one argument: for several, write each input as a JSON "
            "list of them and give --star"
        )
        raise UsageError(
            f"input #0 ({_short(first)}) does not fit {name}{signature}: {exc}; {hint}"
        ) from None


def _check_mode(mode: str) -> None:
    """Refuse a mode this machine cannot run, saying what can (before the output file
    is opened)."""
    from .backends import backend_class
    from .errors import BackendUnavailable

    if mode == "auto":
        return
    try:
        backend_class(mode)
    except BackendUnavailable as exc:
        raise UsageError(str(exc).splitlines()[0]) from None


def _lists_only(items: Iterable[Any]) -> Iterator[Any]:
    """``--star``: the inputs, stopping with a usage error at one that is not a JSON list
    (found as it is read: the inputs before it have their outcomes)."""
    for index, item in enumerate(items):
        if not isinstance(item, list):
            raise UsageError(_not_a_list(index, item))
        yield item


def _not_a_list(index: int, item: Any) -> str:
    return f"--star: input #{index} is {_short(item)}, not a JSON list of arguments"


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to fit in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Taken:
    """The inputs as the pool takes them, each kept until its outcome is written: the
    pool reads a bounded number ahead, so only that many are held."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = iter(items)
        #: Inputs taken whose outcomes have not been written, in input order.
        self.waiting: collections.deque[Any] = collections.deque()

    def __iter__(self) -> _Taken:
        return self

    def __next__(self) -> Any:
        item = next(self._items)
        self.waiting.append(item)
        return item


class _TakenRange(_Taken):
    """``_Taken`` over ``--range N``: its length gives the progress bar a total."""

    def __init__(self, items: range) -> None:
        super().__init__(items)
        self._count = len(items)

    def __len__(self) -> int:
        return self._count


def _taken(items: Iterable[Any]) -> _Taken:
    """The inputs to hand the pool, remembered until written (sized if they know it)."""
    return _TakenRange(items) if isinstance(items, range) else _Taken(items)


def _record(item: Any, outcome: Any) -> dict[str, Any]:
    """One line of output: the input and its result, or its error."""
    if isinstance(outcome, BaseException):
        return {
            "input": _jsonable(item),
            "error": type(outcome).__name__,
            "message": str(outcome),
            "traceback": "".join(traceback.format_exception(outcome)).rstrip(),
        }
    return {"input": _jsonable(item), "result": _jsonable(outcome)}


def _jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it, else its ``repr`` (a result is never dropped)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@contextlib.contextmanager
def _opened(path: Path | None) -> Iterator[IO[str]]:
    """Standard output, or the file at ``path`` (closed on the way out)."""
    if path is None:
        yield sys.stdout
        return
    try:
        out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write it ({exc.strerror})") from None
    with out:
        yield out
