"""The cluster's lifetime: connect (or start a LocalCluster), and close it again.

Without ``address`` a pool starts a ``distributed.LocalCluster`` on first use: one worker
process of one thread per worker, the scheduler in this process, no dashboard, scratch
files in a folder of its own. While it runs, SIGTERM unwinds like Ctrl-C (``signals.py``)
so that it is closed and its folder removed. With ``address`` the pool only connects a
client (never the default client of this process) and closes only that client.

The LocalCluster has ``workers`` worker processes (else ``poolwise.cpus()``), and its
scheduler allows no re-run of a chunk whose worker died (``allowed_failures=0``). A
scheduler at ``address`` re-runs such a chunk on another worker up to
``distributed.scheduler.allowed-failures`` times (3 by default) first; start it with
``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0`` for poolwise's behaviour.

A pool left open is terminated at interpreter exit, before distributed's own exit
handler runs (``terminate_at_exit``). The workers of our cluster also exit when this
process is killed outright (Dask watches their parent); only the scratch folder is then
left behind.

On a build running without a GIL, our cluster's workers run without Dask's statistical
profiler: it reads other threads' frames from ``sys._current_frames()``, which is a
use-after-free there (CPython gh-152355) and crashed worker processes and pytest on
free-threaded 3.13 (#16). A cluster at ``address`` is the user's to configure
(``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``).

Like Dask itself, worker processes start by ``spawn``: a script that makes a pool must
guard its top level with ``if __name__ == "__main__":``. Workers of a cluster at
``address`` need poolwise (and whatever modules the tasks import) installed; functions
defined in ``__main__`` travel by value. ``poolwise.share()`` works with our own cluster
and any worker on this machine (it maps ``/dev/shm``), not with workers elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from typing import TYPE_CHECKING, cast

from ...system import gil_enabled
from ..lifetime import LiveBackends
from ..signals import hold_sigterm, release_sigterm

if TYPE_CHECKING:
    from ..base import Backend
    from .distributed_api import DaskClient, DaskCluster, DaskFuture

__all__ = ["Connection", "connect", "terminate_at_exit"]


def _terminate_quietly(backend: Backend) -> None:
    """At interpreter exit, stop a pool's cluster and remove its scratch folder."""
    with contextlib.suppress(Exception):
        backend.terminate()


#: Registered at exit only once ``distributed`` is imported: exit handlers run last
#: registered first, so ours closes our clients before distributed closes its clusters
#: (which would log the loss of chunks our pools had not released yet).
_LIVE: LiveBackends[Backend] = LiveBackends(_terminate_quietly)


class Connection:
    """A client, and the LocalCluster and scratch folder of our own if we started one."""

    __slots__ = ("client", "cluster", "scratch")

    def __init__(
        self, client: DaskClient, cluster: DaskCluster | None = None, scratch: str | None = None
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.scratch = scratch

    def close(self, *, kill: bool, futures: list[DaskFuture] | None = None) -> None:
        """Close the client, then our cluster (killing its workers first if ``kill``).

        The client goes first: its scheduler then forgets the pool's keys, so killing
        the workers neither re-runs nor fails (and logs) a chunk of ours.
        """
        client, cluster, scratch = self.client, self.cluster, self.scratch
        try:
            if futures:
                with contextlib.suppress(Exception):
                    client.cancel(futures, force=True)
            with contextlib.suppress(Exception):
                client.close()
            if cluster is not None and kill:
                _kill_workers(cluster)
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            if cluster is not None:
                release_sigterm()


def connect(*, address: str | None, workers: int) -> Connection:
    """A client of the scheduler at ``address``, else of a LocalCluster of ``workers``
    worker processes started here."""
    import dask.config
    import distributed

    _LIVE.stop_all_at_exit()

    if address is not None:
        try:
            made = distributed.Client(address, set_as_default=False)  # type: ignore[no-untyped-call]
            return Connection(cast("DaskClient", made))
        except OSError as exc:
            exc.add_note(f"poolwise: is a Dask scheduler running at {address}?")
            raise
    scratch = tempfile.mkdtemp(prefix="poolwise-dask-")
    # The profiler off where there is no GIL (see above): nannies hand their worker
    # process the config of their start.
    settings = {} if gil_enabled() else {"distributed.worker.profile.enabled": False}
    try:
        with dask.config.set(settings):
            made_cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                local_directory=scratch,
                scheduler_kwargs={
                    # A chunk whose worker died fails at once (WorkerCrashed): no re-run.
                    "allowed_failures": 0,
                    # No dashboard; its HTTP server (health, metrics) on a free port, not
                    # 8787, which another cluster may hold (Dask then warns and moves).
                    "dashboard": False,
                    "dashboard_address": "127.0.0.1:0",
                    # Its scratch space too, else it goes to TMPDIR/dask-scratch-space.
                    "local_directory": scratch,
                },
            )
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    cluster = cast("DaskCluster", made_cluster)
    # SIGTERM unwinds like Ctrl-C while our cluster runs, so that it is closed and its
    # scratch folder removed (the workers would exit anyway: Dask watches the parent).
    hold_sigterm()
    try:
        made = distributed.Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
        return Connection(cast("DaskClient", made), cluster, scratch)
    except BaseException:
        cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
        release_sigterm()
        raise


def _kill_workers(cluster: DaskCluster) -> None:
    """SIGKILL our cluster's worker processes, after telling their nannies not to restart
    them (closing waits seconds for a busy worker to exit by itself)."""
    nannies = list(cluster.workers.values())

    async def no_restarts() -> None:
        for nanny in nannies:
            close_gracefully = getattr(nanny, "close_gracefully", None)
            if close_gracefully is not None:
                close_gracefully()

    with contextlib.suppress(Exception):
        cluster.sync(no_restarts)
    for nanny in nannies:
        pid = getattr(nanny, "pid", None)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def terminate_at_exit(backend: Backend) -> None:
    """Terminate ``backend`` at interpreter exit if it is still open then (weakly held)."""
    _LIVE.add(backend)
