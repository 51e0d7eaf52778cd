"""``poolwise profile`` and ``poolwise run``: a named function over inputs from a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import IO, TYPE_CHECKING

import pytest

from poolwise import cli

if TYPE_CHECKING:
    from pathlib import Path

WORK = textwrap.dedent(
    """
    import threading
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

    def first_only(x):
        if x > 0:
            threading.Event().wait()  # never returns: only input 0 has an outcome
        return x
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


#: A program that prints 0, 1, 2... without end (to stdout, or to the file named first).
ENDLESS = textwrap.dedent(
    """
    import itertools, sys
    out = open(sys.argv[1], "w") if len(sys.argv) > 1 else sys.stdout
    for i in itertools.count():
        print(i, file=out)
    """
)


def buffered() -> dict[str, str]:
    """This environment with Python's default output buffering (block-buffered on a
    pipe): PYTHONUNBUFFERED, if set here, would hide an outcome left unflushed."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


def head_of_run(
    argv: list[str], cwd: Path, count: int, stdin: IO[bytes] | None = None
) -> tuple[list[dict[str, object]], int, str]:
    """The first ``count`` output lines of a run that need not end, then its exit status
    and stderr once it has seen its stdout closed (as ``poolwise run ... | head`` does)."""
    errors = cwd / "stderr.txt"
    with errors.open("w") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "poolwise.cli", *argv],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
            env=buffered(),
        )
    try:
        assert run.stdout is not None
        head = [json.loads(run.stdout.readline() or b"null") for _ in range(count)]
        run.stdout.close()
        status = run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return head, status, errors.read_text()


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
    (work / "in.txt").write_text('"a b"\nplain words\n{"not": "a string"}\n')
    done = poolwise_cli("run", "clitasks.py:shout", "--inputs", "in.txt", cwd=work)
    records = lines(done.stdout)
    assert [r["input"] for r in records] == ["a b", "plain words", {"not": "a string"}]
    assert [r.get("result") for r in records] == ["A B", "PLAIN WORDS", None]
    assert records[2]["error"] == "AttributeError"


def test_blank_lines_are_inputs_so_output_line_k_is_input_line_k(work: Path) -> None:
    (work / "in.txt").write_text("a\n\n  \nb\n\n")
    done = poolwise_cli("run", "clitasks:shout", "--inputs", "in.txt", cwd=work)
    assert done.returncode == 0, done.stderr
    records = lines(done.stdout)
    assert [r["input"] for r in records] == ["a", "", "  ", "b", ""]
    assert [r["result"] for r in records] == ["A", "", "  ", "B", ""]


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["clitasks:square", "--range", "2", "--retries", "-1"],
            "argument --retries: -1 is not 0 or more",
            id="negative-retries",
        ),
        pytest.param(
            ["clitasks:square", "--range", "2", "--retries", "two"],
            "argument --retries: 'two' is not a whole number",
            id="retries-not-a-number",
        ),
        pytest.param(
            ["clitasks:add", "--range", "2"],
            "input #0 (0) does not fit add(a, b): missing a required argument: 'b'; each "
            "input is one argument: for several, write each input as a JSON list of them and "
            "give --star",
            id="arity-without-star",
        ),
        pytest.param(
            ["clitasks:add", "--inputs", "one.txt", "--star"],
            "input #0 ([1]) does not fit add(a, b): missing a required argument: 'b'",
            id="arity-short-star-list",
        ),
        pytest.param(
            ["clitasks:square", "--inputs", "two.txt", "--star"],
            "input #0 ([1, 2]) does not fit square(x): too many positional arguments",
            id="arity-long-star-list",
        ),
        pytest.param(
            ["clitasks:square", "--range", "2", "--mode", "interpreters"],
            "mode='interpreters' is not available",
            id="mode-unavailable",
            marks=pytest.mark.skipif(sys.version_info >= (3, 13), reason="available there"),
        ),
    ],
)
def test_usage_errors_are_one_line_before_any_work(
    work: Path, argv: list[str], message: str
) -> None:
    (work / "one.txt").write_text("[1]\n[2]\n")
    (work / "two.txt").write_text("[1, 2]\n")
    done = poolwise_cli("run", *argv, "--output", "out.jsonl", cwd=work)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert message in done.stderr
    assert not done.stdout
    assert not (work / "out.jsonl").exists()  # nothing started, not even the output


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["serial", "threads", "processes", "auto"])
def test_a_huge_range_streams_its_first_results(work: Path, mode: str) -> None:
    argv = ["run", "clitasks:square", "--range", "100000000000", "--mode", mode]
    head, status, stderr = head_of_run(argv, work, 3)
    assert [r and r["result"] for r in head] == [0, 1, 4], stderr
    assert status == 141  # like a command that SIGPIPE ended, as `| head` leaves it
    assert not stderr  # no traceback, no "Exception ignored" at exit


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", ["stdin", "fifo"])
def test_inputs_are_read_as_they_come(work: Path, source: str) -> None:
    if source == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no named pipes here")
        os.mkfifo(work / "fifo")
        feeder = subprocess.Popen([sys.executable, "-c", ENDLESS, "fifo"], cwd=work)
        argv, stdin = ["--inputs", "fifo"], None
    else:
        feeder = subprocess.Popen(
            [sys.executable, "-c", ENDLESS], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        argv, stdin = ["--inputs", "-"], feeder.stdout
    try:
        head, status, stderr = head_of_run(["run", "clitasks:square", *argv], work, 3, stdin)
    finally:
        if feeder.stdout is not None:
            feeder.stdout.close()
        feeder.kill()
        feeder.wait()
    assert [r and r["input"] for r in head] == [0, 1, 2], stderr
    assert [r and r["result"] for r in head] == [0, 1, 4]
    assert status == 141
    assert not stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["serial", "threads", "processes"])
def test_an_outcome_is_written_while_later_tasks_still_run(work: Path, mode: str) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "poolwise.cli", "run", "clitasks:first_only", "--range", "3",
         "--mode", mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=work,
        env=buffered(),
    )  # fmt: skip
    try:
        assert run.stdout is not None
        first = run.stdout.readline()  # hangs (the timeout fails it) if left in a buffer
    finally:
        run.terminate()
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
        if run.stdout is not None:
            run.stdout.close()
    assert json.loads(first) == {"input": 0, "result": 0}


def test_a_later_input_that_is_not_a_list_stops_star_with_exit_2(work: Path) -> None:
    (work / "in.txt").write_text("[1, 2]\n[3, 4]\n5\n[6, 7]\n")
    done = poolwise_cli(
        "run", "clitasks:add", "--inputs", "in.txt", "--star", "--mode", "serial", cwd=work
    )
    assert done.returncode == 2
    assert [r["result"] for r in lines(done.stdout)] == [3, 7]  # the inputs before it
    assert done.stderr.splitlines() == [
        "poolwise run: error: --star: input #2 is 5, not a JSON list of arguments"
    ]


def test_a_line_that_is_not_utf8_is_a_usage_error_naming_it(work: Path) -> None:
    (work / "in.txt").write_bytes(b"1\n2\n\xff\n4\n")
    done = poolwise_cli(
        "run", "clitasks:square", "--inputs", "in.txt", "--mode", "serial", cwd=work
    )
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "--inputs in.txt: line 3 is not UTF-8 text" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("mode", ["serial", "processes"])
def test_a_script_imports_its_sibling_modules_as_python_would(work: Path, mode: str) -> None:
    (work / "sub").mkdir()
    (work / "sub" / "helper.py").write_text("def bump(x):\n    return x + 100\n")
    (work / "sub" / "x.py").write_text("import helper\n\ndef f(x):\n    return helper.bump(x)\n")
    # A module of the same name in the current directory: the script's folder comes first.
    (work / "helper.py").write_text("def bump(x):\n    return -x\n")
    done = poolwise_cli("run", "sub/x.py:f", "--range", "3", "--mode", mode, cwd=work)
    assert done.returncode == 0, done.stderr
    assert [r["result"] for r in lines(done.stdout)] == [100, 101, 102]
