"""progress=: the bar counts every result of a run on real workers (in tests/unit, the
bar is checked on its own and under serial runs, which start no workers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import poolwise

if TYPE_CHECKING:
    import pytest


def test_map_with_progress_always_draws_the_final_count(
    pool: poolwise.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pool.map(abs, range(-20, 0), progress="always") == list(range(20, 0, -1))
    assert "20/20" in capsys.readouterr().err


def test_imap_unordered_counts_every_result(capsys: pytest.CaptureFixture[str]) -> None:
    with poolwise.Pool("threads", 2, progress="always") as pool:
        assert sorted(pool.imap_unordered(abs, range(-30, 0))) == list(range(1, 31))
    assert "30/30" in capsys.readouterr().err
