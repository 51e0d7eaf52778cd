"""The HTML report: every row and chart there, self-contained, text escaped."""

from __future__ import annotations

import dataclasses
import re

from poolwise.lab import video_streaming
from poolwise.lab.base import (
    DEPENDS,
    HOLDS,
    Measurement,
    NamedFigures,
    RowResult,
    Series,
    Verdict,
)
from poolwise.lab.render_html import render_html
from poolwise.lab.report import LabReport


def _video_streaming_row() -> RowResult:
    """The video-streaming row as its experiment builds it: frame rates of each encoder on
    each mode against workers (the figures are synthetic, the series its own)."""
    rates = {
        (encoder, mode): {n: 40.0 * n ** (0.5 if mode == "threads" else 0.8) for n in (1, 2, 4)}
        for encoder in video_streaming.ENCODERS
        for mode in ("threads", "processes")
    }
    for encoder in video_streaming.ENCODERS:
        rates[encoder, "serial"] = {1: 40.0}
    return RowResult(
        "video-streaming",
        "Video streaming",
        video_streaming.EXPERIMENT.claim,
        Measurement(NamedFigures({"zlib serial frames/s": 40.0}), video_streaming._series(rates)),
        Verdict(DEPENDS, "threads suit zlib, lzma, processes suit pure-Python delta"),
        2.0,
    )


def sample_report() -> LabReport:
    """Three rows with charts and one without, as a real lab run would give."""
    speedups = Measurement(
        NamedFigures({"primes: processes speed-up at 2 workers": 1.9}),
        series=[
            Series("primes, threads", [1.0, 2.0], [1.0, 0.97], "workers", "speed-up"),
            Series("primes, processes", [1.0, 2.0], [1.0, 1.9], "workers", "speed-up"),
        ],
    )
    memory = Measurement(
        NamedFigures({"thread MB per worker": 0.1}),
        series=[Series("threads", [1.0, 2.0, 4.0], [0.1, 0.2, 0.4], "workers", "MB added")],
        notes=["poolwise.share() arrives with issue #7"],
    )
    rows = [
        RowResult(
            "cpu-bound",
            "CPU-bound processing",
            "Processes for CPU",
            speedups,
            Verdict(HOLDS, "processes reached 1.9x, threads 0.97x"),
            1.0,
        ),
        RowResult(
            "memory-footprint",
            "Memory footprint",
            "Processes are large",
            memory,
            Verdict(DEPENDS, "a <fork> worker costs 2 MB & a thread 0.1 MB"),
            1.0,
        ),
        RowResult(
            "interruptibility",
            "Interruptibility",
            "Threads are not",
            Measurement(NamedFigures()),
            Verdict(DEPENDS, "could not be measured here"),
            0.1,
            error="Traceback...",
        ),
        _video_streaming_row(),
    ]
    return LabReport.of(rows, full=False, seconds=3.0)


def test_every_row_chart_and_note_is_in_the_page() -> None:
    page = render_html(sample_report())
    for key in ("cpu-bound", "memory-footprint", "interruptibility", "video-streaming"):
        assert f'id="row-{key}"' in page
    assert page.count("<svg") == 3
    assert "lzma processes" in page
    assert "primes, processes" in page
    assert "note: poolwise.share() arrives with issue #7" in page
    assert "usable CPUs" in page


def test_the_page_names_the_build_and_its_gil() -> None:
    report = sample_report()
    free_threaded = dataclasses.replace(report.machine, free_threaded_build=True, gil_enabled=False)
    page = render_html(dataclasses.replace(report, machine=free_threaded))
    assert "(free-threaded build, GIL disabled)" in page
    assert "(standard build, GIL enabled)" in render_html(
        dataclasses.replace(
            report,
            machine=dataclasses.replace(
                report.machine, free_threaded_build=False, gil_enabled=True
            ),
        )
    )


def test_page_is_self_contained_and_escaped() -> None:
    page = render_html(sample_report())
    urls = set(re.findall(r"https?://[^\"' )]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    assert "<script" not in page
    assert "a &lt;fork&gt; worker costs 2 MB &amp; a thread" in page
