"""Video streaming: work that waits and computes in the same task (the seed's last example).

The seed lists video streaming among its CPU-bound examples. Real streaming work is mixed
in every task: fetch a frame (waiting on the network), encode it (compute), send it on.
Here a frame server on 127.0.0.1 (the lab's ``local_http``) hands out synthetic 640x480
frames, each after ``FRAME_INTERVAL`` seconds, and each task fetches one frame and encodes
it with one of three encoders:

- ``zlib`` and ``lzma``, as the CPU-bound row's frame workloads: C that releases the GIL;
- ``python``, a pure-Python delta transform of every second byte: holds the GIL.

Frames per second are measured serially and on threads and processes at
``worker_counts(cpus, beyond=...)`` workers (to 16 or the CPUs), each pool started and
warmed before its runs are timed, and once on a fresh ``mode="auto"`` pool. Each serial
task also reports how long it waited and how long it computed, so the row can say which
kind of work this is. The server and every pool are closed on the way out, also on errors
and Ctrl-C.
"""

from __future__ import annotations

import lzma
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..pool import Pool
from .auto_mode import AutoTrial, auto_note, try_auto
from .base import Measurement, Series, Verdict, near, worker_counts
from .cpu_workloads import FRAME_HEIGHT, FRAME_WIDTH, LZMA_PRESET, ZLIB_LEVEL, make_frame
from .local_http import fetch_body, serve
from .rate_sweep import ModeBest, Rates, auto_against_best, best_of, rate_series

if TYPE_CHECKING:
    from ..pool import Mode
    from .base import LabSettings

__all__ = ["ENCODERS", "EXPERIMENT", "EncoderRates", "StreamRates", "VideoStreaming"]

# --- What is measured -------------------------------------------------------------------
#: Seconds the server takes to hand out a frame: a 50 frames/s camera or a nearby media
#: server (a guess in the range of real ones).
FRAME_INTERVAL = 0.020
#: Distinct frames the server holds; tasks ask for frame ``i % FRAMES``.
FRAMES = 8
#: Encoders, in the order they are measured and reported.
ENCODERS = ("zlib", "lzma", "python")
LABELS = {"zlib": "zlib", "lzma": "lzma", "python": "pure-Python delta"}
#: Largest worker count (quick, full): the issue's max(cpus, 16); both sweeps reach it.
BEYOND = (16, 16)
#: Tasks per worker in a timed run, so each worker fetches a few frames (a guess; the
#: quick lab keeps the row near 20 s on 2 cores).
ROUNDS = 2
#: Fewest tasks in a timed run (quick, full): a serial run of 8 is ~0.3-0.5 s on 2 cores.
MIN_TASKS = (8, 24)
#: Timed runs per figure in the full lab (the best counts): the lab's 5 made this row alone
#: take 7 minutes on 2 cores.
FULL_REPEATS = 2
#: Seconds each warm-up task sleeps, so the pool starts all its workers before timing.
WARM_NAP = 0.05

# --- Verdict thresholds -----------------------------------------------------------------
#: Processes suit an encoder when threads reach less than this share of their best frame
#: rate (as the I/O row's KEEP_UP: run-to-run noise here is ~10-20%, a guess).
KEEP_UP = 0.8
MODES: tuple[Mode, ...] = ("serial", "threads", "processes")


def _encode(frame: bytes, encoder: str) -> int:
    if encoder == "zlib":
        return len(zlib.compress(frame, ZLIB_LEVEL))
    if encoder == "lzma":
        return len(lzma.compress(frame, preset=LZMA_PRESET))
    return _python_delta(frame)


def _python_delta(frame: bytes) -> int:
    """A pure-Python delta transform of every second byte (a pre-compression step);
    returns a checksum of the deltas. Holds the GIL."""
    previous = 0
    deltas = bytearray()
    for value in frame[::2]:
        deltas.append((value - previous) & 0xFF)
        previous = value
    return sum(deltas) & 0xFFFFFF


def stream_frame(url: str, index: int, encoder: str) -> tuple[int, float, float]:
    """Fetch frame ``index`` and encode it; (the encoded size or checksum, seconds waited,
    seconds computed)."""
    started = time.perf_counter()
    frame = fetch_body(f"{url}{index % FRAMES}")
    fetched = time.perf_counter()
    result = _encode(frame, encoder)
    return result, fetched - started, time.perf_counter() - fetched


def _nap(seconds: float) -> None:
    time.sleep(seconds)


@dataclass(frozen=True)
class EncoderRates:
    """One encoder's serial frame rate, its wait/compute split, and the best of each mode."""

    encoder: str
    serial: float  # frames per second
    #: Share of a serial task's time spent waiting for the frame (the rest computes).
    waiting_share: float
    threads: ModeBest
    processes: ModeBest

    @property
    def threads_over_processes(self) -> float:
        return self.threads.rate / self.processes.rate if self.processes.rate > 0 else 0.0


@dataclass(frozen=True)
class StreamRates:
    """Each encoder's frame rates, and what a fresh auto pool made of it."""

    cpus: int
    frame_interval_ms: float
    #: In the order of ``ENCODERS``.
    encoders: tuple[EncoderRates, ...]
    auto: tuple[AutoTrial, ...] = ()

    def figures(self) -> dict[str, float | str]:
        """The frame rates by name, units in the names, for people."""
        figures: dict[str, float | str] = {
            "cpus": self.cpus,
            "frame interval ms": self.frame_interval_ms,
        }
        for rates in self.encoders:
            name = rates.encoder
            figures[f"{name} serial frames/s"] = rates.serial
            figures[f"{name} waiting share %"] = round(100 * rates.waiting_share, 1)
            for mode, best in (("threads", rates.threads), ("processes", rates.processes)):
                figures[f"{name} {mode} best frames/s"] = best.rate
                figures[f"{name} {mode} best at workers"] = best.workers
                figures[f"{name} {mode} speed-up x"] = best.speedup
        for trial in self.auto:
            figures[f"{trial.label} auto chose"] = trial.mode
            figures[f"{trial.label} auto workers"] = trial.workers
            figures[f"{trial.label} auto frames/s, probing and start-up included"] = round(
                trial.tasks / trial.seconds, 1
            )
        return figures


def _inputs(url: str, encoder: str, tasks: int) -> list[tuple[str, int, str]]:
    return [(url, index, encoder) for index in range(tasks)]


def _expected(encoder: str) -> list[int]:
    """Each frame's encoded size (or checksum), computed here once: every run must match."""
    return [_encode(make_frame(i, FRAME_WIDTH, FRAME_HEIGHT), encoder) for i in range(FRAMES)]


def _frame_rate(
    pool: Pool, url: str, encoder: str, tasks: int, repeats: int, expected: list[int]
) -> tuple[float, float]:
    """Frames per second on ``pool`` (best of ``repeats``), and the waiting share."""
    best, waited, computed = float("inf"), 0.0, 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        results = pool.starmap(stream_frame, _inputs(url, encoder, tasks), chunksize=1)
        seconds = time.perf_counter() - started
        wrong = [i for i, (value, _, _) in enumerate(results) if value != expected[i % FRAMES]]
        if wrong:
            raise RuntimeError(f"{encoder}: frame {wrong[0]} came out wrong on {pool.mode}")
        if seconds < best:
            best = seconds
            waited = sum(wait for _, wait, _ in results)
            computed = sum(compute for _, _, compute in results)
    total = waited + computed
    return tasks / best, (waited / total if total > 0 else 0.0)


def _measure(url: str, counts: list[int], settings: LabSettings) -> tuple[Rates, dict[str, float]]:
    """Frame rates per (encoder, mode) and worker count; serial at 1 worker; and each
    encoder's waiting share, from its serial run."""
    expected = {encoder: _expected(encoder) for encoder in ENCODERS}
    rates: Rates = {}
    waiting: dict[str, float] = {}
    runs: list[tuple[Mode, int]] = [("serial", 1)]
    runs += [(mode, n) for mode in MODES[1:] for n in counts]
    least = settings.scale(*MIN_TASKS)
    for mode, workers in runs:
        with Pool(mode, workers) as pool:  # one pool per (mode, workers): started once
            pool.map(_nap, [WARM_NAP] * (2 * workers), chunksize=1)
            for encoder in ENCODERS:
                tasks = max(least, ROUNDS * workers)
                repeats = min(settings.repeats, FULL_REPEATS)
                rate, share = _frame_rate(pool, url, encoder, tasks, repeats, expected[encoder])
                rates.setdefault((encoder, mode), {})[workers] = rate
                if mode == "serial":
                    waiting[encoder] = share
    return rates, waiting


def _try_auto(url: str, encoder: str, rates: Rates, tasks: int) -> AutoTrial:
    """The encoder's stream on a fresh auto pool, against the best rate a fixed mode reached."""
    trial = try_auto(encoder, stream_frame, _inputs(url, encoder, tasks), star=True)
    return auto_against_best(trial, rates, encoder, MODES)


def _encoder_rates(rates: Rates, waiting: dict[str, float], encoder: str) -> EncoderRates:
    return EncoderRates(
        encoder,
        round(rates[encoder, "serial"][1], 1),
        round(waiting[encoder], 3),
        best_of(rates, encoder, "threads"),
        best_of(rates, encoder, "processes"),
    )


def _series(rates: Rates) -> list[Series]:
    return rate_series(rates, lambda _encoder: "frames/s")


# --- Judging ----------------------------------------------------------------------------
def _suits(rates: EncoderRates) -> str:
    """Which unit suits this encoder's stream: processes when threads fall clearly behind."""
    return "processes" if rates.threads_over_processes < KEEP_UP else "threads"


def _text(rates: EncoderRates) -> str:
    return (
        f"{LABELS[rates.encoder]} ({rates.waiting_share:.0%} waiting) "
        f"{rates.threads.speedup:.1f}x serial on threads at {rates.threads.workers}, "
        f"{rates.processes.speedup:.1f}x on processes at {rates.processes.workers}"
    )


def _judge(record: StreamRates) -> Verdict:
    measured = "; ".join(_text(rates) for rates in record.encoders)
    on_processes = [r for r in record.encoders if _suits(r) == "processes"]
    on_threads = [r for r in record.encoders if _suits(r) == "threads"]
    if not on_threads:
        return Verdict.holds(
            f"{measured}: processes served frames fastest for every encoder, as for CPU-bound "
            "work, though each task also waits for its frame."
        )
    if not on_processes:
        return Verdict.not_here(
            f"{measured}: threads kept up with processes (at least {KEEP_UP:.0%} of their "
            "rate) for every encoder: the waiting overlaps on threads and the encoders "
            "release the GIL, so this is not CPU-bound work here."
        )
    holders = ", ".join(LABELS[r.encoder] for r in on_processes)
    releasers = ", ".join(LABELS[r.encoder] for r in on_threads)
    return Verdict.depends(
        f"{measured}: it depends on the encoder: threads suit {releasers} (the waiting "
        f"overlaps and the encoding releases the GIL), processes suit {holders} (its "
        "encoding holds the GIL)."
    )


class VideoStreaming:
    """The seed's video-streaming example, measured: each task waits for a frame, then
    encodes it."""

    key = "video-streaming"
    row = "Video streaming"
    claim = "Video streaming is CPU-bound work (the seed's example), so processes suit it"

    def run(self, settings: LabSettings) -> Measurement[StreamRates]:
        """Frame rates of each encoder serially and on 1..N threads and processes."""
        counts = _counts(settings)
        frames = [make_frame(i, FRAME_WIDTH, FRAME_HEIGHT) for i in range(FRAMES)]
        with serve(FRAME_INTERVAL, bodies=frames) as url:
            rates, waiting = _measure(url, counts, settings)
            tasks = max(settings.scale(*MIN_TASKS), ROUNDS * max(counts))
            trials = [_try_auto(url, encoder, rates, tasks) for encoder in ENCODERS]
        record = StreamRates(
            cpus=settings.cpus,
            frame_interval_ms=FRAME_INTERVAL * 1000,
            encoders=tuple(_encoder_rates(rates, waiting, encoder) for encoder in ENCODERS),
            auto=tuple(trials),
        )
        return Measurement(record, _series(rates), [auto_note(trials), _auto_fit(record)])

    def judge(self, measurement: Measurement[StreamRates]) -> Verdict:
        """Holds if processes suit every encoder; not here if threads suit them all."""
        return _judge(measurement.record)

    def near_threshold(self, measurement: Measurement[StreamRates]) -> bool:
        """Whether an encoder's threads/processes ratio sits near KEEP_UP."""
        return any(near(r.threads_over_processes, KEEP_UP) for r in measurement.record.encoders)


def _counts(settings: LabSettings) -> list[int]:
    """Worker counts to measure: 1, 2, 4 ... to the CPUs and on to BEYOND; the quick lab
    skips those between 2 x CPUs and BEYOND (on 2 CPUs: 1, 2, 4, 16)."""
    counts = worker_counts(settings.cpus, beyond=settings.scale(*BEYOND))
    if settings.full:
        return counts
    top = max(counts)
    return [n for n in counts if n <= 2 * settings.cpus or n == top]


def _auto_fit(record: StreamRates) -> str:
    """Where auto fell short of the best fixed pool on this mixed work, and why: the wrong
    unit (its mode's best rate under KEEP_UP of the best), too few workers, or only its
    probing and start-up (timed in its run, not in the warmed pools')."""
    parts, wrong_unit, too_few = [], False, False
    for trial, rates in zip(record.auto, record.encoders, strict=True):
        best = rates.threads if trial.best_mode == "threads" else rates.processes
        if trial.best_over_auto <= 1 / KEEP_UP:
            continue
        parts.append(
            f"{trial.label}: auto ran {trial.mode} x{trial.workers}, the best was "
            f"{trial.best_mode} x{best.workers} ({trial.best_over_auto:.2f}x auto's rate)"
        )
        own = {"threads": rates.threads, "processes": rates.processes}.get(trial.mode)
        if own is None or own.rate < KEEP_UP * best.rate:
            wrong_unit = True
        elif trial.workers < own.workers:
            too_few = True
    if not parts:
        return (
            f"mode='auto' came within {1 / KEEP_UP:.2f}x of the best fixed mode on every encoder."
        )
    why = []
    if wrong_unit:
        why.append("auto read the mix of waiting and computing differently from what ran best")
    if too_few:
        why.append(
            "auto sizes a pool for tasks that also wait at CPUs / CPU share of its first "
            "tasks; more workers than that ran faster here"
        )
    why.append("auto's run also paid its probe and its pool's start-up on a short stream")
    return (
        "on this mixed work auto fell short of the best fixed pool: "
        + "; ".join(parts)
        + (". " + "; ".join(why) + ".")
    )


EXPERIMENT = VideoStreaming()
