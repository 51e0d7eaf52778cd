"""Functions, lambdas and closures defined in ``__main__`` reach process workers by value,
with every start method, from a script and from code without a file (``python -c``, like a
notebook)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    import poolwise

    def triple(x):
        return 3 * x

    class Scaler:
        def __init__(self, k):
            self.k = k
        def __call__(self, x):
            return self.k * x

    def main(method):
        offset = 100
        with poolwise.Pool("processes", 2, start_method=method) as pool:
            print(pool.map(triple, range(4)))
            print(pool.map(lambda x: x + offset, range(3)))
            print(pool.map(Scaler(5), range(3)))
            print(pool.submit(triple, 7).result())

    if __name__ == "__main__":
        main(sys.argv[1])
    """
)
EXPECTED = "[0, 3, 6, 9]\n[100, 101, 102]\n[0, 5, 10]\n21\n"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_main_module_functions_work_from_a_script(tmp_path: Path, method: str) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), method], capture_output=True, text=True, timeout=120
    )
    assert done.stderr == ""
    assert done.stdout == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_main_module_functions_work_without_a_file(method: str) -> None:
    code = SCRIPT.replace('if __name__ == "__main__":\n    main(sys.argv[1])', "")
    code += f"\nmain({method!r})\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr == ""
    assert done.stdout == EXPECTED


UNGUARDED = textwrap.dedent(
    """
    import os, sys
    import poolwise

    with open(sys.argv[2], "a") as log:  # top-level code: runs once per execution
        log.write(f"{os.getpid()}\\n")

    def double(x):
        return 2 * x

    # no `if __name__ == "__main__":` guard
    with poolwise.Pool("processes", 2, start_method=sys.argv[1]) as pool:
        print(pool.map(double, range(5)))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_workers_do_not_rerun_the_main_script(tmp_path: Path, method: str) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    log = tmp_path / "runs.log"
    done = subprocess.run(
        [sys.executable, str(script), method, str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stderr == ""
    assert done.stdout == "[0, 2, 4, 6, 8]\n"
    assert len(log.read_text().split()) == 1  # the parent ran it; no worker did


INITIALIZED = textwrap.dedent(
    """
    import sys
    import poolwise

    SETTING = None
    CONN = None
    CACHE = {}
    SCALE = 1

    def init(value):
        global SETTING, CONN
        SETTING = value
        CONN = f"conn-{value}"
        CACHE["calls"] = 0

    def task(x):
        CACHE["calls"] += 1
        return (SETTING, CONN, x * SCALE)

    def scaled(x):  # another function: pickled (with SCALE) when first mapped
        return (SETTING, CONN, x * SCALE, CACHE["calls"])

    def run(pool):
        global SCALE
        print(pool.map(task, [1], chunksize=1))
        SCALE = 10  # changed in the parent: a function sent after it sees the new value
        print(pool.map(scaled, [1], chunksize=1))

    if __name__ == "__main__":
        kind, method = sys.argv[1], sys.argv[2]
        if kind == "executor":
            options = {"initializer": init, "initargs": (7,)}
            with poolwise.Executor("processes", max_workers=1, **options) as ex:
                print([ex.submit(task, 1).result()])
                SCALE = 10
                print(list(ex.map(scaled, [1])))
        else:
            options = {"start_method": method} if kind == "processes" else {}
            with poolwise.Pool(kind, 1, initializer=init, initargs=(7,), **options) as pool:
                run(pool)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("processes", "forkserver"),
        ("processes", "spawn"),
        ("processes", "fork"),
        ("executor", "default"),
        ("interpreters", "-"),
        ("threads", "-"),
    ],
)
def test_initializer_state_reaches_tasks_from_main(tmp_path: Path, kind: str, method: str) -> None:
    # the initializer and the task travel in separate pickles: each had globals of its own,
    # and tasks saw (None, None, 1) (#15)
    if kind == "interpreters":
        from poolwise.lab.base import interpreters_unavailable

        if (why := interpreters_unavailable()) is not None:
            pytest.skip(why)
    script = tmp_path / "user_script.py"
    script.write_text(INITIALIZED)
    done = subprocess.run(
        [sys.executable, str(script), kind, method], capture_output=True, text=True, timeout=120
    )
    assert done.stderr == ""
    assert done.stdout == "[(7, 'conn-7', 1)]\n[(7, 'conn-7', 10, 1)]\n"


IN_A_CHILD = textwrap.dedent(
    """
    import multiprocessing
    import sys
    import poolwise

    def cube(x):
        return x ** 3

    def child():
        # cube is defined in __mp_main__ here under spawn and forkserver
        print(poolwise.map(cube, range(4), mode="processes", workers=2), flush=True)

    if __name__ == "__main__":
        multiprocessing.set_start_method(sys.argv[1])
        process = multiprocessing.Process(target=child)
        process.start()
        process.join(60)
        print("alive" if process.is_alive() else f"exit code {process.exitcode}")
        if process.is_alive():
            process.kill()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_a_multiprocessing_child_maps_its_own_functions_and_exits(
    tmp_path: Path, method: str
) -> None:
    # before #15: spawn and forkserver children crashed their workers looking up
    # __mp_main__.cube, and every child waited ~300 s for the warm pool's reaper to exit
    script = tmp_path / "user_script.py"
    script.write_text(IN_A_CHILD)
    done = subprocess.run(
        [sys.executable, str(script), method], capture_output=True, text=True, timeout=120
    )
    assert done.stderr == ""
    assert done.stdout == "[0, 1, 8, 27]\nexit code 0\n"
