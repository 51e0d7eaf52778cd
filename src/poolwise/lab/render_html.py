"""The lab's results as one self-contained HTML page: the verdict table and SVG charts.

Nothing is loaded from the network (no scripts, fonts or stylesheets from elsewhere), so
the file can be mailed or attached to an issue. Charts are drawn here as inline SVG, one
per row that measured series (speed-up or throughput against workers, memory per worker).
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from .base import RowResult, Series
    from .report import LabReport

__all__ = ["render_html", "write_html"]

_WIDTH, _HEIGHT = 760, 300
_MARGIN = {"left": 64, "right": 300, "top": 20, "bottom": 45}
#: Worker counts 1, 2, 4 ... 64 read better on a log scale once they span this factor.
_LOG_SPAN = 8
#: Line colours, distinguishable in colour and in grey (a small, fixed palette).
_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
_STATUS_CLASS = {"holds": "holds", "does not hold here": "nothold", "depends": "depends"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .45rem .6rem; vertical-align: top; text-align: left; }
th { background: #f4f4f4; }
.holds { color: #146c2e; font-weight: bold; } .nothold { color: #b3261e; font-weight: bold; }
.depends { color: #8a5a00; font-weight: bold; }
.facts { color: #555; } .note { color: #555; font-size: .9rem; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: .9rem; }
details pre { white-space: pre-wrap; font-size: .8rem; }
"""


def _label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _chart(title: str, series: list[Series]) -> str:
    """One line chart (inline SVG) of several series sharing axes."""
    xs = [x for s in series for x in s.x] or [0.0]
    ys = [y for s in series for y in s.y] or [0.0]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(0.0, min(ys)), max(ys) * 1.1 or 1.0
    plot_w = _WIDTH - _MARGIN["left"] - _MARGIN["right"]
    plot_h = _HEIGHT - _MARGIN["top"] - _MARGIN["bottom"]

    log_x = x_low > 0 and x_high / x_low >= _LOG_SPAN

    def px(x: float) -> float:
        if log_x:
            share = math.log(x / x_low) / math.log(x_high / x_low)
        else:
            share = (x - x_low) / (x_high - x_low or 1.0)
        return _MARGIN["left"] + share * plot_w

    def py(y: float) -> float:
        return _MARGIN["top"] + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}" class="chart">',
        f'<rect x="{_MARGIN["left"]}" y="{_MARGIN["top"]}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#999"/>',
    ]
    for tick in _ticks(y_low, y_high):
        y = py(tick)
        parts.append(
            f'<line x1="{_MARGIN["left"] - 4}" x2="{_MARGIN["left"]}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#999"/><text x="{_MARGIN["left"] - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end" font-size="11">{_label(tick)}</text>'
        )
    for tick in sorted(set(xs)):
        x = px(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{_MARGIN["top"] + plot_h + 16}" text-anchor="middle" '
            f'font-size="11">{tick:g}</text>'
        )
    x_label = html.escape(series[0].x_label) if series else ""
    y_label = html.escape(series[0].y_label) if series else ""
    parts.append(
        f'<text x="{_MARGIN["left"] + plot_w / 2:.1f}" y="{_HEIGHT - 8}" text-anchor="middle" '
        f'font-size="12">{x_label}</text>'
        f'<text x="14" y="{_MARGIN["top"] + plot_h / 2:.1f}" text-anchor="middle" '
        f'font-size="12" transform="rotate(-90 14 {_MARGIN["top"] + plot_h / 2:.1f})">'
        f"{y_label}</text>"
    )
    for index, line in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        # Past the palette, lines repeat colours but not dashes.
        dash = ["", ' stroke-dasharray="6 3"', ' stroke-dasharray="2 3"'][
            (index // len(_COLOURS)) % 3
        ]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(line.x, line.y, strict=False))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{points}"/>'
        )
        parts.extend(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>'
            for x, y in zip(line.x, line.y, strict=False)
        )
        legend_y = _MARGIN["top"] + 14 + index * 18
        legend_x = _MARGIN["left"] + plot_w + 12
        parts.append(
            f'<line x1="{legend_x}" x2="{legend_x + 14}" y1="{legend_y - 4}" '
            f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{legend_x + 18}" y="{legend_y}" font-size="11">'
            f"{html.escape(line.name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _charts(row: RowResult) -> str:
    """Charts of a row, grouping series that share their axes."""
    groups: dict[tuple[str, str], list[Series]] = {}
    for line in row.measurement.series:
        groups.setdefault((line.x_label, line.y_label), []).append(line)
    figures = []
    for (x_label, y_label), lines in groups.items():
        title = f"{row.row}: {y_label} against {x_label}"
        figures.append(
            f'<figure data-row="{html.escape(row.key)}">{_chart(title, lines)}'
            f"<figcaption>{html.escape(title)}</figcaption></figure>"
        )
    return "".join(figures)


def _figures_table(row: RowResult) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{html.escape(str(value))}</td></tr>"
        for name, value in row.measurement.figures.items()
    )
    return f"<details><summary>measured figures</summary><table>{cells}</table></details>"


def render_html(report: LabReport) -> str:
    """The whole page as a string."""
    m = report.machine
    facts = (
        f"{m.implementation} {m.python} ({m.build_text()}); {m.usable_cpus} usable CPUs "
        f"({m.logical_cpus} logical); start methods {', '.join(m.start_methods)}; "
        f"{m.platform}; {'full' if report.full else 'quick'} lab in {report.seconds:.0f} s"
    )
    rows = []
    sections = []
    for row in report.rows:
        status = row.verdict.status
        notes = "".join(
            f'<div class="note">note: {html.escape(note)}</div>' for note in row.measurement.notes
        )
        rows.append(
            f'<tr id="row-{html.escape(row.key)}"><td>{html.escape(row.row)}</td>'
            f"<td>{html.escape(row.claim)}</td>"
            f'<td class="{_STATUS_CLASS.get(status, "")}">{html.escape(status)}</td>'
            f"<td>{html.escape(row.verdict.reason)}{notes}</td></tr>"
        )
        error = (
            f"<details><summary>error</summary><pre>{html.escape(row.error)}</pre></details>"
            if row.error
            else ""
        )
        sections.append(
            f"<section><h2>{html.escape(row.row)}</h2>{_charts(row)}{_figures_table(row)}"
            f"{error}</section>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>poolwise lab</title><style>{_STYLE}</style></head><body>"
        "<h1>poolwise lab: processes vs threads, measured on this machine</h1>"
        f'<p class="facts">{html.escape(facts)}</p>'
        "<table><thead><tr><th>row</th><th>the seed says</th><th>here</th>"
        "<th>because (measured)</th></tr></thead><tbody>"
        f"{''.join(rows)}</tbody></table>{''.join(sections)}</body></html>\n"
    )


def write_html(report: LabReport, path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")
