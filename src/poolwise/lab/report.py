"""The lab's results as data: the rows plus the machine facts that change the verdicts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..system import MachineInfo, machine_info

if TYPE_CHECKING:
    from pathlib import Path

    from .base import RowResult

__all__ = ["LabReport"]


@dataclass
class LabReport:
    """Everything one lab run found: machine facts, settings, and one result per row."""

    machine: MachineInfo
    full: bool
    rows: list[RowResult]
    seconds: float

    @classmethod
    def of(cls, rows: list[RowResult], *, full: bool, seconds: float) -> LabReport:
        return cls(machine=machine_info(), full=full, rows=rows, seconds=seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, the same results the terminal table and the HTML show."""
        return {
            "machine": asdict(self.machine),
            "full": self.full,
            "seconds": self.seconds,
            "rows": [_row_dict(row) for row in self.rows],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _row_dict(row: RowResult) -> dict[str, Any]:
    """One row as JSON-ready data: its measurement as the figures by name, not the record's
    fields, so the JSON says what the terminal table and the HTML say."""
    measurement = row.measurement
    return {
        "key": row.key,
        "row": row.row,
        "claim": row.claim,
        "measurement": {
            "figures": measurement.figures,
            "series": [asdict(line) for line in measurement.series],
            "notes": list(measurement.notes),
        },
        "verdict": asdict(row.verdict),
        "seconds": row.seconds,
        "other_programs_cpu_share": row.others_share,
        "error": row.error,
    }
