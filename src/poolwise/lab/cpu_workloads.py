"""The CPU-bound lab row's workloads: the seed's CPU-bound examples as pool tasks.

Pure-Python prime counting and matrix multiplication hold the GIL; NumPy matrix
multiplication and zlib/lzma compression of synthetic video frames release it. Each task
aims at ~20-50 ms, so a chunk's round trip (~0.3 ms to a process) stays a rounding error.
The tasks are module-level functions, so process workers import them by name.
"""

from __future__ import annotations

import importlib
import lzma
import random
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "LABELS",
    "PURE_PYTHON",
    "RELEASES_GIL",
    "WHY_RELEASED",
    "CpuWorkload",
    "compress_lzma",
    "compress_zlib",
    "count_primes",
    "cpu_workloads",
    "make_frame",
    "matmul_numpy",
    "matmul_python",
]

# Task sizes: each aims at ~20-50 ms per task, so a chunk's round trip (~0.3 ms to a
# process) stays a rounding error. Timings measured on the 2-core dev machine (CPython 3.11).
#: Numbers tested per prime-counting task: ~30 ms by trial division near one million.
PRIMES_SPAN = 12_000
#: Where the first prime-counting task starts; tasks take consecutive spans of similar cost.
PRIMES_START = 1_000_000
#: Side of the pure-Python (lists of lists) matrices: 90x90 takes ~30 ms.
MATMUL_PYTHON_SIZE = 90
#: Side of the NumPy float64 matrices. At 64 OpenBLAS 0.3.31 stays on one thread (measured
#: CPU/wall 1.0); from 128 it spreads one product over every core itself, which would hide
#: what threads and processes add.
MATMUL_NUMPY_SIZE = 64
#: NumPy products per task: 3000 products of 64x64 take ~30 ms.
MATMUL_NUMPY_PRODUCTS = 3000
#: Synthetic video frame, one 8-bit luma plane: 640x480 is ~300 KB.
FRAME_WIDTH = 640
FRAME_HEIGHT = 480
#: Distinct frames made per run; tasks cycle through them.
FRAME_COUNT = 8
#: zlib level and frames per task: level 6 (zlib's default) takes ~8 ms a frame.
ZLIB_LEVEL = 6
ZLIB_FRAMES_PER_TASK = 4
#: lzma preset and frames per task: preset 0 (the fastest) takes ~30 ms a frame.
LZMA_PRESET = 0
LZMA_FRAMES_PER_TASK = 1

#: Workloads that hold the GIL, and those that release it (the judge reads both groups).
PURE_PYTHON = ("primes", "matmul-python")
RELEASES_GIL = ("matmul-numpy", "zlib", "lzma")
LABELS = {
    "primes": "pure-Python primes",
    "matmul-python": "pure-Python matmul",
    "matmul-numpy": "NumPy matmul",
    "zlib": "zlib on video frames",
    "lzma": "lzma on video frames",
}
WHY_RELEASED = {
    "matmul-numpy": "NumPy releases the GIL",
    "zlib": "zlib releases the GIL",
    "lzma": "lzma releases the GIL",
}
_NUMPY_NOTE = (
    "NumPy matmul was skipped: NumPy is not installed; "
    "get it with `pip install poolwise[numpy]` or `uv sync --extra numpy`."
)


def count_primes(start: int, span: int) -> int:
    """How many primes lie in ``[start, start + span)``, by trial division (holds the GIL)."""
    count = 0
    for n in range(max(start, 2), start + span):
        if n < 4:
            count += 1
            continue
        if n % 2 == 0:
            continue
        divisor = 3
        while divisor * divisor <= n:
            if n % divisor == 0:
                break
            divisor += 2
        else:
            count += 1
    return count


def matmul_python(size: int, seed: int) -> float:
    """Multiply two random ``size`` x ``size`` lists of lists; the sum of the product."""
    rng = random.Random(seed)
    a = [[rng.random() for _ in range(size)] for _ in range(size)]
    columns = list(zip(*[[rng.random() for _ in range(size)] for _ in range(size)], strict=True))
    return sum(sum(x * y for x, y in zip(row, col, strict=True)) for row in a for col in columns)


def matmul_numpy(size: int, products: int) -> float:
    """``products`` NumPy matrix products of ``size`` x ``size`` float64 (releases the GIL)."""
    np = importlib.import_module("numpy")  # imported here: the module must load without it
    a = (np.arange(size * size, dtype=np.float64).reshape(size, size) % 7) / 7
    b = a.T.copy()
    c = np.empty_like(a)
    for _ in range(products):
        np.matmul(a, b, out=c)
    return float(c.sum())


def compress_zlib(frames: Sequence[bytes], level: int) -> int:
    """Compressed size of the frames with zlib, one stream per frame."""
    return sum(len(zlib.compress(frame, level)) for frame in frames)


def compress_lzma(frames: Sequence[bytes], preset: int) -> int:
    """Compressed size of the frames with lzma (xz), one stream per frame."""
    return sum(len(lzma.compress(frame, preset=preset)) for frame in frames)


def make_frame(index: int, width: int, height: int) -> bytes:
    """Frame ``index``: a diagonal gradient that moves with the index, plus 4-bit noise.

    Deterministic, and made in a few ms: each row is a slice of one ramp, and the noise is
    added as one big integer (each byte stays under 256, so no carry crosses bytes).
    """
    diagonal = width + height
    ramp = bytes(((v + 3 * index) % diagonal) * 240 // diagonal for v in range(diagonal))
    gradient = b"".join(ramp[y : y + width] for y in range(height))
    noise = random.Random(index).randbytes(width * height).translate(_LOW_NIBBLE)
    total = int.from_bytes(gradient, "big") + int.from_bytes(noise, "big")
    return total.to_bytes(width * height, "big")


_LOW_NIBBLE = bytes(b & 0x0F for b in range(256))


@dataclass(frozen=True)
class CpuWorkload:
    """One workload: the same task inputs for the serial run and for every pool."""

    key: str
    fn: Callable[..., object]
    inputs: list[tuple[object, ...]]


def cpu_workloads(tasks: int, notes: list[str]) -> list[CpuWorkload]:
    """The workloads of this run, ``tasks`` tasks each; NumPy's only if it imports."""
    frames = [make_frame(i, FRAME_WIDTH, FRAME_HEIGHT) for i in range(FRAME_COUNT)]

    def frames_for(task: int, per_task: int) -> list[bytes]:
        return [frames[(task * per_task + j) % len(frames)] for j in range(per_task)]

    workloads = [
        CpuWorkload(
            "primes",
            count_primes,
            [(PRIMES_START + i * PRIMES_SPAN, PRIMES_SPAN) for i in range(tasks)],
        ),
        CpuWorkload(
            "matmul-python", matmul_python, [(MATMUL_PYTHON_SIZE, i) for i in range(tasks)]
        ),
    ]
    if _numpy_available():
        inputs: list[tuple[object, ...]] = [(MATMUL_NUMPY_SIZE, MATMUL_NUMPY_PRODUCTS)] * tasks
        workloads.append(CpuWorkload("matmul-numpy", matmul_numpy, inputs))
    else:
        notes.append(_NUMPY_NOTE)
    workloads += [
        CpuWorkload(
            "zlib",
            compress_zlib,
            [(frames_for(i, ZLIB_FRAMES_PER_TASK), ZLIB_LEVEL) for i in range(tasks)],
        ),
        CpuWorkload(
            "lzma",
            compress_lzma,
            [(frames_for(i, LZMA_FRAMES_PER_TASK), LZMA_PRESET) for i in range(tasks)],
        ),
    ]
    return workloads


def _numpy_available() -> bool:
    """Whether NumPy imports here (the optional ``numpy`` extra)."""
    try:
        importlib.import_module("numpy")
    except ImportError:
        return False
    return True
