"""What every lab experiment is: measure, then judge the seed's claim from the figures.

An experiment measures one row (or example) of the seed's "processes vs threads" table on
this machine and returns a ``Measurement``: a typed record of what it measured (a frozen
dataclass of the experiment's own) and, for the charts, series. ``judge`` reads the record's
fields and turns them into a ``Verdict`` by stated thresholds (module constants of the
experiment, each with a comment on where its number came from); it never measures, so
tests feed it synthetic records on both sides of each threshold. The record also names its
figures for people (``Record.figures``, units in the names): that is all rendering
(terminal, JSON, HTML) sees, through ``RowResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

__all__ = [
    "DEPENDS",
    "HOLDS",
    "NOT_HERE",
    "Experiment",
    "LabSettings",
    "Measurement",
    "NamedFigures",
    "Record",
    "RecordT",
    "RowResult",
    "Series",
    "Status",
    "Verdict",
    "Worker",
    "interpreters_unavailable",
    "near",
    "worker_counts",
]

Status = Literal["holds", "does not hold here", "depends"]
HOLDS: Status = "holds"
NOT_HERE: Status = "does not hold here"
DEPENDS: Status = "depends"

#: A figure within this share of a verdict's threshold is measured again (#14): on a
#: shared 2-core machine one run's figures move by about that much.
NEAR = 0.1

#: What a figure was measured on: a primitive itself (a thread, a process, an interpreter)
#: or a poolwise pool of them.
Worker = Literal["thread", "process", "interpreter", "pool"]


@dataclass(frozen=True)
class Verdict:
    """The seed's claim judged on this machine: a status and one sentence with figures."""

    status: Status
    reason: str

    @classmethod
    def holds(cls, reason: str) -> Verdict:
        """The claim holds here, because ``reason``."""
        return cls(HOLDS, reason)

    @classmethod
    def not_here(cls, reason: str) -> Verdict:
        """The claim does not hold on this machine, because ``reason``."""
        return cls(NOT_HERE, reason)

    @classmethod
    def depends(cls, reason: str) -> Verdict:
        """Whether the claim holds depends (on the start method, the load...): ``reason``."""
        return cls(DEPENDS, reason)


@dataclass(frozen=True)
class Series:
    """One line of a chart: y against x (e.g. speed-up against workers)."""

    name: str
    x: list[float]
    y: list[float]
    x_label: str
    y_label: str


class Record(Protocol):
    """What one experiment measured, as typed fields its ``judge`` reads."""

    def figures(self) -> dict[str, float | str]:
        """The same figures by name, units in the name, for the terminal, JSON and HTML."""
        ...


RecordT = TypeVar("RecordT", bound=Record)


@dataclass(frozen=True)
class NamedFigures:
    """A record that is only figures by name: for a row nothing could be measured for (it
    has none) and for tests of rendering, which sees names and values only."""

    named: dict[str, float | str] = field(default_factory=dict)

    def figures(self) -> dict[str, float | str]:
        """The figures as given."""
        return dict(self.named)


@dataclass
class Measurement(Generic[RecordT]):
    """What an experiment measured: its typed record and chart series."""

    record: RecordT
    series: list[Series] = field(default_factory=list)
    #: Why a part could not be measured here (e.g. NumPy missing), with how to get it.
    notes: list[str] = field(default_factory=list)

    @property
    def figures(self) -> dict[str, float | str]:
        """The record's figures by name (units in the name), in the order it measured them."""
        return self.record.figures()


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
    measurement: Measurement[Record]
    verdict: Verdict
    seconds: float
    error: str | None = None
    #: Share of the machine's CPU time other programs took while the row ran (None: not
    #: known here).
    others_share: float | None = None


class Experiment(Protocol[RecordT]):
    """One row of the seed's table (or one of its examples), measured here."""

    #: Short id for ``--only`` (e.g. ``"starting-time"``).
    key: str
    #: The seed's row, as the page names it (e.g. ``"Starting time"``).
    row: str
    #: What the seed claims, in its words.
    claim: str

    def run(self, settings: LabSettings) -> Measurement[RecordT]:
        """Measure on this machine."""
        ...

    def judge(self, measurement: Measurement[RecordT]) -> Verdict:
        """The verdict from the record alone, by this experiment's thresholds."""
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


def near(value: float | None, *thresholds: float, margin: float = NEAR) -> bool:
    """Whether ``value`` lies within ``margin`` (a share) of any of ``thresholds``: a
    verdict turning on it could come out either way from one run to the next."""
    if value is None or not math.isfinite(value):
        return False
    return any(abs(value - threshold) <= margin * abs(threshold) for threshold in thresholds)
