"""What the Dask backend uses of ``distributed``, typed, and the check that it is installed.

``distributed`` leaves most of ``Client``, ``Future`` and ``LocalCluster`` unannotated; the
Protocols here name the few members the backend calls, so that the rest of the package is
checked by ``mypy --strict``. ``distributed`` itself is imported only when a pool of
``mode="dask"`` starts (``import poolwise`` never loads it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from ...errors import BackendUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

__all__ = ["DaskClient", "DaskCluster", "DaskFuture", "killed_worker", "require_distributed"]

_HOW = (
    'install the extra: pip install "poolwise[dask]" (or uv add "poolwise[dask]"), '
    "or use mode='processes' on this machine"
)


class DaskFuture(Protocol):
    """``distributed.Future``: one Dask task, i.e. one attempt at a chunk."""

    @property
    def status(self) -> str: ...

    def result(self) -> Any: ...

    def exception(self) -> BaseException | None: ...

    def add_done_callback(self, fn: Callable[[DaskFuture], object]) -> None: ...

    def cancel(self) -> None: ...

    def release(self) -> None: ...


class DaskClient(Protocol):
    """``distributed.Client``."""

    def submit(self, fn: Callable[..., Any], *args: object, key: str) -> DaskFuture: ...

    def scatter(self, data: object, *, hash: bool) -> DaskFuture: ...

    def cancel(self, futures: list[DaskFuture], *, force: bool) -> None: ...

    def nthreads(self) -> Mapping[str, int]: ...

    def close(self) -> None: ...


class DaskCluster(Protocol):
    """``distributed.LocalCluster``: its nannies (one per worker process) by name."""

    @property
    def workers(self) -> Mapping[str, Any]: ...

    def sync(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...

    def close(self) -> None: ...


def require_distributed() -> None:
    """Raise ``BackendUnavailable`` unless Dask's ``distributed`` can be imported here."""
    try:
        importlib.import_module("distributed")
    except ImportError as exc:
        raise BackendUnavailable(
            "dask", f"the 'distributed' package cannot be imported ({exc})", _HOW
        ) from exc


def killed_worker() -> type[BaseException]:
    """``distributed.KilledWorker``: Dask's error for a task whose worker died."""
    from distributed import KilledWorker

    return KilledWorker
