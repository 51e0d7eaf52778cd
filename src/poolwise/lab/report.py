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
            "rows": [asdict(row) for row in self.rows],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
