"""progress=: the bar's text, its counts under map/imap, and when it stays quiet."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import poolwise
from poolwise.progress import HEARTBEAT, PlainProgress, ProgressBar, progress_bar


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


class _Clock:
    """A clock the test moves by hand: the line rate is a matter of seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _plain(total: int | None) -> tuple[PlainProgress, io.StringIO, _Clock]:
    out, clock = io.StringIO(), _Clock()
    return PlainProgress(total, "square", out, clock=clock), out, clock


def test_off_a_terminal_always_writes_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress_bar("always", 10, "square")  # pytest's stderr is not a terminal
    assert isinstance(bar, PlainProgress)
    bar.advance(10, 0)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "\x1b[" not in err
    assert err.splitlines()[-1].startswith("square: finished 10/10, 0 failed")


def test_plain_lines_come_at_each_tenth_of_the_total() -> None:
    bar, out, clock = _plain(1000)
    start = clock.now
    for i in range(1000):
        clock.now += 2**-10  # exact in binary: the figures below are exact too
        bar.advance(1, 1 if i == 3 else 0)
    clock.now = start + 2.0
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:-1]] == [f"{n}00/1000" for n in range(1, 10)]
    assert lines[0] == "square: 100/1000 (10%), 1 failed, 1,024.0/s, 0:00:00 elapsed, ~0:00:01 left"
    assert lines[-1] == "square: finished 1000/1000, 1 failed, 500.0/s, 0:00:02 elapsed"


def test_a_big_advance_crossing_several_tenths_writes_one_line() -> None:
    bar, out, _ = _plain(100)
    bar.advance(55, 0)
    bar.close()
    assert len(out.getvalue().splitlines()) == 2


def test_unknown_total_writes_a_line_every_heartbeat_while_the_count_moves() -> None:
    bar, out, clock = _plain(None)
    bar.advance(5, 0)
    assert out.getvalue() == ""
    clock.now += HEARTBEAT
    bar.advance(5, 0)
    assert out.getvalue() == "square: 10 done, 0 failed, 0.3/s, 0:00:30 elapsed\n"
    clock.now += HEARTBEAT - 1
    bar.advance(5, 0)
    clock.now += 1
    bar.advance(0, 0)
    assert len(out.getvalue().splitlines()) == 2
    clock.now += HEARTBEAT
    bar.advance(0, 0)  # nothing moved: no line
    assert len(out.getvalue().splitlines()) == 2
    bar.close()
    assert (
        out.getvalue().splitlines()[-1]
        == "square: ended, 15 done, 0 failed, 0.2/s, 0:01:30 elapsed"
    )


def test_a_run_that_stops_early_says_so_once() -> None:
    bar, out, _ = _plain(6)
    bar.advance(3, 1)
    out.truncate(0)
    out.seek(0)
    bar.close()
    bar.close()
    assert out.getvalue().startswith("square: stopped at 3/6, 1 failed")
    assert len(out.getvalue().splitlines()) == 1


def test_an_empty_map_writes_only_its_final_line() -> None:
    bar, out, _ = _plain(0)
    bar.close()
    assert out.getvalue().startswith("square: finished 0/0, 0 failed")
