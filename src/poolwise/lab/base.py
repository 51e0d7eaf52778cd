"""What every lab experiment is: measure, then judge the seed's claim from the figures.

An experiment measures one row (or example) of the seed's "processes vs threads" table on
this machine and returns a ``Measurement``: named figures and, for the charts, series.
``judge`` turns figures into a ``Verdict`` by stated thresholds (module constants of the
experiment, each with a comment on where its number came from); it never measures, so
tests feed it synthetic figures on both sides of each threshold. Rendering (terminal,
JSON, HTML) lives apart and sees only ``RowResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "DEPENDS",
    "HOLDS",
    "NOT_HERE",
    "Experiment",
    "LabSettings",
    "Measurement",
    "RowResult",
    "Series",
    "Status",
    "Verdict",
    "interpreters_unavailable",
    "worker_counts",
]

Status = Literal["holds", "does not hold here", "depends"]
HOLDS: Status = "holds"
NOT_HERE: Status = "does not hold here"
DEPENDS: Status = "depends"


@dataclass(frozen=True)
class Verdict:
    """The seed's claim judged on this machine: a status and one sentence with figures."""

    status: Status
    reason: str


@dataclass(frozen=True)
class Series:
    """One line of a chart: y against x (e.g. speed-up against workers)."""

    name: str
    x: list[float]
    y: list[float]
    x_label: str
    y_label: str


@dataclass
class Measurement:
    """What an experiment measured: figures by name (units in the name) and chart series."""

    figures: dict[str, float | str] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    #: Why a part could not be measured here (e.g. NumPy missing), with how to get it.
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LabSettings:
    """How hard to measure: the quick lab (about a minute on 2 cores) or ``--full``."""

    full: bool = False
    cpus: int = 1

    @property
    def repeats(self) -> int:
        """Runs per figure; the best (lowest time) counts."""
        return 5 if self.full else 1

    def scale(self, quick: int, full: int) -> int:
        """A size for the quick lab or the full one."""
        return full if self.full else quick


@dataclass
class RowResult:
    """One row of the lab table, ready to render."""

    key: str
    row: str
    claim: str
    measurement: Measurement
    verdict: Verdict
    seconds: float
    error: str | None = None


class Experiment(Protocol):
    """One row of the seed's table (or one of its examples), measured here."""

    #: Short id for ``--only`` (e.g. ``"starting-time"``).
    key: str
    #: The seed's row, as the page names it (e.g. ``"Starting time"``).
    row: str
    #: What the seed claims, in its words.
    claim: str

    def run(self, settings: LabSettings) -> Measurement:
        """Measure on this machine."""
        ...

    def judge(self, measurement: Measurement) -> Verdict:
        """The verdict from the figures alone, by this experiment's thresholds."""
        ...


def worker_counts(cpus: int, beyond: int | None = None) -> list[int]:
    """1, 2, 4, ... up to ``cpus`` (and ``cpus`` itself), then on to ``beyond`` if given.

    CPU rows sweep to the usable CPUs; I/O rows go further (e.g. to 64), since waiting
    work overlaps past the number of cores.
    """
    top = max(cpus, beyond or 0)
    counts = [2**i for i in range(int(math.log2(top)) + 1)]
    if cpus not in counts:
        counts.append(cpus)
    if beyond and beyond not in counts:
        counts.append(beyond)
    return sorted(set(counts))


def interpreters_unavailable() -> str | None:
    """None where mode='interpreters' runs (Python 3.13+), else a note for the rows that
    measure it: why it could not be measured here, and how to get it."""
    from ..backends import backend_class
    from ..errors import BackendUnavailable

    try:
        backend_class("interpreters")
    except BackendUnavailable as exc:
        return f"interpreters were not measured: {exc.why}; to measure them, {exc.how}"
    return None
