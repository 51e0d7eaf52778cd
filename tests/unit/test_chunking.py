"""Chunk sizes follow measured task times, within the balance cap."""

from __future__ import annotations

from poolwise.chunking import (
    BALANCE_SECONDS,
    CHUNKS_PER_WORKER,
    MAX_CHUNK_TASKS,
    OVERHEAD_SHARE,
    SETTLED_TASK_SECONDS,
    Chunker,
)


def test_first_chunk_is_one_task_before_anything_is_measured() -> None:
    assert Chunker(workers=4, overhead=1e-4, total=10_000).next_size() == 1


def test_tiny_tasks_get_chunks_as_large_as_balance_allows() -> None:
    chunker = Chunker(workers=2, overhead=3e-4, total=20_000)
    chunker.observe(100, 100e-6)  # 1 us a task
    assert chunker.next_size() == 20_000 // (CHUNKS_PER_WORKER * 2)


def test_chunk_time_targets_the_overhead_share() -> None:
    chunker = Chunker(workers=2, overhead=3e-4, total=None)
    chunker.observe(10, 10e-3)  # 1 ms a task: 30 ms target -> 30 tasks
    assert chunker.next_size() == int(3e-4 / OVERHEAD_SHARE / 1e-3)


def test_slow_tasks_travel_alone() -> None:
    chunker = Chunker(workers=64, overhead=3e-4, total=1_000_000)
    chunker.observe(1, 2.0)
    assert chunker.next_size() == 1


def test_unknown_length_is_capped() -> None:
    chunker = Chunker(workers=2, overhead=3e-4)
    chunker.observe(1_000_000, 1e-3)
    assert chunker.next_size() == MAX_CHUNK_TASKS


def test_fixed_chunksize_wins_but_not_over_the_limit() -> None:
    assert Chunker(workers=2, overhead=3e-4, fixed=50).next_size() == 50
    assert Chunker(workers=2, overhead=3e-4, fixed=50, limit=8).next_size() == 8


def test_max_tasks_per_worker_caps_measured_sizes() -> None:
    chunker = Chunker(workers=2, overhead=3e-4, total=100_000, limit=10)
    chunker.observe(1000, 1e-4)
    assert chunker.next_size() == 10


def test_gh13_cost_per_task_does_not_grow_with_workers() -> None:
    """Tiny tasks: the same chunks on 2 and on 64 workers (splitting 2 ms of work further
    for balance only adds round trips). Long tasks: 64 workers get one task per chunk."""
    sizes = []
    for workers in (2, 64):
        chunker = Chunker(workers=workers, overhead=3e-4, total=20_000)
        chunker.observe(1000, 1e-4)  # 0.1 us a task
        sizes.append(chunker.next_size())
    assert sizes[0] == sizes[1] == min(MAX_CHUNK_TASKS, int(BALANCE_SECONDS / 1e-7))
    slow = Chunker(workers=64, overhead=3e-4, total=100)
    slow.observe(10, 0.1)  # 10 ms a task
    assert slow.next_size() == 1


def test_explain_names_the_measured_figure_and_the_rule() -> None:
    assert Chunker(workers=2, overhead=3e-4, fixed=50).explain() == "chunksize 50: as asked"
    chunker = Chunker(workers=2, overhead=3e-4, total=None)
    assert "nothing measured yet" in chunker.explain()
    chunker.observe(10, 10e-3)  # 1 ms a task: 30 ms target -> 30 tasks
    chunker.next_size()
    size = chunker.last
    assert chunker.explain().startswith(f"chunksize {size}: tasks took 1 ms each, so chunks of")
    slow = Chunker(workers=2, overhead=3e-4)
    slow.observe(1, 2.0)
    slow.next_size()
    assert "chunksize 1: tasks took 2 s each, more than" in slow.explain()
    capped = Chunker(workers=2, overhead=3e-4, total=80)  # cap: 80 / (4 x 2) = 10
    capped.observe(100, 1e-4)
    capped.next_size()
    assert "would leave some workers idle" in capped.explain()


def _sizes_until_done(chunker: Chunker, total: int) -> list[int]:
    sizes = []
    left = total
    while left:
        size = min(chunker.next_size(), left)
        chunker.took(size)
        sizes.append(size)
        left -= size
    return sizes


def test_gh13_chunks_shrink_as_the_inputs_left_shrink() -> None:
    """Guided self-scheduling: 60 small tasks then big ones must not end in one chunk."""
    chunker = Chunker(workers=2, overhead=3e-5, total=64)
    chunker.observe(4, 4 * 1e-3)  # 1 ms a task: the fixed cost alone asks for 3 of them
    assert int(BALANCE_SECONDS / 1e-3) == 2
    sizes = _sizes_until_done(chunker, 64)
    assert sizes[0] == 3  # the fixed cost's size, under 64 / (4 chunks x 2 workers)
    assert sizes == sorted(sizes, reverse=True)
    # no chunk holds more than a quarter of a worker's share of what was left, so the
    # last 4 inputs (the big ones in the 'uneven' benchmark) go 2 by 2 at most
    assert max(sizes[-2:]) <= 2
    many = Chunker(workers=2, overhead=3e-4, total=64)  # processes: 30 wanted, 8 allowed
    many.observe(4, 4 * 1e-3)
    guided = _sizes_until_done(many, 64)
    assert guided[0] == 8
    assert guided[-4:] == [2, 2, 2, 2]  # the floor: BALANCE_SECONDS of 1 ms tasks


def test_gh13_guided_chunks_stop_shrinking_at_the_balance_floor() -> None:
    """20,000 tasks of 1 us: shrinking to one task would be thousands of round trips."""
    chunker = Chunker(workers=2, overhead=3e-4, total=20_000)
    chunker.observe(1000, 1e-3)  # 1 us a task
    sizes = _sizes_until_done(chunker, 20_000)
    floor = int(BALANCE_SECONDS / 1e-6)
    assert min(sizes[:-1]) >= floor
    assert len(sizes) <= 20_000 // floor + 8


def test_gh13_single_tiny_tasks_do_not_settle_the_size_a_batch_does() -> None:
    """64 one-task probes of a 0.3 us task measure ~15 us each (the worker's own cost):
    sized from them, 20,000 tasks would travel in ~150 chunks on 64 workers."""
    chunker = Chunker(workers=64, overhead=3e-4, total=20_000)
    for _ in range(64):
        chunker.observe(1, 15e-6)
    assert chunker.sized
    assert not chunker.settled
    chunker.observe(200, 200 * 0.3e-6)
    assert chunker.settled
    assert chunker.seconds_per_task == 0.3e-6
    assert chunker.next_size() == int(BALANCE_SECONDS / 0.3e-6)


def test_gh13_a_single_task_long_enough_settles_the_size() -> None:
    chunker = Chunker(workers=64, overhead=3e-4, total=1_000)
    chunker.observe(1, SETTLED_TASK_SECONDS)
    assert chunker.settled
    assert Chunker(workers=2, overhead=3e-4, fixed=8).settled
