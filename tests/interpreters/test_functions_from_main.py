"""Functions, lambdas, closures and classes defined in ``__main__`` reach interpreter
workers by value, from a script and from code without a file (``python -c``, like a
notebook). CPython's own InterpreterPoolExecutor cannot run them (gh-136603)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 13), reason="mode='interpreters' needs Python 3.13+"
)

SCRIPT = textwrap.dedent(
    """
    import poolwise

    def triple(x):
        return 3 * x

    class Scaler:
        def __init__(self, k):
            self.k = k
        def __call__(self, x):
            return self.k * x

    class Point:
        def __init__(self, x):
            self.x = x

    def to_point(x):
        return Point(x)

    def main():
        offset = 100
        with poolwise.Pool("interpreters", 2) as pool:
            print(pool.map(triple, range(4)))
            print(pool.map(lambda x: x + offset, range(3)))
            print(pool.map(Scaler(5), range(3)))
            print(pool.submit(triple, 7).result())
            points = pool.map(to_point, range(3))
            print([type(p) is Point for p in points], [p.x for p in points])

    if __name__ == "__main__":
        main()
    """
)
EXPECTED = "[0, 3, 6, 9]\n[100, 101, 102]\n[0, 5, 10]\n21\n[True, True, True] [0, 1, 2]\n"


def test_main_module_functions_work_from_a_script(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == EXPECTED


def test_main_module_functions_work_without_a_file() -> None:
    code = SCRIPT.replace('if __name__ == "__main__":\n    main()', "main()")
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == EXPECTED
