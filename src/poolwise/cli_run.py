"""``poolwise profile`` and ``poolwise run``: a function named on the command line, over
inputs read from a file (or ``--range N``), profiled or run, results as JSON lines.

Everything a user can get wrong (the function's name, the inputs file, a bad line) is
found before any task runs and reported as a ``UsageError``: one line, exit status 2.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

    from .progress import ProgressOption

__all__ = ["UsageError", "load_function", "profile_command", "read_inputs", "run_command"]


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
    if not path.is_file():
        raise UsageError(f"no file {str(path)!r}; give a path to a .py file or a module name")
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


def read_inputs(path: str | None, count: int | None) -> list[Any]:
    """The inputs: ``range(count)``, or one per line of the file (``-``: stdin), each line
    JSON if it parses as JSON, else the line's text. Blank lines are skipped."""
    if count is not None:
        if count < 0:
            raise UsageError(f"--range {count}: give a number of inputs, 0 or more")
        return list(range(count))
    assert path is not None
    if path == "-":
        return _parse_lines(sys.stdin)
    try:
        with open(path, encoding="utf-8") as lines:
            return _parse_lines(lines)
    except FileNotFoundError:
        raise UsageError(f"--inputs {path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UsageError(f"--inputs {path}: cannot read it as text ({exc})") from None


def _parse_lines(lines: IO[str]) -> list[Any]:
    inputs: list[Any] = []
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            inputs.append(json.loads(text))
        except ValueError:
            inputs.append(text)
    return inputs


def profile_command(args: argparse.Namespace) -> int:
    from .profiling import profile

    fn = load_function(args.function)
    inputs = read_inputs(args.inputs, args.range)
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
    from .options import RunOptions
    from .pool import Pool

    fn = load_function(args.function)
    inputs = read_inputs(args.inputs, args.range)
    failed = 0
    if args.star:
        bad = next((i for i, item in enumerate(inputs) if not isinstance(item, list)), None)
        if bad is not None:
            raise UsageError(
                f"--star: input #{bad} is {inputs[bad]!r}, not a JSON list of arguments"
            )
    shown: dict[str, ProgressOption] = {"auto": True, "always": "always", "never": False}
    progress = shown[args.progress]
    with _opened(args.output) as out, Pool(args.mode, args.workers) as pool:
        options = RunOptions().from_call(
            timeout=args.timeout, progress=progress, retries=args.retries, return_exceptions=True
        )
        run = pool.start(fn, (inputs,), options, star=args.star)
        for item, outcome in zip(inputs, run, strict=True):
            record = _record(item, outcome)
            failed += "error" in record
            out.write(json.dumps(record) + "\n")
        report = pool.report()
    print(
        f"poolwise run: {len(inputs)} inputs, {len(inputs) - failed} done, {failed} failed; "
        f"mode {report.mode}, {report.workers} workers, {report.wall_seconds:.2f} s",
        file=sys.stderr,
    )
    if args.report:
        print(report, file=sys.stderr)
    return 1 if failed else 0


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
