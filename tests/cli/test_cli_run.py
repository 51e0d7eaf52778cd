"""``poolwise profile`` and ``poolwise run``: a named function over inputs from a file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from poolwise import cli

if TYPE_CHECKING:
    from pathlib import Path

WORK = textwrap.dedent(
    """
    import time

    def square(x):
        if x == 3:
            raise ValueError("three is not allowed")
        return x * x

    def shout(text):
        return text.upper()

    def add(a, b):
        return a + b

    def nap(x):
        time.sleep(0.01)
        return x

    class Unjsonable:
        pass

    def odd(x):
        return Unjsonable()
    """
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "clitasks.py").write_text(WORK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "clitasks", raising=False)
    return tmp_path


def poolwise_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poolwise.cli", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("mode", ["serial", "threads", "processes", "auto"])
def test_run_writes_every_outcome_in_input_order(work: Path, mode: str) -> None:
    output = work / "out.jsonl"
    done = poolwise_cli(
        "run", "clitasks:square", "--range", "6", "--mode", mode, "--output", str(output),
        cwd=work,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one input failed
    records = lines(output.read_text())
    assert [r["input"] for r in records] == list(range(6))
    assert [r.get("result") for r in records] == [0, 1, 4, None, 16, 25]
    assert records[3]["error"] == "ValueError"
    assert records[3]["message"] == "three is not allowed"
    assert "square" in str(records[3]["traceback"])
    assert "6 inputs, 5 done, 1 failed" in done.stderr


def test_run_reads_json_lines_and_plain_text(work: Path) -> None:
    (work / "in.txt").write_text('"a b"\nplain words\n\n{"not": "a string"}\n')
    done = poolwise_cli("run", "clitasks.py:shout", "--inputs", "in.txt", cwd=work)
    records = lines(done.stdout)
    assert [r["input"] for r in records] == ["a b", "plain words", {"not": "a string"}]
    assert [r.get("result") for r in records] == ["A B", "PLAIN WORDS", None]
    assert records[2]["error"] == "AttributeError"


def test_run_star_unpacks_each_input_and_reads_stdin(work: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "poolwise.cli", "run", "clitasks:add", "--inputs", "-", "--star"],
        input="[1, 2]\n[10, 20]\n",
        capture_output=True,
        text=True,
        cwd=work,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [r["result"] for r in lines(done.stdout)] == [3, 30]


def test_a_result_json_cannot_hold_is_written_as_its_repr(work: Path) -> None:
    done = poolwise_cli("run", "clitasks:odd", "--range", "1", "--mode", "serial", cwd=work)
    assert "Unjsonable object" in str(lines(done.stdout)[0]["result"])


def test_run_report_says_where_and_why(work: Path) -> None:
    done = poolwise_cli("run", "clitasks:nap", "--range", "8", "--report", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "mode auto chose threads" in done.stderr


def test_profile_prints_the_choice_and_reasons(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["profile", "clitasks:nap", "--range", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "threads"
    assert any("I/O-bound" in reason for reason in data["reasons"])
    assert data["tasks_run"] <= 12


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "clitasks", "--range", "3"], "is not MODULE:FUNCTION"),
        (["run", "nosuchmodule:f", "--range", "3"], "cannot import module 'nosuchmodule'"),
        (["run", "clitasks:nothing", "--range", "3"], "has no 'nothing'"),
        (["run", "clitasks:WORK", "--range", "3"], "has no 'WORK'"),
        (["run", "missing.py:f", "--range", "3"], "no file 'missing.py'"),
        (["run", "clitasks:square", "--inputs", "nope.txt"], "nope.txt: no such file"),
        (["run", "clitasks:square", "--range", "-1"], "--range -1"),
        (["run", "clitasks:square"], "one of the arguments --inputs --range is required"),
        (["run", "clitasks:square", "--range", "2", "--inputs", "x"], "not allowed with"),
        (["run", "clitasks:square", "--range", "2", "--mode", "gpu"], "invalid choice: 'gpu'"),
        (["run", "clitasks:square", "--range", "2", "--workers", "0"], "0 is not 1 or more"),
        (["run", "clitasks:square", "--range", "2", "--timeout", "-3"], "not above 0"),
        (["run", "clitasks:add", "--range", "2", "--star"], "input #0 is 0, not a JSON list"),
        (["profile", "clitasks:square", "--range", "0"], "no inputs to measure"),
    ],
)
def test_usage_errors_exit_2_with_one_line(work: Path, argv: list[str], message: str) -> None:
    done = poolwise_cli(*argv, cwd=work)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert message in done.stderr
    assert not done.stdout


def test_a_module_that_fails_to_import_is_a_usage_error(work: Path) -> None:
    (work / "broken.py").write_text("raise RuntimeError('no config file')\n")
    done = poolwise_cli("profile", "broken:f", "--range", "2", cwd=work)
    assert done.returncode == 2
    assert "RuntimeError: no config file" in done.stderr
    assert "Traceback" not in done.stderr
