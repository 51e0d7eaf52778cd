"""The lab's verdict table for the terminal (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console

    from .report import LabReport

__all__ = ["print_report"]

_STYLES = {"holds": "bold green", "does not hold here": "bold red", "depends": "bold yellow"}


def _machine_line(report: LabReport) -> str:
    m = report.machine
    quota = "" if m.cpu_quota is None else f", CPU quota {m.cpu_quota:g}"
    return (
        f"{m.implementation} {m.python} ({m.build_text()}); {m.usable_cpus} usable CPUs "
        f"({m.logical_cpus} logical{quota}); start methods {', '.join(m.start_methods)}; "
        f"{'full' if report.full else 'quick'} lab in {report.seconds:.0f} s"
    )


#: Narrower terminals (80 columns, say) get one block per row instead of a four-column
#: table, which there wrapped each reason into a column a dozen characters wide.
WIDE_COLUMNS = 110


def print_report(report: LabReport, console: Console) -> None:
    """Print the machine facts and one row per experiment: claim, verdict, reason."""
    console.print(Text("poolwise lab: the processes-vs-threads table, measured here", "bold"))
    console.print(_machine_line(report))
    if console.width < WIDE_COLUMNS:
        _print_blocks(report, console)
    else:
        _print_table(report, console)


def _print_blocks(report: LabReport, console: Console) -> None:
    """One block per row: the row and its verdict, then the seed's claim, the measured
    reason and the notes, each under a short label, at the console's full width."""
    for row in report.rows:
        console.print()
        heading = Text(row.row, "bold")
        heading.append("  ")
        heading.append(row.verdict.status, _STYLES.get(row.verdict.status, ""))
        console.print(heading)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        grid.add_row("seed", row.claim)
        grid.add_row("here", row.verdict.reason)
        for note in row.measurement.notes:
            grid.add_row("note", note)
        console.print(grid)


def _print_table(report: LabReport, console: Console) -> None:
    table = Table(show_lines=True, expand=True)
    table.add_column("row", style="bold", width=16)
    table.add_column("the seed says", ratio=3)
    table.add_column("here", width=18)  # "does not hold here"
    table.add_column("because (measured)", ratio=6)
    for row in report.rows:
        status = Text(row.verdict.status, _STYLES.get(row.verdict.status, ""))
        reason = row.verdict.reason
        if row.measurement.notes:
            reason += "\n" + "\n".join(f"note: {note}" for note in row.measurement.notes)
        table.add_row(row.row, row.claim, status, reason)
    console.print(table)
