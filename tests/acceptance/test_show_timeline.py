"""``show ID`` and ``show ID --json`` print the schedule's timeline (issue 12, item 6), as a
subprocess on SQLite and PostgreSQL: changes made with the CLI say ``cli``, the processor's
attempt says its worker, and the upload follows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler import ScheduleManager, SchedulerConfig, VideoMetadata
from langflix_scheduler.testing import FakeYouTube
from tests.conftest import unique_bytes

from ._cli import CliResult

BOTH_ENGINES = pytest.mark.parametrize(
    "test_database", ["sqlite", "postgresql"], indirect=True, ids=["sqlite", "postgresql"]
)


@pytest.fixture
def youtube() -> Iterator[FakeYouTube]:
    with FakeYouTube() as fake:
        yield fake


@pytest.fixture
def uploading_env(youtube: FakeYouTube, tmp_path: Path) -> dict[str, str]:
    """A token file for channel ``default`` and the fake endpoint."""
    tokens = tmp_path / "tokens"
    tokens.mkdir(mode=0o700)
    token = tokens / "default.json"
    token.write_text(
        json.dumps(
            {
                "token": "access-token",
                "refresh_token": "refresh-token",
                "client_id": "client.apps.googleusercontent.com",
                "client_secret": "secret",
                "expiry": "2099-01-01T00:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    token.chmod(0o600)
    return {
        "LANGFLIX_SCHEDULER_TOKEN_DIR": str(tokens),
        "LANGFLIX_SCHEDULER_API_ENDPOINT": youtube.api_endpoint,
    }


def _book_due(db_url: str, tmp_path: Path) -> int:
    """Book one short with the library as if a day ago, so it is due now."""
    past = datetime.now(UTC) - timedelta(days=1)
    video = tmp_path / "due.mp4"
    video.write_bytes(unique_bytes(300_000))
    with ScheduleManager(SchedulerConfig(database_url=db_url), clock=lambda: past) as m:
        return m.schedule_video(video, "short", metadata=VideoMetadata(title="Due lesson")).id


@BOTH_ENGINES
def test_show_prints_the_timeline_of_changes_made_with_the_cli(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    video = tmp_path / "lesson.mp4"
    video.write_bytes(b"\x00" * 4096)
    run_cli("init-db", check=True)
    booked = run_cli("--json", "schedule", str(video), "--type", "final", check=True).json()
    sid = str(booked["id"])
    first = datetime.fromisoformat(booked["scheduled_publish_time"])
    later = (first + timedelta(days=1)).isoformat()
    run_cli("reschedule", sid, "--at", later, check=True)
    run_cli("cancel", sid, check=True)

    data = run_cli("--json", "show", sid, check=True).json()
    assert data["status"] == "cancelled"  # today's details are still there
    timeline = data["timeline"]
    assert [(e["kind"], e["actor"]) for e in timeline] == [
        ("booked", "cli"),
        ("rescheduled", "cli"),
        ("cancelled", "cli"),
    ]
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in timeline)
    assert f"{first.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ->" in timeline[1]["detail"]

    human = run_cli("show", sid, check=True).stdout
    assert "timeline" in human
    lines = human[human.index("timeline") :].splitlines()
    for kind in ("booked", "rescheduled", "cancelled"):
        row = next(line for line in lines if f" {kind} " in line)
        assert " cli " in row
        assert " UTC" in row  # the default channel zone: local times as elsewhere in the CLI


@BOTH_ENGINES
def test_show_after_an_upload_lists_the_attempt_and_the_upload(
    run_cli: Callable[..., CliResult],
    uploading_env: dict[str, str],
    db_url: str,
    tmp_path: Path,
) -> None:
    run_cli("init-db", check=True)
    sid = _book_due(db_url, tmp_path)
    result = run_cli("process", "--once", "--worker-id", "cron-1", env=uploading_env)
    assert result.code == 0, result.stderr

    data = run_cli("--json", "show", str(sid), check=True).json()
    assert data["status"] == "completed"
    kinds = [e["kind"] for e in data["timeline"]]
    assert kinds[:2] == ["booked", "attempt"]
    assert "uploaded" in kinds
    attempt = data["timeline"][1]
    assert (attempt["actor"], attempt["detail"]) == ("cron-1", "attempt 1")
    assert "api_call" not in kinds  # the ledger only on request

    with_calls = run_cli("--json", "show", str(sid), "--api-calls", check=True).json()
    calls = [e for e in with_calls["timeline"] if e["kind"] == "api_call"]
    assert calls
    assert "videos.insert" in calls[0]["detail"]

    human = run_cli("show", str(sid), check=True).stdout
    assert "Due lesson" in human
    row = next(line for line in human.splitlines() if " attempt " in line)
    assert "cron-1" in row
    assert "attempt 1" in row
