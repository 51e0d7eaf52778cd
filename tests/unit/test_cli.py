"""The command line: info works; usage errors exit 2 with one line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from poolwise import cli


def test_info_json_has_the_machine_facts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["usable_cpus"] >= 1
    assert data["modes"]["threads"] == "available"
    assert data["modes"]["auto"].startswith("available")
    assert data["modes"]["dask"] == "available"  # distributed is in the dev group


def test_info_json_shows_the_native_pools_and_the_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("numpy", reason="NumPy brings the BLAS pool info reports")
    assert cli.main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    native, cpus = data["native_threads"], data["usable_cpus"]
    assert any(pool["user_api"] == "blas" and pool["num_threads"] >= 1 for pool in native["pools"])
    assert native["per_worker"]["1"] == cpus
    assert native["per_worker"][str(cpus)] == 1
    assert native["per_worker"]["2"] == max(1, cpus // 2)


def test_info_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "usable CPUs" in out
    assert "start methods" in out
    assert "build" in out
    assert "GIL" in out
    assert "native threads per worker" in out


@pytest.mark.parametrize("argv", [["bogus"], ["info", "--nope"], []])
def test_usage_errors_exit_2_without_traceback(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "poolwise.cli", *argv], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip()
