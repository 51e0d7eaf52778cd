"""Report renders as text and as JSON-ready data."""

from __future__ import annotations

import json

from poolwise import Report


def test_report_text_and_dict() -> None:
    report = Report(
        mode="processes",
        workers=4,
        chunksize=25,
        tasks_submitted=100,
        tasks_done=98,
        tasks_failed=2,
        wall_seconds=2.0,
        task_seconds=6.0,
        backend={"workers_started": 4},
        reasons=["a reason"],
    )
    assert report.utilisation == 0.75
    text = str(report)
    assert "mode processes, 4 workers, chunksize 25" in text
    assert "98 done, 2 failed" in text
    assert "75% of the workers' capacity" in text
    assert "- a reason" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["utilisation"] == 0.75
    assert data["backend"] == {"workers_started": 4}
