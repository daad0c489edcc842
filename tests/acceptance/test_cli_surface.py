"""Issue 11, the CLI's surface: status and process agree on what is due, options after the
command, no hard wrapping without a terminal, the offline example never touches a real DB."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.media import write_mp4
from tests.conftest import unique_bytes

from ._cli import CliResult

pytestmark = pytest.mark.usefixtures("db_url")

Run = Callable[..., CliResult]


def _book_due(db_url: str, tmp_path: Path, n: int, *, api_project: str) -> list[int]:
    """n shorts of channel 'main' booked two days ago under ``api_project``: due now."""
    past = datetime.now(UTC) - timedelta(days=2)
    config = SchedulerConfig(database_url=db_url, channel="main", api_project=api_project)
    ids = []
    with ScheduleManager(config, clock=lambda: past) as manager:
        for i in range(n):
            video = tmp_path / f"due-{api_project}-{i}.mp4"
            video.write_bytes(unique_bytes(2048))
            meta = VideoMetadata(title=f"Lesson {i}")
            ids.append(manager.schedule_video(video, "short", metadata=meta).id)
    return ids


def test_status_and_dry_run_agree_on_what_is_due(
    run_cli: Run, db_url: str, tmp_path: Path, engine_name: str
) -> None:
    if engine_name == "mysql":
        pytest.skip("one rule, two engines are enough")
    mine = _book_due(db_url, tmp_path, 2, api_project="proj-a")
    _book_due(db_url, tmp_path, 1, api_project="proj-b")
    flags = ("--channel", "main", "--api-project", "proj-a", "--json")
    status = run_cli(*flags, "status", check=True).json()
    dry = run_cli(*flags, "process", "--dry-run", check=True).json()
    assert sorted(s["id"] for s in status["due"]) == sorted(mine)
    assert sorted(d["id"] for d in dry["due"]) == sorted(mine)
    assert (status["api_project"], dry["api_project"]) == ("proj-a", "proj-a")
    assert status["due_elsewhere"] == {"--channel main --api-project proj-b": 1}
    human = run_cli("--channel", "main", "--api-project", "proj-a", "status", check=True)
    assert "2 due for the next run on channel main, API project proj-a" in human.stdout
    assert "also due: 1 with --channel main --api-project proj-b" in human.stdout
    nothing = run_cli("--channel", "main", "process", "--dry-run", check=True)
    assert "nothing is due on channel main, API project default" in nothing.stdout


def test_demo_keep_hint_names_the_api_project(run_cli: Run, engine_name: str) -> None:
    if engine_name != "sqlite":
        pytest.skip("the demo uses its own SQLite database")
    result = run_cli("demo", "--keep", check=True)
    hint = [line for line in result.stdout.splitlines() if "process --dry-run" in line]
    assert hint, result.stdout
    assert "--api-project langflix-demo" in hint[0]
    flags = hint[0].split("langflix-scheduler", 1)[1].split()[:-2]
    dry = run_cli(*flags, "--json", "process", "--dry-run", check=True).json()
    status = run_cli(*flags, "--json", "status", check=True).json()
    assert [d["id"] for d in dry["due"]] == [s["id"] for s in status["due"]]


def test_offline_processor_job_never_touches_the_real_database(
    run_cli: Run, tmp_path: Path, engine_name: str
) -> None:
    if engine_name != "sqlite":
        pytest.skip("the default database is a SQLite file in the working directory")
    real = tmp_path / "langflix-scheduler.db"  # what the default URL finds in this directory
    with ScheduleManager(SchedulerConfig(database_url=f"sqlite:///{real}")) as m:
        m.init_db()
    (due_id,) = _book_due(f"sqlite:///{real}", tmp_path, 1, api_project="default")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGFLIX_SCHEDULER_")}
    example = Path(__file__).resolve().parents[2] / "examples" / "processor_job.py"
    result = subprocess.run(
        [sys.executable, str(example), "--fake-youtube", "--channel", "main"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "throwaway database" in result.stderr
    assert str(real) not in result.stderr
    with ScheduleManager(SchedulerConfig(database_url=f"sqlite:///{real}")) as m:
        untouched = m.get(due_id)
    assert untouched.status.value == "scheduled"
    assert untouched.youtube_video_id is None


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A real landscape episode, so the Shorts check reads it and stderr holds only the error."""
    return write_mp4(
        tmp_path / "lesson.mp4", width=1920, height=1080, seconds=600, payload=os.urandom(4096)
    )


def test_global_options_after_the_command(run_cli: Run, video: Path) -> None:
    run_cli("schedule", str(video), "--type", "final", "--channel", "late", check=True)
    listed = run_cli("list", "--json", "--channel", "late", check=True).json()
    assert [s["channel_id"] for s in listed] == ["late"]
    assert run_cli("list", "--channel", "other", "--json", check=True).json() == []


def test_errors_name_cli_options_and_local_times(run_cli: Run, video: Path) -> None:
    far = (datetime.now(UTC) + timedelta(days=400)).replace(microsecond=0)
    result = run_cli(
        "--timezone",
        "Asia/Seoul",
        "schedule",
        str(video),
        "--type",
        "final",
        "--at",
        far.isoformat(),
    )
    assert result.code == 1
    line = result.stderr.strip()
    assert line.startswith("error: invalid --at:"), line
    assert "preferred_time" not in line
    assert "KST" in line
    assert "+00:00" not in line


def test_no_hard_wrap_without_a_terminal(run_cli: Run, video: Path) -> None:
    title = "A very long lesson title that goes on and on " * 2
    run_cli("schedule", str(video), "--type", "final", "--title", title.strip(), check=True)
    listed = run_cli("list", env={"COLUMNS": "80"}, check=True)
    assert any(title.strip() in line for line in listed.stdout.splitlines()), listed.stdout


def test_metadata_file_accepts_type_and_at(run_cli: Run, tmp_path: Path) -> None:
    video = write_mp4(tmp_path / "short.mp4", width=1080, height=1920, seconds=30)
    at = (datetime.now(UTC) + timedelta(days=3)).replace(hour=7, minute=30, second=0, microsecond=0)
    meta = tmp_path / "ep.json"
    meta.write_text(f'{{"type": "short", "at": "{at.isoformat()}", "title": "From JSON"}}')
    booked = run_cli("--json", "schedule", str(video), "--metadata", str(meta), check=True).json()
    assert booked["video_type"] == "short"
    assert datetime.fromisoformat(booked["scheduled_publish_time"]) == at
    assert booked["metadata"]["title"] == "From JSON"


def test_option_help_texts(run_cli: Run) -> None:
    schedule = run_cli("schedule", "--help", check=True).stdout
    assert "default: public" in schedule
    assert "final (long video" in schedule
    assert "Only schedules in this status" in run_cli("list", "--help", check=True).stdout
    assert "How many channel days" in run_cli("quota", "--help", check=True).stdout


def test_demo_times_have_a_zone_and_columns_read_honestly(run_cli: Run, engine_name: str) -> None:
    if engine_name != "sqlite":
        pytest.skip("the demo uses its own SQLite database")
    out = run_cli("demo", check=True).stdout
    assert "Why legacy" in out
    header = next(line for line in out.splitlines() if "publish (Seoul)" in line)
    assert "retries" in header
    assert "attempts" not in header
    assert "KST" in out
    assert re.search(r"\b\d\d-\d\d \d\d:\d\d(?! KST)(?!:\d\d KST)\b", out) is None, out


def test_quota_of_a_past_day_shows_that_days_quota_date(run_cli: Run, engine_name: str) -> None:
    if engine_name == "mysql":
        pytest.skip("pure date arithmetic, two engines are enough")
    past = (datetime.now(UTC) - timedelta(days=30)).date()
    days = run_cli(
        "--timezone",
        "UTC",
        "--json",
        "quota",
        "--date",
        past.isoformat(),
        "--days",
        "1",
        check=True,
    ).json()
    quota_days = {q["quota_date"] for q in days[0]["quota"]}
    today = datetime.now(UTC).date().isoformat()
    assert today not in quota_days
    assert quota_days <= {(past - timedelta(days=1)).isoformat(), past.isoformat()}
