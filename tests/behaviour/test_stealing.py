"""Work stealing on mode="processes": a chunk waiting behind a long task on one worker is
taken back for an idle one, and still runs exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks import record, wait_for_the_others

import poolwise

if TYPE_CHECKING:
    from pathlib import Path


def test_a_chunk_waiting_behind_a_long_task_runs_on_the_idle_worker(tmp_path: Path) -> None:
    # 4 one-task chunks on 2 workers: each worker gets two (one running, one waiting in its
    # pipe). Task 0 waits for all three others, so the one queued behind it must be stolen.
    with poolwise.Pool("processes", 2) as pool:
        done, report = pool.map(
            wait_for_the_others, [str(tmp_path)] * 4, range(4), [3] * 4, chunksize=1, report=True
        )
    assert done == [True] * 4
    assert report.backend["tasks_stolen"] >= 1
    assert "tasks stolen" in str(report)


def test_stolen_chunks_run_exactly_once_in_order(tmp_path: Path) -> None:
    log = tmp_path / "ran"
    log.touch()
    inputs = list(range(40))
    with poolwise.Pool("processes", 3) as pool:
        for _ in range(3):  # ends of maps, where idle workers steal
            assert pool.map(record, [str(log)] * len(inputs), inputs, chunksize=1) == inputs
    ran = sorted(int(line) for line in log.read_text().split())
    assert ran == sorted(inputs * 3)
