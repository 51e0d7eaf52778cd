"""The ``poolwise`` command: ``lab``, ``info``, ``profile`` and ``run``.

Usage errors exit with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .backends import MODES, backend_class
from .errors import BackendUnavailable
from .native_threads import native_report
from .system import MachineInfo, machine_info

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["main", "run"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"poolwise: error: {message} (see poolwise --help)\n")


def _modes() -> dict[str, str]:
    """Each mode and whether it can run here."""
    states = {
        "auto": "available: measures the first tasks, then serial, threads or processes "
        "(async def functions: async)"
    }
    for mode in MODES:
        if mode == "auto":
            continue
        try:
            backend_class(mode)
        except BackendUnavailable as exc:
            states[mode] = f"not available: {exc.why}"
        else:
            states[mode] = "available"
    return states


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def _native_rows(native: dict[str, Any]) -> list[tuple[str, str]]:
    """``poolwise info``'s rows on BLAS/OpenMP thread pools (``native_threads.py``)."""
    rows = [
        (
            f"native pool {pool['internal_api']}",
            f"{pool['num_threads']} threads ({pool['user_api']}, {pool['version'] or 'version ?'}, "
            f"{Path(pool['filepath']).name})",
        )
        for pool in native["pools"]
    ] or [("native pools", "none loaded (NumPy, SciPy, scikit-learn not installed)")]
    widths = ", ".join(
        f"{workers} worker{'s' * (workers > 1)}: {width}"
        for workers, width in native["per_worker"].items()
    )
    rows.append(("native threads per worker", f"CPUs / workers, at least 1 ({widths})"))
    for name, value in native["environment"].items():
        rows.append((f"  {name}", f"{value} (set here: auto keeps it)"))
    return rows


def _print_info(info: MachineInfo, modes: dict[str, str], native: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    quota = "none" if info.cpu_quota is None else f"{info.cpu_quota:g} CPUs"
    table = Table(title="poolwise info: what this machine offers", show_header=False)
    table.add_column("fact", style="bold")
    table.add_column("value")
    rows = [
        ("usable CPUs (poolwise.cpus())", str(info.usable_cpus)),
        ("  logical CPUs", str(info.logical_cpus)),
        ("  CPU affinity", str(info.affinity_cpus)),
        ("  cgroup CPU quota", quota),
        ("Python", f"{info.implementation} {info.python}"),
        ("build", info.build_text()),
        ("start methods", ", ".join(info.start_methods)),
        ("default start method", info.default_start_method),
        ("memory", f"{_gib(info.memory_available)} available of {_gib(info.memory_total)}"),
        ("platform", info.platform),
    ]
    rows += [(f"mode {mode}", state) for mode, state in modes.items()]
    rows += _native_rows(native)
    for fact, value in rows:
        table.add_row(fact, value)
    Console().print(table)


def _info(args: argparse.Namespace) -> int:
    info = machine_info()
    modes = _modes()
    native = native_report(info.usable_cpus)
    if args.json:
        print(json.dumps({**asdict(info), "modes": modes, "native_threads": native}, indent=2))
    else:
        _print_info(info, modes, native)
    return 0


def _lab(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console

    from .lab.base import LabSettings
    from .lab.render_text import print_report
    from .lab.report import LabReport
    from .lab.runner import EXPERIMENTS, run_lab
    from .system import cpus

    only = [key.strip() for key in args.only.split(",") if key.strip()] if args.only else None
    unknown = [key for key in only or [] if key not in EXPERIMENTS]
    if unknown:
        print(
            f"poolwise: error: --only: unknown row {', '.join(unknown)}; "
            f"choose from {', '.join(EXPERIMENTS)}",
            file=sys.stderr,
        )
        return 2
    settings = LabSettings(full=args.full, cpus=cpus())
    out = Console()
    err = Console(stderr=True)
    started = time.perf_counter()
    with err.status("poolwise lab: starting") as status:

        def on_start(key: str, row: str) -> None:
            status.update(f"poolwise lab: measuring {row} ({key})")

        rows = run_lab(settings, only, on_start)
    report = LabReport.of(rows, full=args.full, seconds=time.perf_counter() - started)
    print_report(report, out)
    if args.json:
        report.write_json(args.json)
        err.print(f"wrote {args.json}")
    if args.html:
        from .lab.render_html import write_html

        write_html(report, args.html)
        err.print(f"wrote {args.html}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="poolwise",
        description="Run Python work on threads or processes, chosen by measuring.",
    )
    parser.add_argument("--version", action="version", version=f"poolwise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    info = commands.add_parser("info", help="what this machine offers: CPUs, GIL, start methods")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_info)
    lab = commands.add_parser(
        "lab", help="measure the processes-vs-threads table on this machine, row by row"
    )
    lab.add_argument("--full", action="store_true", help="longer, steadier measurements")
    lab.add_argument("--only", metavar="ROW[,ROW]", help="run only these rows (keys)")
    lab.add_argument("--json", metavar="FILE", type=Path, help="also write the results as JSON")
    lab.add_argument(
        "--html", metavar="FILE", type=Path, help="also write a self-contained HTML report"
    )
    lab.set_defaults(handler=_lab)
    _add_work_commands(commands)
    return parser


def _number(
    kind: Callable[[str], float], what: str, floor: str, fits: Callable[[float], bool]
) -> Callable[[str], float]:
    """An argparse ``type`` that reads ``kind`` (int or float) and refuses a value that
    does not ``fits``, saying what it wanted (``what``) and the bound (``floor``)."""

    def read(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not fits(value):
            raise argparse.ArgumentTypeError(f"{text} is not {floor}")
        return value

    return read


_positive_int = _number(int, "a whole number", "1 or more", lambda n: n > 0)
_non_negative_int = _number(int, "a whole number", "0 or more", lambda n: n >= 0)
_positive_float = _number(float, "a number of seconds", "above 0 seconds", lambda n: n > 0)


def _add_inputs(command: argparse.ArgumentParser) -> None:
    command.add_argument("function", metavar="MODULE:FUNCTION", help="e.g. convert:one_file")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--inputs",
        metavar="FILE",
        help="one input per line: JSON (a JSON line is one value) or plain text; - for stdin",
    )
    source.add_argument(
        "--range", metavar="N", type=int, help="the inputs 0, 1, ... N-1 (integers)"
    )


def _add_work_commands(commands: Any) -> None:
    from .cli_run import profile_command, run_command

    profile = commands.add_parser(
        "profile", help="measure a function on a few inputs and say where the rest should run"
    )
    _add_inputs(profile)
    profile.add_argument("--json", action="store_true", help="print JSON instead of text")
    profile.set_defaults(handler=profile_command)

    run = commands.add_parser(
        "run", help="run a function over inputs and write each outcome as a JSON line"
    )
    _add_inputs(run)
    run.add_argument("--mode", choices=MODES, default="auto", help="where tasks run (auto)")
    run.add_argument("--workers", type=_positive_int, help="how many workers")
    run.add_argument("--timeout", type=_positive_float, help="per-task limit in seconds")
    run.add_argument(
        "--retries", type=_non_negative_int, default=0, help="re-runs for a task that failed (0)"
    )
    run.add_argument(
        "--star", action="store_true", help="each input is a JSON list: the function's arguments"
    )
    run.add_argument(
        "--output", metavar="FILE", type=Path, help="write JSON lines here (default: stdout)"
    )
    run.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="a progress bar on stderr: auto shows it on a terminal; always also writes "
        "plain progress lines to a log or pipe",
    )
    run.add_argument("--report", action="store_true", help="print the pool's report at the end")
    run.set_defaults(handler=run_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from .cli_run import UsageError

    try:
        status: int = args.handler(args)
    except UsageError as exc:
        print(f"poolwise {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Pools and experiments cleaned up on the way out (with-blocks); no traceback.
        print("poolwise: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`poolwise run ... | head`): stop quietly, as other commands of a
        # pipeline do, with the status of one that SIGPIPE ended; the pool was stopped on the
        # way out, and stdout's last flush at exit must not fail again.
        _stdout_to_devnull()
        return _BROKEN_PIPE
    return status


#: The exit status of a command that SIGPIPE ended (128 + 13), as a shell reports it.
_BROKEN_PIPE = 141


def _stdout_to_devnull() -> None:
    """Point standard output at /dev/null, so the interpreter's final flush of what is
    still buffered for a closed pipe raises nothing."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
