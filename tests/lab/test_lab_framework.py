"""The lab's framework: worker sweeps, the runner, a failing row, rendering, the CLI."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from poolwise import cli
from poolwise.lab import interrupt, runner
from poolwise.lab.base import (
    DEPENDS,
    HOLDS,
    NOT_HERE,
    LabSettings,
    Measurement,
    NamedFigures,
    RowResult,
    Series,
    Verdict,
    worker_counts,
)
from poolwise.lab.render_text import print_report
from poolwise.lab.report import LabReport

if TYPE_CHECKING:
    from pathlib import Path


class _Fake:
    key = "fake"
    row = "Fake row"
    claim = "Fakes are fast"

    def run(self, settings: LabSettings) -> Measurement[NamedFigures]:
        return Measurement(
            NamedFigures({"speed-up at 2 workers": 1.9, "cpus": settings.cpus}),
            series=[Series("threads", [1.0, 2.0], [1.0, 1.9], "workers", "speed-up")],
        )

    def judge(self, measurement: Measurement[NamedFigures]) -> Verdict:
        value = measurement.figures["speed-up at 2 workers"]
        return Verdict(HOLDS, f"reached {value}x")


class _Broken(_Fake):
    key = "broken"
    row = "Broken row"

    def run(self, settings: LabSettings) -> Measurement[NamedFigures]:
        raise RuntimeError("no network here")


FAKE = _Fake()
BROKEN = _Broken()


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        runner,
        "EXPERIMENTS",
        {"fake": f"{__name__}:FAKE", "broken": f"{__name__}:BROKEN"},
    )


@pytest.mark.parametrize(
    ("cpus", "beyond", "expected"),
    [
        (1, None, [1]),
        (2, None, [1, 2]),
        (6, None, [1, 2, 4, 6]),
        (64, None, [1, 2, 4, 8, 16, 32, 64]),
        (2, 64, [1, 2, 4, 8, 16, 32, 64]),
        (3, 8, [1, 2, 3, 4, 8]),
    ],
)
def test_worker_counts_sweep_to_the_cpus_and_beyond(
    cpus: int, beyond: int | None, expected: list[int]
) -> None:
    assert worker_counts(cpus, beyond) == expected


@pytest.mark.usefixtures("fake_registry")
def test_a_failing_row_is_reported_not_raised() -> None:
    rows = runner.run_lab(LabSettings(cpus=2))
    assert [row.key for row in rows] == ["fake", "broken"]
    assert rows[0].verdict == Verdict(HOLDS, "reached 1.9x")
    assert rows[1].verdict.status == DEPENDS
    assert "no network here" in rows[1].verdict.reason
    assert rows[1].error is not None


@pytest.mark.usefixtures("fake_registry")
def test_unknown_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown lab row"):
        runner.run_lab(LabSettings(cpus=2), only=["nope"])


@pytest.mark.usefixtures("fake_registry")
def test_terminal_table_shows_claim_verdict_and_reason() -> None:
    rows = runner.run_lab(LabSettings(cpus=2), only=["fake"])
    report = LabReport.of(rows, full=False, seconds=1.0)
    out = io.StringIO()
    print_report(report, Console(file=out, width=100, color_system=None))
    text = out.getvalue()
    assert "Fake row" in text
    assert "Fakes are fast" in text
    assert "holds" in text
    assert "reached 1.9x" in text
    assert "usable CPUs" in text


@pytest.mark.usefixtures("fake_registry")
def test_an_80_column_terminal_gets_whole_lines_not_a_squeezed_table() -> None:
    rows = runner.run_lab(LabSettings(cpus=2), only=["fake"])
    rows[0].measurement.notes.append("a note long enough to wrap " * 4)
    report = LabReport.of(rows, full=False, seconds=1.0)
    out = io.StringIO()
    print_report(report, Console(file=out, width=80, color_system=None))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "Fake row  holds" in lines
    assert any(line.startswith("seed Fakes are fast") for line in lines)
    assert any(line.startswith("here reached 1.9x") for line in lines)
    assert "…" not in out.getvalue()  # nothing cut short
    assert len(lines) < 15


@pytest.mark.usefixtures("fake_registry")
def test_cli_lab_writes_json_with_machine_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "lab.json"
    assert cli.main(["lab", "--only", "fake,broken", "--json", str(target)]) == 0
    data = json.loads(target.read_text())
    assert data["machine"]["usable_cpus"] >= 1
    assert data["rows"][0]["verdict"] == {"status": "holds", "reason": "reached 1.9x"}
    assert data["rows"][0]["measurement"]["series"][0]["y"] == [1.0, 1.9]
    assert data["rows"][0]["measurement"]["figures"] == {"speed-up at 2 workers": 1.9, "cpus": 2}
    assert data["rows"][1]["measurement"]["figures"] == {}
    assert "Fake row" in capsys.readouterr().out


@pytest.mark.usefixtures("fake_registry")
def test_cli_lab_unknown_row_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lab", "--only", "nope"]) == 2
    assert "unknown row nope" in capsys.readouterr().err


def test_json_carries_a_typed_record_as_figures_by_name() -> None:
    times = interrupt.StopTimes(
        timeout_s=0.2,
        blocking_s=1.0,
        process_loop_s=0.01,
        process_c_s=0.02,
        thread_loop_s=0.03,
        thread_c_s=0.8,
    )
    row = RowResult(
        "interruptibility",
        "Interruptibility",
        "claim",
        Measurement(times),
        Verdict(HOLDS, "x"),
        1.0,
    )
    data = json.loads(json.dumps(LabReport.of([row], full=False, seconds=1.0).to_dict()))
    (row_data,) = data["rows"]
    assert set(row_data) == {
        "key",
        "row",
        "claim",
        "measurement",
        "verdict",
        "seconds",
        "other_programs_cpu_share",
        "error",
    }
    assert set(row_data["measurement"]) == {"figures", "series", "notes"}
    figures = row_data["measurement"]["figures"]
    assert figures["thread, blocked in C: s to stop"] == 0.8
    assert figures["plain threading.Thread"] == "no way to stop it"
    assert "thread_c_s" not in figures


class _NearThreshold:
    """Measures the next figure of ``figures`` each run; the verdict turns on 1.3 (and 1.8
    for a third status); every figure counts as near a threshold."""

    key = "near"
    row = "Near row"
    claim = "Near claims"

    def __init__(self, figures: list[float]) -> None:
        self.figures = iter(figures)
        self.runs = 0

    def run(self, settings: LabSettings) -> Measurement[NamedFigures]:
        self.runs += 1
        return Measurement(NamedFigures({"speed-up": next(self.figures)}))

    def judge(self, measurement: Measurement[NamedFigures]) -> Verdict:
        value = float(measurement.figures["speed-up"])
        if value >= 1.8:
            return Verdict(NOT_HERE, f"{value}x")
        return Verdict(HOLDS if value >= 1.3 else DEPENDS, f"{value}x")

    def near_threshold(self, measurement: Measurement[NamedFigures]) -> bool:
        return True


def _run_near(monkeypatch: pytest.MonkeyPatch, figures: list[float]) -> tuple[RowResult, int]:
    experiment = _NearThreshold(figures)
    monkeypatch.setattr(runner, "load_experiment", lambda key: experiment)
    monkeypatch.setattr(runner, "EXPERIMENTS", {"near": "unused"})
    [row] = runner.run_lab(LabSettings(cpus=2), only=["near"])
    return row, experiment.runs


def test_a_verdict_near_its_threshold_is_measured_until_two_runs_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row, runs = _run_near(monkeypatch, [1.35, 1.2, 1.25, 9.9])
    assert runs == 3
    assert row.verdict == Verdict(DEPENDS, "1.25x")
    assert "measured 3 times" in " ".join(row.measurement.notes)
    assert "2 of 3 runs gave this verdict" in " ".join(row.measurement.notes)
    row, runs = _run_near(monkeypatch, [1.35, 1.4, 9.9])
    assert runs == 2
    assert row.verdict.status == HOLDS


def test_a_verdict_that_varies_with_every_run_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    row, runs = _run_near(monkeypatch, [1.0, 1.5, 2.0, 9.9])
    assert runs == runner.MAX_RUNS == 3
    assert row.verdict.status == DEPENDS
    assert row.verdict.reason.startswith("the verdict varied between 3 runs here")
    assert "depends, holds, does not hold here" in row.verdict.reason


@pytest.mark.usefixtures("fake_registry")
def test_a_verdict_far_from_its_thresholds_is_measured_once() -> None:
    [row] = runner.run_lab(LabSettings(cpus=2), only=["fake"])  # no near_threshold at all
    assert not any("measured" in note for note in row.measurement.notes)
