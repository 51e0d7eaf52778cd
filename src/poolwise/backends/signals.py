"""SIGTERM while process workers run: unwind like Ctrl-C, so the workers are stopped.

Python's default SIGTERM ends the process at once: no ``with`` block exits, no atexit
handler runs, and the workers are left to notice their parent is gone. While a process
pool is open, and only if the program set no SIGTERM handler of its own, poolwise makes
SIGTERM raise ``SystemExit(143)`` in the main thread (143 = 128 + SIGTERM, the exit code
a shell reports for it). Pools then terminate their workers as on Ctrl-C. The default
handler returns when the last process pool closes.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["hold_sigterm", "release_sigterm"]

_lock = threading.Lock()
_holders = 0
_installed = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def hold_sigterm() -> None:
    """A process pool opened: install the handler if SIGTERM still has its default."""
    global _holders, _installed
    with _lock:
        _holders += 1
        if _installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _installed = True


def release_sigterm() -> None:
    """A process pool closed: the last one out puts the default back (main thread only)."""
    global _holders, _installed
    with _lock:
        _holders = max(0, _holders - 1)
        if _holders or not _installed:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # signal.signal only works there; the next main-thread release will do
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _installed = False
