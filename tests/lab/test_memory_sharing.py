"""The memory-sharing row: who sees a worker's write, no leaked blocks, and the verdict rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from support import wait_until, worker_processes

import poolwise
from poolwise.lab import memory_sharing
from poolwise.lab.base import DEPENDS, HOLDS, NOT_HERE, LabSettings, Measurement


def _blocks() -> set[str]:
    shm = Path("/dev/shm")
    if not shm.exists():
        return set()
    return {p.name for p in shm.iterdir() if p.name.startswith(memory_sharing.SHM_PREFIX)}


def test_threads_see_the_write_processes_do_not_shared_memory_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory_sharing, "QUICK_BUFFER_MB", 1)
    blocks_before = _blocks()

    measurement = memory_sharing.EXPERIMENT.run(LabSettings(full=False, cpus=poolwise.cpus()))

    figures = measurement.figures
    assert figures["buffer MB"] == 1
    assert figures["threads: parent saw the write"] == "yes"
    methods = [m for m in ("fork", "spawn", "forkserver") if f"processes ({m})" in str(figures)]
    assert methods, figures
    for method in methods:
        assert figures[f"processes ({method}): parent saw the write"] == "no"
    assert figures["processes with share(): parent saw the write"] == "yes"
    for name in ("threads", "processes, copy", "processes, share()"):
        assert float(figures[f"{name}: hand-over s"]) > 0
    assert measurement.notes == []
    assert memory_sharing.EXPERIMENT.judge(measurement).status in (HOLDS, DEPENDS)
    assert not memory_sharing._SEEN  # the parent's list is left as it was
    wait_until(lambda: not worker_processes(), what=f"workers left: {worker_processes()}")
    assert _blocks() == blocks_before


class _BrokenPool:
    """Stands in for a pool whose task fails after the block was created."""

    def submit(self, *_args: object) -> None:
        raise RuntimeError("worker lost")


def test_shared_blocks_are_unlinked_when_the_worker_fails() -> None:
    blocks_before = _blocks()
    with pytest.raises(RuntimeError, match="worker lost"):
        memory_sharing._shared_write_seen(_BrokenPool())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="worker lost"):
        memory_sharing._shared_hand_over_seconds(_BrokenPool(), bytes(4096), 1)  # type: ignore[arg-type]
    assert _blocks() == blocks_before


def test_a_wrong_checksum_is_an_error_not_a_figure() -> None:
    with pytest.raises(RuntimeError, match="differs"):
        memory_sharing._best_seconds(1, lambda: 1, expected=2)


# The verdict rule, from synthetic figures on both sides of each threshold.

_COPY_S = 0.3


def _measured(**changes: Any) -> Measurement[memory_sharing.Sharing]:
    """Figures as a 2-core machine gives them: the seed's row holds, shared memory helps;
    ``changes`` replace some of them."""
    sharing = memory_sharing.Sharing(
        buffer_mb=64,
        threads_saw="yes",
        threads_hand_over_s=0.02,
        processes_saw={"fork": "no", "spawn": "no", "forkserver": "no"},
        start_method="forkserver",
        copy_hand_over_s=_COPY_S,
        shared_saw="yes",
        shared_hand_over_s=0.03,
    )
    return Measurement(dataclasses.replace(sharing, **changes))


def _judge(measurement: Measurement[memory_sharing.Sharing]) -> tuple[str, str]:
    verdict = memory_sharing.EXPERIMENT.judge(measurement)
    return verdict.status, verdict.reason


def _shared_s(seconds: float) -> Measurement[memory_sharing.Sharing]:
    return _measured(shared_hand_over_s=seconds)


def test_depends_when_a_shared_block_is_seen_and_saves_the_factor() -> None:
    status, reason = _judge(_shared_s(_COPY_S / memory_sharing.SHARED_SAVING_FACTOR))
    assert status == DEPENDS
    assert "0.30 s by copy" in reason
    assert "a thread in 0.02 s" in reason
    assert "poolwise.share()" in reason


def test_holds_when_the_shared_block_saves_less_than_the_factor() -> None:
    status, reason = _judge(_shared_s(_COPY_S / memory_sharing.SHARED_SAVING_FACTOR * 1.05))
    assert status == HOLDS
    assert "64 MB buffer reached a process worker" in reason
    assert "0.30 s by copy" in reason
    assert "processes (fork, spawn, forkserver) did not" in reason


@pytest.mark.parametrize("shared", ["unavailable", "no", "partly"])
def test_holds_when_processes_cannot_share_memory_here(shared: str) -> None:
    shared_s = None if shared == "unavailable" else 0.03
    status, reason = _judge(_measured(shared_saw=shared, shared_hand_over_s=shared_s))
    assert status == HOLDS
    assert "0.30 s by copy" in reason


def test_holds_when_the_shared_block_was_seen_but_not_timed() -> None:
    status, reason = _judge(_measured(shared_hand_over_s=None))
    assert status == HOLDS
    assert "not timed" in reason


def test_a_full_dev_shm_skips_the_big_block_not_the_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory_sharing, "_shm_free_mb", lambda: 1.0)
    notes: list[str] = []
    with poolwise.Pool("threads", 1) as pool:
        assert memory_sharing._shared(pool, bytes(4096), 1, notes) == ("yes", None)
    assert "1 MB free" in notes[0]


@pytest.mark.parametrize("seen", ["no", "partly"])
def test_does_not_hold_when_the_parent_misses_a_thread_write(seen: str) -> None:
    assert _judge(_measured(threads_saw=seen))[0] == NOT_HERE


@pytest.mark.parametrize("seen", ["yes", "partly"])
def test_does_not_hold_when_the_parent_sees_a_process_write(seen: str) -> None:
    saw = {"fork": seen, "spawn": "no", "forkserver": "no"}
    status, reason = _judge(_measured(processes_saw=saw))
    assert status == NOT_HERE
    assert "processes (fork)" in reason


def test_depends_when_no_process_could_be_measured() -> None:
    assert _judge(_measured(processes_saw={}))[0] == DEPENDS


@pytest.mark.parametrize(
    ("saving", "near"), [(20.0, False), (2.1, True), (1.9, True), (1.5, False)]
)
def test_a_saving_near_the_factor_is_measured_again(saving: float, near: bool) -> None:
    measurement = _shared_s(_COPY_S / saving)
    assert memory_sharing.EXPERIMENT.near_threshold(measurement) is near
    # a share() that could not be used has no saving to be near
    assert not memory_sharing.EXPERIMENT.near_threshold(_measured(shared_saw="no"))
