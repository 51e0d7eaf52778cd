"""Video streaming: a tiny real run, clean-up on Ctrl-C, verdict rules on synthetic figures."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from support import wait_until, worker_processes

from poolwise.lab import local_http, video_streaming
from poolwise.lab.auto_mode import AutoTrial
from poolwise.lab.base import DEPENDS, HOLDS, NOT_HERE, LabSettings, Measurement
from poolwise.lab.io_bound import ModeBest
from poolwise.lab.runner import EXPERIMENTS

if TYPE_CHECKING:
    from poolwise import Pool

ENCODERS = video_streaming.ENCODERS


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink every size so a real run takes a few seconds."""
    monkeypatch.setattr(video_streaming, "FRAME_INTERVAL", 0.002)
    monkeypatch.setattr(video_streaming, "BEYOND", (2, 2))
    monkeypatch.setattr(video_streaming, "ROUNDS", 1)
    monkeypatch.setattr(video_streaming, "MIN_TASKS", (4, 4))
    monkeypatch.setattr(video_streaming, "WARM_NAP", 0.005)


def _assert_cleaned_up() -> None:
    """No server or handler thread or worker process is left."""
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    assert local_http.SERVER_THREAD not in left
    assert not [name for name in left if "process_request" in name], left
    wait_until(lambda: not worker_processes(), what=f"workers left: {worker_processes()}")


def test_the_row_is_in_the_lab() -> None:
    assert "video-streaming" in EXPERIMENTS
    assert video_streaming.EXPERIMENT.key == "video-streaming"


def test_a_task_fetches_its_frame_and_encodes_it() -> None:
    frames = [bytes([i]) * 1000 for i in range(video_streaming.FRAMES)]
    with local_http.serve(0.01, bodies=frames) as url:
        size, waited, computed = video_streaming.stream_frame(url, 3, "zlib")
        checksum, _, _ = video_streaming.stream_frame(url, 3 + video_streaming.FRAMES, "python")
    assert waited >= 0.01  # the server's frame interval
    assert computed > 0
    assert size == len(__import__("zlib").compress(frames[3], video_streaming.ZLIB_LEVEL))
    assert checksum == video_streaming._python_delta(frames[3])


@pytest.mark.slow
@pytest.mark.usefixtures("tiny")
def test_every_encoder_and_mode_is_measured() -> None:
    measurement = video_streaming.EXPERIMENT.run(LabSettings(cpus=1))
    figures = measurement.figures
    for name in ENCODERS:
        assert float(figures[f"{name} serial frames/s"]) > 0
        assert 0 < float(figures[f"{name} waiting share %"]) < 100
        for mode in ("threads", "processes"):
            assert float(figures[f"{name} {mode} best frames/s"]) > 0
            assert figures[f"{name} {mode} best at workers"] in (1, 2)
        assert f"{name} {figures[f'{name} auto chose']} x" in measurement.notes[0]
    assert measurement.notes[0].startswith("mode='auto' (fresh pool")
    assert "auto" in measurement.notes[1]
    names = {s.name for s in measurement.series}
    assert names == {f"{e} {m}" for e in ENCODERS for m in video_streaming.MODES}
    reason = video_streaming.EXPERIMENT.judge(measurement).reason
    assert all(video_streaming.LABELS[name] in reason for name in ENCODERS), reason
    _assert_cleaned_up()


@pytest.mark.slow
@pytest.mark.usefixtures("tiny")
def test_ctrl_c_mid_run_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    measure = video_streaming._frame_rate

    def interrupted(pool: Pool, *args: object) -> tuple[float, float]:
        if pool.mode == "processes":  # the server is up, workers run
            raise KeyboardInterrupt
        return measure(pool, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(video_streaming, "_frame_rate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        video_streaming.EXPERIMENT.run(LabSettings(cpus=1))
    _assert_cleaned_up()


def _figures(
    auto: tuple[AutoTrial, ...] = (), **rates: tuple[float, float]
) -> Measurement[video_streaming.StreamRates]:
    """Serial 50 frames/s and the given (threads, processes) speed-ups per encoder."""
    encoders = []
    for name in ENCODERS:
        threads, processes = rates.get(name, rates.get("every", (1.0, 1.0)))
        encoders.append(
            video_streaming.EncoderRates(
                name,
                serial=50.0,
                waiting_share=0.5,
                threads=ModeBest(50.0 * threads, 8, threads),
                processes=ModeBest(50.0 * processes, 4, processes),
            )
        )
    record = video_streaming.StreamRates(2, 20.0, tuple(encoders), auto)
    return Measurement(record)


@pytest.mark.parametrize(
    ("measurement", "status"),
    [
        # Threads keep up everywhere (KEEP_UP: 0.8 of processes): not CPU-bound work here.
        (_figures(every=(4.0, 4.0)), NOT_HERE),
        (_figures(every=(3.2, 4.0)), NOT_HERE),
        # Threads just under 0.8 of processes everywhere: processes suit it, as the seed says.
        (_figures(every=(3.1, 4.0)), HOLDS),
        (_figures(every=(1.0, 2.0)), HOLDS),
        # The GIL-holding encoder on processes, the others on threads: depends.
        (_figures(every=(4.0, 3.0), python=(1.0, 2.0)), DEPENDS),
    ],
)
def test_verdict_rules(measurement: Measurement[video_streaming.StreamRates], status: str) -> None:
    verdict = video_streaming.EXPERIMENT.judge(measurement)
    assert verdict.status == status
    assert verdict.reason.endswith(".")
    assert verdict.reason.count(". ") == 0
    assert "50% waiting" in verdict.reason
    speedup = float(measurement.figures["python threads speed-up x"])
    assert f"{speedup:.1f}x serial on threads" in verdict.reason


def test_depends_names_which_encoder_suits_which_unit() -> None:
    reason = video_streaming.EXPERIMENT.judge(_figures(every=(4.0, 3.0), python=(1.0, 2.0))).reason
    assert "threads suit zlib, lzma" in reason
    assert "processes suit pure-Python delta" in reason


def _trial(label: str, mode: str, workers: int, best_mode: str, ratio: float) -> AutoTrial:
    return AutoTrial(label, mode, workers, 48, 1.0, best_mode, ratio)


def test_the_auto_note_says_where_auto_fell_short_on_mixed_work() -> None:
    trials = (
        _trial("zlib", "threads", 64, "threads", 1.05),
        _trial("lzma", "threads", 2, "threads", 1.6),
        _trial("python", "processes", 2, "processes", 1.3),
    )
    record = _figures(auto=trials, every=(4.0, 4.0)).record
    note = video_streaming._auto_fit(record)
    assert "zlib" not in note  # within 1.25x of the best
    assert "lzma: auto ran threads x2, the best was threads x8 (1.60x" in note
    assert "python: auto ran processes x2, the best was processes x4 (1.30x" in note
    close = (_trial("zlib", "threads", 8, "threads", 1.2),)
    assert "came within" in video_streaming._auto_fit(_figures(auto=close * 3).record)


@pytest.mark.parametrize(
    ("measurement", "near"),
    [
        (_figures(every=(4.0, 4.0)), False),
        (_figures(every=(3.3, 4.0)), True),  # 0.825 of processes: near KEEP_UP
    ],
)
def test_figures_near_a_threshold_are_measured_again(
    measurement: Measurement[video_streaming.StreamRates], near: bool
) -> None:
    assert video_streaming.EXPERIMENT.near_threshold(measurement) is near


def test_the_auto_note_tells_the_wrong_unit_from_a_tie() -> None:
    # python: auto ran threads, which reached half of processes' rate: the wrong unit.
    wrong = (
        _trial("zlib", "threads", 6, "processes", 1.3),  # threads tied with processes
        _trial("lzma", "threads", 3, "threads", 1.0),
        _trial("python", "threads", 7, "processes", 2.0),
    )
    record = _figures(auto=wrong, every=(4.0, 4.1), python=(2.9, 5.5)).record
    note = video_streaming._auto_fit(record)
    assert "python: auto ran threads x7, the best was processes x4" in note
    assert "read the mix of waiting and computing differently" in note
    tie = (wrong[0], wrong[1], _trial("python", "processes", 4, "processes", 1.0))
    note = video_streaming._auto_fit(_figures(auto=tie, every=(4.0, 4.1)).record)
    assert "zlib: auto ran threads x6" in note  # slower than the best fixed pool...
    assert "read the mix" not in note  # ...but threads were as good as processes
    assert "probe and its pool's start-up" in note


@pytest.mark.parametrize(
    ("cpus", "full", "counts"),
    [
        (2, False, [1, 2, 4, 16]),
        (2, True, [1, 2, 4, 8, 16]),
        (4, False, [1, 2, 4, 8, 16]),
        (64, False, [1, 2, 4, 8, 16, 32, 64]),
    ],
)
def test_worker_counts_reach_16_or_the_cpus(cpus: int, full: bool, counts: list[int]) -> None:
    assert video_streaming._counts(LabSettings(full=full, cpus=cpus)) == counts
