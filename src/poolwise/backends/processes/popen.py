"""Worker processes that do not re-run the parent's main script.

With ``spawn`` and ``forkserver``, multiprocessing re-runs the parent's ``__main__`` in
every child (as ``__mp_main__``) so that functions defined there can be found by name. A
poolwise worker never needs that: functions and classes from ``__main__`` travel by value
(cloudpickle). Skipping it makes workers start as fast as the interpreter allows whatever
the script imports (measured: 64 forkserver workers under a 600-line benchmark script,
2.0 s -> see the CHANGELOG), and a script without an ``if __name__ == "__main__":`` guard
does not start pools recursively.

The mechanism: multiprocessing asks ``spawn.get_preparation_data()`` what each child must
prepare. We wrap that function once; the wrapper drops the main-module entries only on a
thread that is starting a poolwise worker (a thread-local flag), so every other process,
from any library, starts exactly as before.
"""

from __future__ import annotations

import contextlib
import multiprocessing.context
import sys
import threading
from multiprocessing import spawn
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.process import BaseProcess

__all__ = ["preload_worker_module", "worker_process_class"]

_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")
_starting = threading.local()
_original: Callable[[str], dict[str, Any]] = spawn.get_preparation_data


def _preparation_data(name: str) -> dict[str, Any]:
    data = _original(name)
    if getattr(_starting, "worker", False):
        for key in _MAIN_KEYS:
            data.pop(key, None)
    return data


if getattr(spawn.get_preparation_data, "__module__", "") != __name__:
    spawn.get_preparation_data = _preparation_data


@contextlib.contextmanager
def _starting_worker() -> Iterator[None]:
    _starting.worker = True
    try:
        yield
    finally:
        _starting.worker = False


class _ForkServerWorker(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        with _starting_worker():
            return multiprocessing.context.ForkServerProcess._Popen(process_obj)


class _SpawnWorker(multiprocessing.context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        with _starting_worker():
            return multiprocessing.context.SpawnProcess._Popen(process_obj)


def worker_process_class(start_method: str) -> type[BaseProcess]:
    """The Process class for a worker started with ``start_method``."""
    if start_method == "forkserver":
        return _ForkServerWorker
    if start_method == "spawn":
        return _SpawnWorker
    return multiprocessing.context.ForkProcess  # a fork inherits memory: nothing to re-run


#: Imported by the forkserver before it forks workers (our child-side entry point).
_WORKER_MODULE = "poolwise.backends.child.process_worker"
#: Heavy libraries the forkserver also imports when this process already has: their tasks
#: will need them (a NumPy array argument is rebuilt by NumPy), and importing NumPy in each
#: worker costs ~0.1 s of CPU. Only libraries known to be safe to fork after import.
_PRELOAD_IF_IMPORTED = ("numpy",)


def preload_worker_module() -> None:
    """Have the forkserver import the worker module once, so each worker starts warm
    (and NumPy, if this process imported it).

    Without it every worker imports poolwise and cloudpickle itself (~40 ms of CPU each:
    2.5 s for 64 workers on 2 cores). The forkserver is shared by the whole process and its
    preload list only counts before it starts, so we add our module to what is already
    there (``['__main__']`` by default, or the user's own list). This reads the private
    ``multiprocessing.forkserver._forkserver``; if that ever changes, workers only start
    colder.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    modules = getattr(server, "_preload_modules", None)
    if server is None or not isinstance(modules, list):
        return
    if getattr(server, "_forkserver_pid", 1) is None and _WORKER_MODULE not in modules:
        heavy = [name for name in _PRELOAD_IF_IMPORTED if name in sys.modules]
        forkserver.set_forkserver_preload([*modules, *heavy, _WORKER_MODULE])
