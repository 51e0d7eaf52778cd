"""The CPU-bound lab row: a tiny real run, the task functions, and each verdict rule."""

from __future__ import annotations

import re
import sys
import zlib

import pytest

from poolwise.lab import base, cpu_bound, cpu_workloads
from poolwise.lab.base import (
    DEPENDS,
    HOLDS,
    NOT_HERE,
    LabSettings,
    Measurement,
    Verdict,
    interpreters_unavailable,
)
from poolwise.system import gil_enabled

#: Just above and just below a threshold.
EPS = 0.01


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workloads of a few ms in all, so a real run costs little more than starting pools."""
    for name, value in {
        "PRIMES_SPAN": 50,
        "MATMUL_PYTHON_SIZE": 4,
        "MATMUL_NUMPY_SIZE": 4,
        "MATMUL_NUMPY_PRODUCTS": 2,
        "FRAME_WIDTH": 32,
        "FRAME_HEIGHT": 8,
        "FRAME_COUNT": 2,
    }.items():
        monkeypatch.setattr(cpu_workloads, name, value)
    for name, value in {
        "TASKS_PER_WORKER": 2,
        "WARM_SECONDS": 0.01,
        "WARM_SECONDS_INTERPRETERS": 0.01,
    }.items():
        monkeypatch.setattr(cpu_bound, name, value)


def _block_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import numpy` raise ImportError, as if it were not installed.
    monkeypatch.setitem(sys.modules, "numpy", None)


def _numpy_installed() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


# -- a real run ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("numpy", ["as-installed", "missing"])
def test_tiny_run_measures_every_workload_and_mode(
    numpy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if numpy == "missing":
        _block_numpy(monkeypatch)
    with_numpy = numpy == "as-installed" and _numpy_installed()

    measurement = cpu_bound.EXPERIMENT.run(LabSettings(full=False, cpus=2))

    keys = ["primes", "matmul-python", "zlib", "lzma"] + (["matmul-numpy"] if with_numpy else [])
    figures = measurement.figures
    assert figures["cpus"] == 2
    assert figures["top workers"] == 2
    assert figures["gil"] == ("enabled" if gil_enabled() else "disabled")
    for key in keys:
        assert isinstance(figures[f"{key}: serial seconds"], float)
        for mode in ("threads", "processes"):
            for workers in (1, 2):
                speedup = figures[f"{key}: {mode} speed-up at {workers} workers"]
                assert isinstance(speedup, float)
                assert speedup > 0
            assert figures[f"{key}: best {mode} workers"] in (1, 2)
        # the figure and the note say the same choice
        assert f" {figures[f'{key}: auto chose']} x" in measurement.notes[-1]
        assert figures[f"{key}: auto speed-up, probing and start-up included"] > 0
    # Interpreter workers (Python 3.13+) run the pure-Python workloads only; elsewhere a
    # note says why they were not measured.
    interpreters = interpreters_unavailable() is None
    pure = list(cpu_workloads.PURE_PYTHON) if interpreters else []
    for key in pure:
        for workers in (1, 2):
            assert figures[f"{key}: interpreters speed-up at {workers} workers"] > 0
    assert not [name for name in figures if name.startswith(("zlib: interp", "lzma: interp"))]
    assert len(measurement.series) == 2 * len(keys) + len(pure)
    for series in measurement.series:
        assert series.x == [1.0, 2.0]
        assert len(series.y) == 2
        assert all(y > 0 for y in series.y)
    modes = {"threads", "processes"} | ({"interpreters"} if interpreters else set())
    assert {s.name.rsplit(": ", 1)[1] for s in measurement.series} == modes
    about_interpreters = [note for note in measurement.notes if "interpreters" in note]
    assert len(about_interpreters) == 1
    if interpreters:
        assert "NumPy cannot be imported in a subinterpreter" in about_interpreters[0]
    else:
        assert "3.13" in about_interpreters[0]

    numpy_figures = [name for name in figures if name.startswith("matmul-numpy")]
    assert measurement.notes[-1].startswith("mode='auto' (fresh pool")
    others = [note for note in measurement.notes[:-1] if note not in about_interpreters]
    if with_numpy:
        assert numpy_figures
        assert others == []
    else:
        assert numpy_figures == []
        assert any("poolwise[numpy]" in note for note in measurement.notes)
    verdict = cpu_bound.EXPERIMENT.judge(measurement)
    # judged from this measurement: the reason quotes a pure-Python workload and a speed-up
    # (which one depends on the tiny run's figures: the matmul alone when threads beat
    # processes on it, as they do in some tiny runs on a busy 2-core machine)
    assert "pure-Python" in verdict.reason, verdict.reason
    assert re.search(r"\d\.\d\dx", verdict.reason), verdict.reason


def test_missing_numpy_is_a_note_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _block_numpy(monkeypatch)
    monkeypatch.setattr(cpu_workloads, "FRAME_WIDTH", 16)
    monkeypatch.setattr(cpu_workloads, "FRAME_HEIGHT", 4)
    notes: list[str] = []

    workloads = cpu_workloads.cpu_workloads(3, notes)

    assert [w.key for w in workloads] == ["primes", "matmul-python", "zlib", "lzma"]
    assert all(len(w.inputs) == 3 for w in workloads)
    assert len(notes) == 1
    assert "pip install poolwise[numpy]" in notes[0]
    assert "uv sync --extra numpy" in notes[0]


# -- the task functions --------------------------------------------------------------------


def test_tasks_compute_what_they_say() -> None:
    assert cpu_workloads.count_primes(0, 100) == 25
    assert cpu_workloads.count_primes(90, 20) == 5  # 97, 101, 103, 107, 109
    assert cpu_workloads.matmul_python(3, 1) == cpu_workloads.matmul_python(3, 1)
    frames = [cpu_workloads.make_frame(i, 32, 8) for i in range(2)]
    assert cpu_workloads.compress_zlib(frames, 6) == sum(len(zlib.compress(f, 6)) for f in frames)
    assert cpu_workloads.compress_lzma(frames, 0) > 0


def test_frames_are_deterministic_distinct_and_sized() -> None:
    frame = cpu_workloads.make_frame(5, 64, 16)
    assert len(frame) == 64 * 16
    assert frame == cpu_workloads.make_frame(5, 64, 16)
    assert frame != cpu_workloads.make_frame(6, 64, 16)


def test_matmul_numpy_when_installed() -> None:
    pytest.importorskip("numpy")
    assert cpu_workloads.matmul_numpy(4, 2) > 0


# -- the verdict rules, on synthetic figures ----------------------------------------------


def _judge(
    cpus: int = 2,
    gil: str = "enabled",
    primes: tuple[float, float] = (1.0, 1.9),
    matmul: tuple[float, float] = (1.0, 1.9),
    **released: tuple[float, float],
) -> Verdict:
    """Judge speed-ups given as (threads, processes) at the top worker count (= cpus)."""
    workloads = {"primes": primes, "matmul-python": matmul}
    workloads |= {key.replace("_", "-"): value for key, value in released.items()}
    # A lower worker count that must not count: the judge reads the top one only.
    counts = (1, cpus) if cpus > 1 else (1,)
    lower = (5.0,) if cpus > 1 else ()
    speedups = {
        "threads": {key: (*lower, threads) for key, (threads, _) in workloads.items()},
        "processes": {key: (*lower, processes) for key, (_, processes) in workloads.items()},
    }
    return cpu_bound.EXPERIMENT.judge(Measurement(_scaling(cpus, gil, counts, speedups)))


def _scaling(
    cpus: int,
    gil: str = "enabled",
    counts: tuple[int, ...] = (1, 2),
    speedups: dict[str, dict[str, tuple[float, ...]]] | None = None,
) -> cpu_bound.CpuScaling:
    return cpu_bound.CpuScaling(
        cpus=cpus, gil=gil, counts=counts, serial={}, speedups=speedups or {}, auto={}
    )


def test_one_cpu_depends() -> None:
    verdict = _judge(cpus=1, primes=(1.0, 0.98))
    assert verdict.status == DEPENDS
    assert "only 1 usable CPU" in verdict.reason
    assert "0.98x" in verdict.reason


def test_no_pure_python_figures_depends() -> None:
    verdict = cpu_bound.EXPERIMENT.judge(Measurement(_scaling(2)))
    assert verdict.status == DEPENDS


def test_holds_when_only_processes_speed_up() -> None:
    verdict = _judge(primes=(1.01, 1.91), matmul=(0.92, 1.92), zlib=(1.05, 1.8))
    assert verdict.status == HOLDS
    assert "1.91x on 2 processes, 1.01x on 2 threads" in verdict.reason
    assert "zlib on video frames either (1.05x)" in verdict.reason


def test_holds_without_gil_releasing_figures() -> None:
    assert _judge().status == HOLDS


@pytest.mark.parametrize(
    ("threads", "status"),
    [(cpu_bound.SPEEDUP, NOT_HERE), (cpu_bound.SPEEDUP - EPS, DEPENDS)],
)
def test_threads_scaling_on_pure_python_does_not_hold(threads: float, status: str) -> None:
    verdict = _judge(gil="disabled", primes=(threads, 1.9))
    assert verdict.status == status
    if status == NOT_HERE:
        assert "GIL disabled" in verdict.reason
        assert f"{threads:.2f}x faster on 2 threads" in verdict.reason


@pytest.mark.parametrize(
    ("processes", "says"),
    [
        (1.9 / cpu_bound.AS_FAST, "threads as fast as processes, and lighter"),
        (1.9 / cpu_bound.AS_FAST + 0.01, "threads short of processes' 2.12x"),
    ],
)
def test_a_free_threaded_verdict_compares_threads_with_processes(
    processes: float, says: str
) -> None:
    verdict = _judge(gil="disabled", primes=(1.9, processes))
    assert verdict.status == NOT_HERE
    assert says in verdict.reason


@pytest.mark.parametrize(
    ("processes", "status"),
    [(cpu_bound.SPEEDUP - EPS, DEPENDS), (cpu_bound.SPEEDUP, HOLDS)],
)
def test_processes_must_speed_up_pure_python(processes: float, status: str) -> None:
    # every pure-Python workload short of a speed-up on processes: depends
    verdict = _judge(primes=(1.0, processes), matmul=(1.0, processes))
    assert verdict.status == status
    if status == DEPENDS:
        assert "processes did not speed up" in verdict.reason
        assert f"{processes:.2f}x on 2 processes" in verdict.reason


def test_one_noisy_pure_python_workload_does_not_decide() -> None:
    verdict = _judge(primes=(1.0, 1.9), matmul=(1.0, cpu_bound.SPEEDUP - EPS))
    assert verdict.status == HOLDS


@pytest.mark.parametrize(
    ("threads", "status"),
    [(cpu_bound.NO_SPEEDUP, DEPENDS), (cpu_bound.NO_SPEEDUP - EPS, HOLDS)],
)
def test_threads_gaining_a_little_is_inconclusive(threads: float, status: str) -> None:
    verdict = _judge(primes=(threads, 1.9))
    assert verdict.status == status
    if status == DEPENDS:
        assert "gained a little" in verdict.reason


@pytest.mark.parametrize(
    ("threads", "status"),
    [(cpu_bound.SPEEDUP, DEPENDS), (cpu_bound.SPEEDUP - EPS, HOLDS)],
)
def test_threads_scaling_where_the_gil_is_released_depends(threads: float, status: str) -> None:
    verdict = _judge(matmul_numpy=(1.1, 1.9), zlib=(threads, 1.5), lzma=(1.0, 1.9))
    assert verdict.status == status
    if status == DEPENDS:
        assert verdict.reason.startswith("zlib releases the GIL: ")
        assert f"threads reached {threads:.2f}x with 2 workers" in verdict.reason


@pytest.mark.parametrize(
    ("processes", "wording"),
    [
        (1.9 / cpu_bound.AS_FAST - EPS, "as fast as processes"),
        (1.9 / cpu_bound.AS_FAST + EPS, "against"),
    ],
)
def test_threads_as_fast_as_processes_wording(processes: float, wording: str) -> None:
    verdict = _judge(matmul_numpy=(1.9, processes))
    assert verdict.status == DEPENDS
    assert verdict.reason.startswith("NumPy releases the GIL")
    assert wording in verdict.reason


@pytest.mark.parametrize(
    ("primes_threads", "primes_processes", "near"),
    [
        (0.95, 1.9, False),  # far from both thresholds: measured once
        (1.0, cpu_bound.SPEEDUP * (1 + base.NEAR) - 0.01, True),  # processes near 1.3x
        (cpu_bound.NO_SPEEDUP * (1 - base.NEAR) + 0.01, 1.9, True),  # threads near 1.15x
    ],
)
def test_figures_near_a_threshold_ask_for_another_run(
    primes_threads: float, primes_processes: float, near: bool
) -> None:
    speedups = {
        "threads": {"primes": (1.0, primes_threads)},
        "processes": {"primes": (1.0, primes_processes)},
    }
    measurement = Measurement(_scaling(2, speedups=speedups))
    assert cpu_bound.EXPERIMENT.near_threshold(measurement) is near
