"""The lab's HTML report opened in a real headless Chromium: rows, charts, no errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from poolwise.lab.render_html import write_html

sys.path.insert(0, str(Path(__file__).parent.parent / "lab"))
from test_render_html import sample_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).parent.parent.parent / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not installed (Debian package 'chromium'; .ci/run "
        "installs it where apt-get can)",
    ),
]

# Flags a closed network needs: without them Chromium keeps trying to reach Google.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.slow
def test_report_renders_every_row_and_chart_without_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "lab.html"
    write_html(sample_report(), page)
    done = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    for key in ("cpu-bound", "memory-footprint", "interruptibility", "video-streaming"):
        assert f'id="row-{key}"' in dom
    assert dom.count("<svg") == 3
    assert "python processes" in dom  # the video-streaming chart's legend
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lab-report.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank
