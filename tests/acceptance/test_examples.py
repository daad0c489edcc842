"""Every script in ``examples/`` runs as a user would run it, against a fresh SQLite database.

Each test checks what the script really did (rows in the database, videos on FakeYouTube, the
lines it printed), not only its exit code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler import ScheduleManager, SchedulerConfig, VideoMetadata
from langflix_scheduler.db.engine import Database, create_engine
from langflix_scheduler.db.locking import named_lock
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.youtube.uploader import DryRunUploader
from tests.conftest import unique_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_TIMEOUT_SECONDS = 120


@pytest.fixture
def db_file(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'examples.db'}"


def _run(
    script: str, *args: str, cwd: Path, db: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LANGFLIX_SCHEDULER_")}
    clean["LANGFLIX_SCHEDULER_DATABASE_URL"] = db
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=EXAMPLE_TIMEOUT_SECONDS,
        check=False,
    )


def _manager(db: str, **overrides: Any) -> ScheduleManager:
    return ScheduleManager(SchedulerConfig(database_url=db, **overrides))


def test_quickstart_books_the_next_free_slots(tmp_path: Path, db_file: str) -> None:
    first = _run("quickstart.py", cwd=tmp_path, db=db_file)
    assert first.returncode == 0, first.stderr
    assert re.search(r"booked #1 final for \d{4}-\d\d-\d\d (10|18):00 KST", first.stdout)
    assert re.search(r"booked #2 short for .* KST", first.stdout)
    # Running it again books nothing new: the same files and metadata are the same requests,
    # so it gets back the schedules it made (issue 9: a retried booking is not a second one).
    second = _run("quickstart.py", cwd=tmp_path, db=db_file)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[:2] == first.stdout.splitlines()[:2]
    # New videos (new content) get the next free slots.
    for name in ("episode-12.mp4", "short-3.mp4"):
        (tmp_path / "out" / name).write_bytes(b"new cut of " + name.encode())
    third = _run("quickstart.py", cwd=tmp_path, db=db_file)
    assert third.returncode == 0, third.stderr
    assert "booked #3 final" in third.stdout
    with _manager(db_file, timezone="Asia/Seoul") as m:
        rows = sorted(m.list_schedules(), key=lambda s: s.id)
    assert [(s.video_type.value, s.status.value) for s in rows] == [
        ("final", "scheduled"),
        ("short", "scheduled"),
    ] * 2
    finals = [s for s in rows if s.video_type.value == "final"]
    assert len(finals) == 2
    assert len({s.scheduled_publish_time for s in finals}) == 2
    assert finals[0].metadata.title == "Korean with dramas #12"
    assert "next free final slot" in second.stdout


def test_batch_schedule_folder_with_metadata_files(tmp_path: Path, db_file: str) -> None:
    # Without a folder it makes and books a sample one.
    sample = _run("batch_schedule.py", cwd=tmp_path, db=db_file)
    assert sample.returncode == 0, sample.stderr
    assert "5 booked, 0 skipped, 0 failed" in sample.stdout

    folder = tmp_path / "week"
    folder.mkdir()
    at = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=30, second=0, microsecond=0)
    (folder / "ep-1.mp4").write_bytes(b"\0" * 4096)
    (folder / "ep-1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    (folder / "ep-1.json").write_text(
        json.dumps(
            {
                "type": "final",
                "title": "Episode one",
                "tags": ["korean"],
                "thumbnail_path": "ep-1.png",
                "playlist_id": "PL1",
                "at": at.isoformat(),
            }
        ),
        encoding="utf-8",
    )
    (folder / "short-a.mp4").write_bytes(b"\0" * 2048)  # no metadata file: defaults
    (folder / "broken.mp4").write_bytes(b"\0" * 2048)
    (folder / "broken.json").write_text('{"title": "a <b> title"}', encoding="utf-8")

    result = _run("batch_schedule.py", str(folder), cwd=tmp_path, db=db_file)
    assert result.returncode == 1  # one file failed; the others were booked
    assert "2 booked, 0 skipped, 1 failed" in result.stdout
    assert "broken.mp4" in result.stderr
    assert "metadata.title" in result.stderr
    with _manager(db_file) as m:
        by_name = {Path(s.video_path).name: s for s in m.list_schedules()}
    episode = by_name["ep-1.mp4"]
    assert episode.scheduled_publish_time == at
    assert episode.metadata.title == "Episode one"
    assert episode.metadata.thumbnail_path == str(folder / "ep-1.png")
    assert episode.reserved_quota == {"shared": 100, "uploads": 1}  # thumbnail + playlist
    assert by_name["short-a.mp4"].video_type.value == "short"
    assert by_name["short-a.mp4"].metadata.title == "short a"
    assert "broken.mp4" not in by_name

    again = _run("batch_schedule.py", str(folder), cwd=tmp_path, db=db_file)
    assert "0 booked, 2 skipped, 1 failed" in again.stdout
    with _manager(db_file) as m:
        assert len(m.list_schedules()) == 7


def _lock_name(url: str) -> str:
    """The exclusive-mode lock of a processor of channel ``default`` (as the CLI builds it)."""
    with ScheduleManager(SchedulerConfig(database_url=url)) as m:
        return UploadProcessor(m, DryRunUploader(), channels=["default"]).lock_name


def _book_due(db: str, tmp_path: Path, n: int) -> list[int]:
    past = datetime.now(UTC) - timedelta(days=1)
    ids = []
    with ScheduleManager(SchedulerConfig(database_url=db), clock=lambda: past) as m:
        m.init_db()
        for i in range(n):
            video = tmp_path / f"due-{len(list(tmp_path.glob('due-*')))}-{i}.mp4"
            video.write_bytes(unique_bytes(200_000))
            ids.append(m.schedule_video(video, "short", metadata=VideoMetadata(title="Due")).id)
    return ids


def test_processor_job_uploads_and_skips_while_another_run_holds_the_lock(
    tmp_path: Path, db_file: str
) -> None:
    ids = _book_due(db_file, tmp_path, 2)
    result = _run("processor_job.py", "--fake-youtube", cwd=tmp_path, db=db_file)
    assert result.returncode == 0, result.stderr
    assert "run ok: claimed 2, uploaded 2, failed 0" in result.stderr
    assert "FakeYouTube received 2 video(s)" in result.stderr
    with _manager(db_file) as m:
        done = [m.get(i) for i in ids]
    assert {s.status.value for s in done} == {"completed"}
    assert len({s.youtube_video_id for s in done}) == 2

    (later,) = _book_due(db_file, tmp_path, 1)
    db = Database(create_engine(db_file), lock_timeout=5.0)
    try:
        with named_lock(db, _lock_name(db_file)) as got:
            assert got
            skipped = _run("processor_job.py", "--fake-youtube", cwd=tmp_path, db=db_file)
    finally:
        db.dispose()
    assert skipped.returncode == 0, skipped.stderr
    assert "SKIPPED (previous run still in progress)" in skipped.stderr
    with _manager(db_file) as m:
        assert m.get(later).status.value == "scheduled"
        (run,) = [r for r in m.processor_runs(limit=1)]
    assert run.outcome == "skipped"


def test_multi_channel_shares_one_project_quota(tmp_path: Path, db_file: str) -> None:
    result = _run("multi_channel.py", "--database-url", db_file, cwd=tmp_path, db="sqlite://")
    assert result.returncode == 0, result.stderr
    assert "korean: 6 of 6 uploaded" in result.stdout
    assert "japanese: 6 of 6 uploaded" in result.stdout
    used = [int(n) for n in re.findall(r"project used (\d+) of 6 uploads", result.stdout)]
    assert sum(used) == 12
    assert all(n <= 6 for n in used)
    with _manager(db_file) as m:
        rows = m.list_schedules()
    assert {s.channel_id for s in rows} == {"korean", "japanese"}
    assert {s.api_project for s in rows} == {"langflix-multi"}
    assert {s.status.value for s in rows} == {"completed"}
    # The project quota, not the channels, decided the quota days: at most 6 uploads per day
    # across both channels, and the two channels share at least one day.
    per_day: dict[object, set[str]] = {}
    counts: dict[object, int] = {}
    for s in rows:
        per_day.setdefault(s.quota_date, set()).add(s.channel_id)
        counts[s.quota_date] = counts.get(s.quota_date, 0) + 1
    assert max(counts.values()) <= 6
    assert any(len(channels) == 2 for channels in per_day.values())
