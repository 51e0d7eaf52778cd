"""MapRun on a fake backend that runs chunks in the test's own thread: no workers.

The fake holds each submitted chunk until ``release_at`` chunks are held, then a *plan*
delivers their outcomes (all in turn, backwards, in interleaved halves...). Deliveries only
go to the run's queue, so delivering inside ``submit`` is what a backend's result thread
does, minus the thread: the order the run sees is the plan's, every time.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from support import Counted, wait_until

from poolwise.backends.base import Backend, Chunk, Outcomes, WorkerOptions
from poolwise.chunking import Chunker
from poolwise.errors import PoolClosed
from poolwise.maprun import READ_AHEAD_CHUNKS_PER_WORKER, WINDOW_PER_WORKER, MapRun
from poolwise.retrying import RetryPolicy
from poolwise.stats import PoolStats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

#: Worker seconds the fake reports per task (any positive figure: the run measures it).
_TASK_SECONDS = 0.001


def _run_part(chunk: Chunk, start: int, stop: int) -> None:
    """Run ``chunk.tasks[start:stop]`` here and deliver their outcomes, as a worker would."""
    if start == 0 and not chunk.begin():
        return
    values: list[Any] = []
    errors: dict[int, BaseException] = {}
    for position, offset in enumerate(range(start, stop)):
        args, kwargs = chunk.task(offset)
        try:
            values.append(chunk.fn(*args, **kwargs))
        except Exception as exc:
            values.append(None)
            errors[position] = exc
    chunk.deliver(Outcomes(start, values, errors or None, _TASK_SECONDS * (stop - start)))


def in_turn(held: list[Chunk]) -> None:
    for chunk in held:
        _run_part(chunk, 0, len(chunk))


def backwards(held: list[Chunk]) -> None:
    for chunk in reversed(held):
        _run_part(chunk, 0, len(chunk))


def halves_interleaved_backwards(held: list[Chunk]) -> None:
    """First halves of the chunks, last chunk first; then the second halves, likewise."""
    for chunk in reversed(held):
        _run_part(chunk, 0, len(chunk) // 2)
    for chunk in reversed(held):
        _run_part(chunk, len(chunk) // 2, len(chunk))


class FakeBackend(Backend):
    """Runs chunks synchronously in the caller's thread, when and in the order a plan says."""

    mode: ClassVar[str] = "fake"
    chunk_overhead: ClassVar[float] = 0.0

    def __init__(
        self,
        workers: int = 1,
        *,
        release_at: int = 1,
        plan: Callable[[list[Chunk]], None] = in_turn,
    ) -> None:
        super().__init__(workers, WorkerOptions())
        #: Every chunk submitted, retries included, in submission order.
        self.submitted: list[Chunk] = []
        self.held: list[Chunk] = []
        self.release_at = release_at
        self.plan = plan

    def submit(self, chunk: Chunk) -> None:
        self.submitted.append(chunk)
        self.held.append(chunk)
        if len(self.held) >= self.release_at:
            self.release()

    def release(self) -> None:
        held, self.held = self.held, []
        self.plan(held)

    def shutdown(self, *, wait: bool, cancel_pending: bool) -> None:
        pass

    def terminate(self) -> None:
        pass


class RunsOnSubmit(FakeBackend):
    runs_on_submit: ClassVar[bool] = True


def square(x: int) -> int:
    return x * x


def fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError("input 3 is bad")
    return x


def make_run(
    backend: FakeBackend,
    fn: Callable[..., Any],
    inputs: Iterable[Any],
    *,
    chunksize: int | None = 2,
    ordered: bool = True,
    **options: Any,
) -> MapRun:
    chunker = Chunker(backend.workers, backend.chunk_overhead, fixed=chunksize)
    tasks = iter(inputs)
    # These tests hold chunks back to deliver them out of order: a read-ahead of a few
    # chunks per worker would stop the run first (test_read_ahead_* test that bound).
    options.setdefault("read_ahead", 1000)
    return MapRun(backend, fn, tasks, chunker, PoolStats(), ordered=ordered, unary=True, **options)


def test_ordered_results_come_in_input_order_whatever_order_chunks_finish() -> None:
    backend = FakeBackend(release_at=3, plan=backwards)
    assert list(make_run(backend, square, range(6))) == [0, 1, 4, 9, 16, 25]
    assert [chunk.first_index for chunk in backend.submitted] == [0, 2, 4]


def test_read_ahead_stops_taking_until_the_caller_catches_up() -> None:
    """Default bound: READ_AHEAD_CHUNKS_PER_WORKER chunks per worker not yet handed over.
    Chunks held by the backend stay in flight; the run takes no more inputs meanwhile."""
    backend = FakeBackend(workers=1, release_at=10**9)  # holds every chunk
    inputs = Counted(range(100))
    run = make_run(backend, square, inputs, read_ahead=None)
    results = iter(run)
    done = threading.Event()

    def release_when_stuck() -> None:
        # the caller blocks waiting for outcomes once the bound is reached
        wait_until(lambda: len(backend.submitted) == READ_AHEAD_CHUNKS_PER_WORKER)
        assert inputs.taken == 2 * READ_AHEAD_CHUNKS_PER_WORKER
        done.set()
        backend.release()

    releaser = threading.Thread(target=release_when_stuck)
    releaser.start()
    assert next(results) == 0
    releaser.join()
    assert done.is_set()


def test_unordered_results_come_as_chunks_finish() -> None:
    backend = FakeBackend(release_at=3, plan=backwards)
    assert list(make_run(backend, square, range(6), ordered=False)) == [16, 25, 4, 9, 0, 1]


def test_partial_deliveries_out_of_order_are_held_until_their_turn() -> None:
    backend = FakeBackend(release_at=2, plan=halves_interleaved_backwards)
    run = make_run(backend, square, range(8), chunksize=4)
    # Arrivals: [16, 25] (input 4), [0, 1], [36, 49], [4, 9]: each yielded once its turn comes.
    assert list(run.batches()) == [[0, 1], [4, 9], [16, 25], [36, 49]]


def test_unordered_partial_deliveries_come_as_they_arrive() -> None:
    backend = FakeBackend(release_at=2, plan=halves_interleaved_backwards)
    run = make_run(backend, square, range(8), chunksize=4, ordered=False)
    assert list(run.batches()) == [[16, 25], [0, 1], [36, 49], [4, 9]]


@pytest.mark.parametrize("workers", [1, 3])
def test_read_ahead_is_a_window_of_chunks_per_worker(workers: int) -> None:
    inputs = Counted(itertools.count())
    run = make_run(FakeBackend(workers), square, inputs, chunksize=3)
    results = iter(run)
    assert next(results) == 0
    window = WINDOW_PER_WORKER * workers
    assert inputs.taken == run.taken == window * 3
    results.close()
    assert inputs.taken == window * 3  # closing took nothing more


def test_before_any_task_is_measured_one_task_is_taken() -> None:
    inputs = Counted(itertools.count())
    run = make_run(FakeBackend(2), square, inputs, chunksize=None)
    results = iter(run)
    assert next(results) == 0
    assert inputs.taken == 1
    results.close()


def test_when_the_first_outcome_is_late_every_worker_gets_one_task() -> None:
    # The fake delivers nothing until 3 chunks are out: the run must stop waiting for the
    # first outcome (PROBE_WAIT) and start one task on each worker.
    inputs = Counted(itertools.count())
    backend = FakeBackend(3, release_at=3)
    results = iter(make_run(backend, square, inputs, chunksize=None))
    assert next(results) == 0
    assert [len(chunk) for chunk in backend.submitted[:3]] == [1, 1, 1]
    results.close()


def test_a_backend_that_runs_on_submit_reads_no_chunk_ahead() -> None:
    inputs = Counted(itertools.count())
    results = iter(make_run(RunsOnSubmit(4), square, inputs, chunksize=5))
    assert next(results) == 0
    assert inputs.taken == 5
    results.close()


def test_ordered_results_held_behind_a_slow_chunk_stay_within_the_window() -> None:
    """The first chunk is held; the others finish at once. The run must stop taking inputs
    once a window of results waits behind it, though fewer chunks than that are out."""
    window = WINDOW_PER_WORKER * 1

    def all_but_the_first(held: list[Chunk]) -> None:
        for chunk in held:
            if chunk.first_index == 0:
                backend.held.append(chunk)
            else:
                in_turn([chunk])
        if len(backend.submitted) == window:
            # The window is full: the slow chunk finishes now. A run that ignored its
            # bound would take more inputs before it next looks at the outcomes.
            slow, backend.held = backend.held, []
            in_turn(slow)

    backend = FakeBackend(1, plan=all_but_the_first)
    inputs = Counted(itertools.count())
    results = iter(make_run(backend, square, inputs, chunksize=1))
    assert next(results) == 0
    assert inputs.taken == window
    results.close()  # type: ignore[attr-defined]


def test_stop_taking_ends_the_run_after_what_it_took() -> None:
    inputs = Counted(range(1000))  # finite: a run that kept taking would end, and fail below
    run = make_run(FakeBackend(2), square, inputs, chunksize=2)
    results = iter(run)
    assert next(results) == 0
    run.stop_taking()
    rest = list(results)
    taken = inputs.taken
    assert [0, *rest] == [x * x for x in range(taken)]
    assert next(inputs) == taken  # the rest stay in the iterator, none lost


def test_return_exceptions_puts_each_error_in_its_place() -> None:
    run = make_run(
        FakeBackend(release_at=3, plan=backwards), fail_on_3, range(6), return_exceptions=True
    )
    results = list(run)
    assert results[:3] == [0, 1, 2]
    assert isinstance(results[3], ValueError)
    assert str(results[3]) == "input 3 is bad"
    assert results[4:] == [4, 5]
    assert run.stats.failed == 1
    assert run.stats.done == 5


def test_an_error_is_raised_after_the_results_before_it() -> None:
    run = make_run(FakeBackend(release_at=3, plan=backwards), fail_on_3, range(6))
    seen: list[int] = []
    with pytest.raises(ValueError, match="input 3 is bad"):
        seen.extend(run)
    assert seen == [0, 1, 2]


def test_batches_raise_the_error_after_the_batch_that_precedes_it() -> None:
    run = make_run(FakeBackend(release_at=3, plan=backwards), fail_on_3, range(6))
    batches = run.batches()
    assert next(batches) == [0, 1]
    assert next(batches) == [2]
    with pytest.raises(ValueError, match="input 3 is bad"):
        next(batches)


class FailsFirstTime:
    """Fails the first ``times`` runs of each input in ``bad``, counting every run."""

    def __init__(self, bad: set[int], times: int = 1) -> None:
        self.bad = bad
        self.times = times
        self.runs: dict[int, int] = {}

    def __call__(self, x: int) -> int:
        self.runs[x] = self.runs.get(x, 0) + 1
        if x in self.bad and self.runs[x] <= self.times:
            raise ConnectionError(f"flaky {x}")
        return x


def test_retries_resubmit_only_the_failed_tasks_each_alone() -> None:
    backend = FakeBackend()
    fn = FailsFirstTime({1, 4})
    run = make_run(backend, fn, range(6), policy=RetryPolicy(1, None))
    assert list(run) == list(range(6))
    retries = backend.submitted[3:]
    assert [(chunk.first_index, list(chunk.tasks)) for chunk in retries] == [(1, [1]), (4, [4])]
    assert fn.runs == {0: 1, 1: 2, 2: 1, 3: 1, 4: 2, 5: 1}
    assert run.stats.retried == 2
    assert run.stats.retried_inputs == [1, 4]


def test_a_task_that_fails_past_its_retries_raises_after_the_results_before_it() -> None:
    backend = FakeBackend()
    fn = FailsFirstTime({3}, times=3)
    run = make_run(backend, fn, range(6), policy=RetryPolicy(2, None))
    seen: list[int] = []
    with pytest.raises(ConnectionError, match="flaky 3"):
        seen.extend(run)
    assert seen == [0, 1, 2]
    assert fn.runs[3] == 3  # the first run and two retries


def test_first_index_numbers_chunks_and_retries_from_there() -> None:
    backend = FakeBackend()
    fn = FailsFirstTime({2})
    run = make_run(backend, fn, range(4), first_index=10, policy=RetryPolicy(1, None))
    assert list(run) == [0, 1, 2, 3]
    assert [chunk.first_index for chunk in backend.submitted] == [10, 12, 12]
    assert run.stats.retried_inputs == [12]


def test_chunks_the_pool_cancels_end_the_run_with_pool_closed() -> None:
    def cancel_all(held: list[Chunk]) -> None:
        for chunk in held:
            chunk.cancel()

    run = make_run(FakeBackend(release_at=2, plan=cancel_all), square, range(4))
    with pytest.raises(PoolClosed):
        list(run)


def test_chunks_left_behind_by_a_caller_who_stopped_are_skipped() -> None:
    backend = FakeBackend(release_at=2, plan=backwards)
    results = iter(make_run(backend, square, range(4)))
    assert next(results) == 0  # chunk 1 came first, so chunk 0's results arrived too
    results.close()
    assert not backend.submitted[0].begin()  # a worker taking a chunk now is told to skip it


class CountingBar:
    """A progress bar that keeps what it was told."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.closed = False

    def advance(self, count: int, failed: int) -> None:
        self.done += count
        self.failed += failed

    def close(self) -> None:
        self.closed = True


def test_the_progress_bar_counts_every_outcome_and_closes() -> None:
    bar = CountingBar()
    backend = FakeBackend(release_at=3, plan=backwards)
    run = make_run(backend, fail_on_3, range(6), return_exceptions=True, progress=lambda: bar)
    assert len(list(run)) == 6
    assert (bar.done, bar.failed, bar.closed) == (6, 1, True)
