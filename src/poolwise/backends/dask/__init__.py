"""mode="dask": each chunk is one task on a Dask cluster (a LocalCluster or ``address=``)."""

from .backend import DaskBackend
from .distributed_api import require_distributed

__all__ = ["DaskBackend", "require_distributed"]
