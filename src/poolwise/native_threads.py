"""How wide native thread pools (BLAS, OpenMP) may run under a pool: no oversubscription.

NumPy's OpenBLAS, MKL, BLIS and OpenMP each start a thread pool as wide as the machine. Two
worker processes that each multiply matrices then run 2 x CPUs busy threads on CPUs
threads; a thread pool of 6 runs 6 x CPUs. ``native_threads="auto"`` (the default) gives
each worker ``cpus() // workers`` native threads (at least 1), as loky does for its
processes:

- process workers start with the limit in their environment (``OMP_NUM_THREADS`` and the
  others, for libraries they load later; a variable the user set is kept) and, where a
  native library is already loaded (the forkserver preloads NumPy), through threadpoolctl;
- thread (and interpreter) workers share this process's native pools: while a map runs on
  more than one of them, BLAS pools are narrowed for the whole process and restored after
  (other threads of the program calling BLAS meanwhile get the narrow width too); OpenMP's
  width is per thread, so each worker thread narrows its own.

``native_threads=N`` asks for N per worker everywhere, over the environment;
``native_threads=None`` leaves every pool alone.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from threadpoolctl import ThreadpoolController

__all__ = [
    "NATIVE_MODULES",
    "NATIVE_THREAD_VARS",
    "NativeThreads",
    "ProcessWideLimit",
    "check_native_threads",
    "native_pools",
    "native_report",
    "native_width",
    "process_limit",
    "worker_environment",
]

#: What ``native_threads=`` accepts: "auto", a width per worker, or None (leave alone).
NativeThreads = int | Literal["auto"] | None

#: The variables native libraries read when they load (loky's list, and TBB's).
NATIVE_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: Modules that load a native thread pool. threadpoolctl scans the loaded libraries
#: (~3-10 ms), so it is only consulted once one of these is imported.
NATIVE_MODULES = ("numpy", "scipy", "sklearn", "torch", "numexpr", "numba", "mkl", "cv2")


def check_native_threads(value: object) -> NativeThreads:
    if value is None or value == "auto":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(
        f"native_threads={value!r} must be 'auto' (CPUs / workers each), a whole number "
        "of BLAS/OpenMP threads per worker (1 or more), or None (leave them alone)"
    )


def native_width(option: NativeThreads, workers: int, cpus: int) -> int | None:
    """BLAS/OpenMP threads per worker for ``native_threads=option`` (None: no limit)."""
    if option is None:
        return None
    if option == "auto":
        return max(1, cpus // max(1, workers))
    return option


def user_set_limits() -> bool:
    """Whether this process's environment already says how wide native pools run."""
    return any(name in os.environ for name in NATIVE_THREAD_VARS)


def worker_environment(option: NativeThreads, width: int | None) -> dict[str, str]:
    """The variables a worker process sets before it loads anything: the width everywhere
    for an explicit ``native_threads=N``; for "auto", the user's own value where this
    process has one (a forkserver started earlier would not pass it on), else the width."""
    if width is None:
        return {}
    if option == "auto":
        return {name: os.environ.get(name, str(width)) for name in NATIVE_THREAD_VARS}
    return dict.fromkeys(NATIVE_THREAD_VARS, str(width))


def native_loaded() -> bool:
    return any(name in sys.modules for name in NATIVE_MODULES)


def native_pools() -> list[dict[str, Any]]:
    """threadpoolctl's view of the native thread pools loaded in this process."""
    from threadpoolctl import threadpool_info

    return list(threadpool_info())


class ProcessWideLimit:
    """Narrows this process's native pools while thread (or interpreter) maps run.

    Maps that overlap share one limit, the narrowest asked for; the last one to end
    restores what was there. Worker threads call ``follow`` before each chunk: OpenMP's
    width is per thread, so each narrows (and later restores) its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders: list[int] = []
        self._limiter: Any = None
        self._controller: ThreadpoolController | None = None
        self._modules_seen = -1
        #: Bumped on every change; a worker thread compares it with what it applied.
        self.generation = 0
        #: OpenMP width worker threads should run at (None: their original).
        self._openmp_width: int | None = None
        self._openmp_original: int | None = None
        self._local = threading.local()

    def hold(self, width: int) -> Callable[[], None] | None:
        """Limit native pools to ``width`` until the returned callable is called; None
        when nothing native is loaded (nothing to limit, nothing to undo)."""
        if not native_loaded():
            return None
        with self._lock:
            self._holders.append(width)
            self._apply()
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._holders.remove(width)
                self._apply()

        return release

    def _current_controller(self) -> ThreadpoolController:
        # A new import may have loaded another library: scan again only then.
        if self._controller is None or len(sys.modules) != self._modules_seen:
            from threadpoolctl import ThreadpoolController

            self._modules_seen = len(sys.modules)
            self._controller = ThreadpoolController()
        return self._controller

    def _apply(self) -> None:
        """Make the limit match the holders (call with the lock held)."""
        controller = self._current_controller()
        blas = controller.select(user_api="blas").lib_controllers
        openmp = controller.select(user_api="openmp").lib_controllers
        width = min(self._holders) if self._holders else None
        # threadpoolctl (3.8) lets only the first thread that set OpenBLAS's width set it
        # again; maps start and end on any thread, and this lock orders them.
        _release_control(blas)
        if self._limiter is not None:
            self._limiter.restore_original_limits()
            self._limiter = None
        if width is not None and any(pool.num_threads > width for pool in blas):
            self._limiter = controller.select(user_api="blas").limit(limits=width)
        _release_control(blas)
        # OpenMP's width is per thread: worker threads pick this up in follow().
        self._openmp_width = None
        if width is not None and openmp:
            if self._openmp_original is None:
                self._openmp_original = max(pool.num_threads for pool in openmp)
            if self._openmp_original > width:
                self._openmp_width = width
        self.generation += 1

    def follow(self) -> None:
        """In a worker thread, before a chunk: set this thread's OpenMP width to the
        current limit, or back to the original once no map holds one."""
        local = self._local
        generation = self.generation
        if getattr(local, "generation", 0) == generation:
            return
        local.generation = generation
        width = self._openmp_width
        applied = getattr(local, "width", None)
        if width == applied:
            return
        target = width if width is not None else self._openmp_original
        if target is None:
            return
        with self._lock:
            openmp = self._current_controller().select(user_api="openmp")
        openmp.limit(limits=target)
        local.width = width


def _release_control(pools: list[Any]) -> None:
    """Let the next thread set the width of these process-wide pools (threadpoolctl 3.8
    ignores every thread but the first that set it; older releases have no such rule)."""
    for pool in pools:
        clear = getattr(pool, "clear_controlling_thread", None)
        if clear is not None:
            clear(force=True)


_PROCESS = ProcessWideLimit()


def process_limit() -> ProcessWideLimit:
    """The one ``ProcessWideLimit`` of this process (native pools are process-wide)."""
    return _PROCESS


#: What ``poolwise info`` imports to find the native pools a typical task would use.
_INFO_MODULES = ("numpy", "scipy.linalg", "sklearn.utils")


def native_report(cpus: int) -> dict[str, Any]:
    """For ``poolwise info``: the native pools NumPy, SciPy and scikit-learn bring (those
    installed: each is imported to be seen), and the width poolwise gives each worker."""
    import importlib
    import importlib.util

    for name in _INFO_MODULES:
        try:
            if importlib.util.find_spec(name.partition(".")[0]) is not None:
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a broken install is not info's problem
            continue
    pools = [
        {
            key: pool.get(key)
            for key in ("user_api", "internal_api", "version", "num_threads", "filepath")
        }
        for pool in native_pools()
    ]
    sizes = sorted({1, 2, cpus})
    return {
        "pools": pools,
        "per_worker": {workers: native_width("auto", workers, cpus) for workers in sizes},
        "environment": {
            name: os.environ[name] for name in NATIVE_THREAD_VARS if name in os.environ
        },
    }
