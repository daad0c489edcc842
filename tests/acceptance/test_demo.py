"""``langflix-scheduler demo`` end to end, as a user runs it (a subprocess, no database setup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from langflix_scheduler.db.engine import create_engine

#: The README promises "under a minute"; the bound leaves room for a loaded CI machine.
DEMO_TIMEOUT_SECONDS = 120


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFLIX_SCHEDULER_")}
    env["COLUMNS"] = "120"
    env["TMPDIR"] = str(tmp_path)  # the demo's throwaway directory lands here
    return subprocess.run(
        [sys.executable, "-m", "langflix_scheduler", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=DEMO_TIMEOUT_SECONDS,
        check=False,
    )


def test_demo_json_every_due_schedule_uploaded_once_and_the_fault_retried(
    tmp_path: Path,
) -> None:
    proc = _demo(tmp_path, "--json", "demo", "--keep")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is True
    assert data["checks"]
    assert all(data["checks"].values()), data["checks"]
    assert data["elapsed_seconds"] < 60

    # The week did not fit: the daily limit, the quota and a taken slot each refused a request.
    assert data["booked"] == 49
    assert {r["error"] for r in data["refused"]} == {"QuotaExceededError", "SlotUnavailableError"}
    assert any("daily:final" in r["message"] for r in data["refused"])
    assert any("quota:shared" in r["message"] for r in data["refused"])

    # Every due schedule was uploaded, each exactly once.
    due = data["due"]
    assert len(due) >= 10
    assert {s["status"] for s in due} == {"completed"}
    assert len({s["youtube_video_id"] for s in due}) == len(due)
    assert data["fake_youtube"]["insert_calls"] == len(due)
    assert data["fake_youtube"]["videos"] == len(due)
    assert data["status_counts"] == {"completed": len(due), "scheduled": 49 - len(due)}

    # One transient fault: the processor retried that upload, which resumed its session.
    retried = [e for e in data["events"] if e["kind"] == "retried"]
    assert len(retried) == 1
    (victim,) = [s for s in due if s["id"] == retried[0]["schedule_id"]]
    assert victim["title"] == data["fault_injected_into"]
    assert victim["attempts"] == 1
    assert all(s["attempts"] == 0 for s in due if s is not victim)
    assert data["fake_youtube"]["status_queries"] >= 1
    uploaded = [e["schedule_id"] for e in data["events"] if e["kind"] == "uploaded"]
    assert sorted(uploaded) == sorted(s["id"] for s in due)

    # After the upload: every video checked until published, one change of plan on YouTube.
    life = data["after_upload"]
    moved = life["rescheduled"]
    assert moved is not None
    states = {s["id"]: s["video_state"] for s in due}
    assert states.pop(moved["schedule_id"]) == "ready"
    assert set(states.values()) == {"published"}
    assert life["video_states_after"] == {"published": len(due) - 1, "ready": 1}
    assert moved["new_publish_time"] > moved["old_publish_time"]
    assert moved["youtube_publish_at"].startswith(moved["new_publish_time"][:19])
    assert data["fake_youtube"]["videos_update_calls"] == 1
    assert data["fake_youtube"]["videos_list_calls"] >= len(due) // 50 + 1
    kinds = [e["kind"] for e in data["events"]]
    assert kinds.count("published") == len(due) - 1
    assert "claimed" not in kinds

    # --keep leaves the database for the other commands, and it agrees with the report.
    assert data["database_url"].startswith("sqlite:///")
    engine = create_engine(data["database_url"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT upload_status, COUNT(*) FROM youtube_schedules GROUP BY 1")
            ).all()
            runs = conn.execute(text("SELECT SUM(uploaded), SUM(retried) FROM processor_runs"))
            assert tuple(runs.one()) == (len(due), 1)
            # The quota ledger counted every after-upload call FakeYouTube received.
            calls = conn.execute(
                text(
                    "SELECT operation, COUNT(*) FROM youtube_api_calls"
                    " WHERE operation IN ('videos.list', 'videos.update') GROUP BY 1"
                )
            ).all()
            assert dict(calls) == {
                "videos.list": data["fake_youtube"]["videos_list_calls"],
                "videos.update": 1,
            }
    finally:
        engine.dispose()
    assert dict(rows) == data["status_counts"]


def test_demo_human_output_ends_with_the_final_status_table(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for heading in (
        "1. Booking the week",
        "2. Calendar",
        "3. API quota",
        "4. Processing",
        "5. After the upload",
    ):
        assert heading in out
    final = out[out.index("6. Final status") :]
    assert "completed" in final
    assert "FAIL" not in final
    assert final.count(" ok ") >= 9
    assert "published" in final  # the video state column
    assert "Change of plan" in out
    assert "retry #" in out  # the injected fault, retried
    assert "resuming" in out  # ... by resuming the upload session
    assert "\x1b[" not in out  # not a terminal: no control sequences, no progress bars
    assert proc.stderr == ""
    assert not list(tmp_path.glob("langflix-demo-*"))  # the throwaway directory is gone
