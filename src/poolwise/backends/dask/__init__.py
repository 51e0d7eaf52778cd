"""mode="dask": each chunk is one task on a Dask cluster (a LocalCluster or ``address=``)."""

from .backend import DaskBackend, require_distributed

__all__ = ["DaskBackend", "require_distributed"]
