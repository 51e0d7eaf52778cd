"""How figures read in reasons and reports: one way to write a duration."""

from __future__ import annotations

__all__ = ["duration"]


def duration(seconds: float) -> str:
    """``seconds`` in the unit that reads best, three significant digits: "1.5 s",
    "8.23 ms", "40.3 us"."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"
