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
