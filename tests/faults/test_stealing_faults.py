"""Property: with work stealing, crashes and timeouts mixed in, every task of every chunk
gets exactly one outcome and no task ever runs twice."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tasks import follow_plan

import poolwise
from poolwise.backends.base import Chunk, WorkerOptions
from poolwise.backends.processes import ProcessBackend

PLANS = st.sampled_from(["ok", "ok", "ok", "ok", "slow", "exit", "hang"])


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    # a slow first task: the chunks queued behind it are there to steal
    plans=st.lists(PLANS, min_size=5, max_size=24).map(lambda plans: ["slow", *plans]),
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=24),
    workers=st.integers(2, 3),
)
def test_each_task_one_outcome_and_never_two_runs_under_stealing_crashes_and_timeouts(
    sink_factory: type, plans: list[str], sizes: list[int], workers: int
) -> None:
    sink = sink_factory()
    sink.expected = len(plans)
    fd, log = tempfile.mkstemp(prefix="poolwise-test-")
    os.close(fd)
    backend = ProcessBackend(workers, WorkerOptions())
    timeout = 0.3 if "hang" in plans else None
    try:
        start, chunks = 0, 0
        while start < len(plans):
            size = sizes[chunks % len(sizes)]
            tasks = [((log, x, plans[x]), {}) for x in range(start, min(start + size, len(plans)))]
            backend.submit(Chunk(follow_plan, tasks, start, sink, timeout=timeout))
            start, chunks = start + len(tasks), chunks + 1
        assert sink.done.wait(120)
        stolen = backend.stats()["tasks_stolen"]
    finally:
        backend.terminate()
        with open(log) as f:
            ran = [int(line) for line in f.read().split()]
        os.unlink(log)
    outcomes = sink.outcomes
    assert sorted(outcomes) == list(range(len(plans)))
    assert all(len(v) == 1 for v in outcomes.values()), "each task exactly one outcome"
    assert len(ran) == len(set(ran)), f"a task ran twice ({stolen} tasks stolen)"
    for x, [(kind, outcome)] in outcomes.items():
        if kind == "value":
            assert outcome == x
            assert x in ran
            assert plans[x] in ("ok", "slow")
        else:
            # a crash or timeout; tasks before it in its chunk may lose their results too
            assert isinstance(outcome, (poolwise.WorkerCrashed, poolwise.TaskTimeout)), outcome
