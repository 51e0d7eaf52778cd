"""Code that runs inside a worker: a process, a subinterpreter or a Dask worker.

Everything here imports only the standard library, ``poolwise.transport`` and
``poolwise.errors`` (``lint-imports`` checks it), so a worker starts without loading the
pool, the backends' parent side or rich.
"""
