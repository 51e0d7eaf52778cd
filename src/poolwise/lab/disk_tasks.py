"""The I/O-bound row's tasks on this machine's disk: SQLite lookups and file round trips.

Each task gets everything in its one argument (paths, sizes, its index), so a worker
process needs none of the parent's settings, and each opens its own connection or file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

__all__ = ["make_database", "query", "write_read"]


def make_database(path: Path, rows: int, row_bytes: int) -> None:
    """A SQLite file at ``path`` with table ``items``: ``rows`` keys, ``row_bytes`` each."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE items (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        value = b"v" * row_bytes
        db.executemany("INSERT INTO items VALUES (?, ?)", ((k, value) for k in range(rows)))
        db.commit()


def query(job: tuple[str, int, int, int]) -> int:
    """Open SQLite file ``job[0]`` read-only, read ``job[3]`` rows by key; their bytes.

    Everything comes in ``job`` (path, task index, rows in the table, keys to read), so a
    worker process needs none of the parent's settings.
    """
    path, index, rows, count = job
    # A multiplicative hash spreads each task's keys over the whole table.
    keys = [(index * count + j) * 7919 % rows for j in range(count)]
    marks = ",".join("?" * len(keys))
    uri = Path(path).as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        found = db.execute(f"SELECT v FROM items WHERE k IN ({marks})", keys).fetchall()
    return sum(len(value) for (value,) in found)


def write_read(job: tuple[str, int, int]) -> int:
    """Write ``job[2]`` bytes to a file in folder ``job[0]``, fsync, read back, remove it."""
    folder, index, size = job
    path = os.path.join(folder, f"{index}.bin")
    with open(path, "wb") as out:
        out.write(b"\x5a" * size)
        out.flush()
        os.fsync(out.fileno())
    try:
        with open(path, "rb") as back:
            return len(back.read())
    finally:
        os.remove(path)
