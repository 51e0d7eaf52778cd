"""progress=: the bar's text, its counts under map/imap, and when it stays quiet."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import poolwise
from poolwise.progress import ProgressBar, progress_bar


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100, color_system=None), out


def test_bar_counts_done_and_failed_of_a_known_total() -> None:
    console, out = _console()
    bar = ProgressBar(10, "square", console)
    bar.advance(7, 1)
    bar.close()
    text = out.getvalue()
    assert "7/10" in text
    assert "1 failed" in text
    assert "square" in text


def test_unknown_total_shows_a_count() -> None:
    console, out = _console()
    bar = ProgressBar(None, "lines", console)
    bar.advance(42, 0)
    bar.close()
    assert "42 done" in out.getvalue()


def test_quiet_when_stderr_is_not_a_terminal() -> None:
    # pytest captures stderr, so it is not a terminal here
    assert progress_bar(True, 10, "x") is None
    assert progress_bar(False, 10, "x") is None


def test_map_with_progress_always_draws_the_final_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = poolwise.map(abs, range(-20, 0), mode="serial", progress="always")
    assert results == list(range(20, 0, -1))
    assert "20/20" in capsys.readouterr().err


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def test_failures_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    with poolwise.Pool("serial", progress="always") as pool:
        results = pool.imap_unordered(_fail_on_three, range(5))
        got = []
        with pytest.raises(ValueError, match="three"):
            got.extend(results)
    assert got == [0, 1, 2]
    assert "1 failed" in capsys.readouterr().err
