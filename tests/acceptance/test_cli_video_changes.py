"""``reschedule``, ``cancel`` and ``update`` as subprocesses on uploaded schedules and on ones not
uploaded yet; ``status`` and ``show`` listing a pending change of plan (issue 12, item 3).

Setup (an uploaded schedule, a change whose answer was lost) uses the library with a stub
uploader and ``MemoryVideoClient``; what is checked is what the CLI printed, its exit code and
what the database holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler import ChangePendingError, ScheduleManager, SchedulerConfig
from langflix_scheduler.errors import TransientUploadError
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.media import write_mp4
from langflix_scheduler.testing.memory_videos import MemoryVideoClient
from tests.integration._processor_support import StubUploader

from ._cli import CliResult

SQLITE_ONLY = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True, ids=["sqlite"])


@pytest.fixture
def manager(db_url: str) -> Iterator[ScheduleManager]:
    with ScheduleManager(SchedulerConfig(database_url=db_url)) as m:
        yield m


@pytest.fixture
def video(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        return write_mp4(
            tmp_path / f"{name}.mp4", width=1920, height=1080, seconds=600, payload=name.encode()
        )

    return make


def _uploaded(manager: ScheduleManager, path: Path) -> tuple[int, MemoryVideoClient]:
    """A schedule 40 minutes ahead, uploaded (stub), its video private on a memory channel."""
    when = (datetime.now(UTC) + timedelta(minutes=40)).replace(microsecond=0)
    sid = manager.book(path, "final", preferred_time=when).schedule.id
    with UploadProcessor(manager, StubUploader()) as processor:
        processor.run_once()
    s = manager.get(sid)
    assert s.youtube_video_id
    client = MemoryVideoClient()
    client.add(s.youtube_video_id, publish_at=when)
    return sid, client


@SQLITE_ONLY
def test_update_and_reschedule_of_a_schedule_not_uploaded_are_local(
    run_cli: Callable[..., CliResult], video: Callable[[str], Path]
) -> None:
    sid = run_cli("--json", "schedule", str(video("a")), "--type", "final", check=True).json()["id"]
    result = run_cli("update", str(sid), "--title", "Better title", "--tags", "a,b")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"updated #{sid} final 'Better title' for ")
    shown = run_cli("--json", "show", str(sid), check=True).json()
    assert shown["metadata"]["tags"] == ["a", "b"]
    assert shown["pending_changes"] == []

    nothing = run_cli("update", str(sid))
    assert nothing.code == 2
    assert "give at least one of --title" in nothing.stderr

    bad = run_cli("update", str(sid), "--title", "<b>")
    assert bad.code == 1
    assert "must not contain '<' or '>'" in bad.stderr


@SQLITE_ONLY
def test_an_uploaded_schedule_needs_the_channels_token(
    run_cli: Callable[..., CliResult],
    manager: ScheduleManager,
    video: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    sid, _client = _uploaded(manager, video("b"))
    at = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    result = run_cli("reschedule", str(sid), "--at", at, "--token-dir", str(tmp_path / "none"))
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert "auth" in result.stderr  # no token: run `auth` first
    assert manager.get(sid).scheduled_publish_time < datetime.now(UTC) + timedelta(hours=1)


@SQLITE_ONLY
def test_status_and_show_list_a_pending_change(
    run_cli: Callable[..., CliResult], manager: ScheduleManager, video: Callable[[str], Path]
) -> None:
    sid, client = _uploaded(manager, video("c"))
    client.fail_next("videos.update", TransientUploadError("reset", reason="reset"))
    with pytest.raises(ChangePendingError):
        manager.reschedule(sid, datetime.now(UTC) + timedelta(hours=3), videos=client)

    status = run_cli("status")
    assert status.code == 0, status.stderr
    assert "1 change(s) of plan pending on YouTube" in status.stdout
    assert "reschedule" in status.stdout

    shown = run_cli("--json", "show", str(sid), check=True).json()
    (pending,) = shown["pending_changes"]
    assert (pending["kind"], pending["state"], pending["schedule_id"]) == (
        "reschedule",
        "pending",
        sid,
    )
    assert (
        run_cli("--json", "status", check=True).json()["pending_changes"][0]["id"] == pending["id"]
    )


@SQLITE_ONLY
def test_reschedule_takes_the_time_as_argument_or_at(
    run_cli: Callable[..., CliResult], video: Callable[[str], Path]
) -> None:
    sid = run_cli("--json", "schedule", str(video("d")), "--type", "final", check=True).json()["id"]
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    moved = run_cli("--json", "reschedule", str(sid), at.isoformat(), check=True).json()
    assert moved["scheduled_publish_time"] == at.isoformat()
    both = run_cli("reschedule", str(sid), at.isoformat(), "--at", at.isoformat())
    assert both.code == 2
    assert "give the new publish time once" in both.stderr
    assert run_cli("reschedule", str(sid)).code == 2


@pytest.fixture
def youtube_env(tmp_path: Path) -> Iterator[tuple[FakeYouTube, dict[str, str]]]:
    """A FakeYouTube served by this process and the environment that points the CLI at it,
    with a token file for channel ``default`` like the one ``auth`` writes."""
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
    with FakeYouTube() as fake:
        yield (
            fake,
            {
                "LANGFLIX_SCHEDULER_TOKEN_DIR": str(tokens),
                "LANGFLIX_SCHEDULER_API_ENDPOINT": fake.api_endpoint,
            },
        )


@SQLITE_ONLY
def test_reschedule_and_cancel_an_uploaded_video_on_youtube(
    run_cli: Callable[..., CliResult],
    manager: ScheduleManager,
    video: Callable[[str], Path],
    youtube_env: tuple[FakeYouTube, dict[str, str]],
) -> None:
    fake, env = youtube_env
    when = (datetime.now(UTC) + timedelta(minutes=40)).replace(microsecond=0)
    sid = manager.book(video("e"), "final", preferred_time=when).schedule.id
    run_cli("process", "--once", env=env, check=True)
    (vid,) = fake.videos

    new = (datetime.now(UTC) + timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    moved = run_cli("reschedule", str(sid), new.isoformat(), env=env)
    assert moved.code == 0, moved.stderr
    assert moved.stdout.startswith(f"rescheduled on YouTube #{sid} final 'e' for ")
    assert fake.videos[vid].status["publishAt"].startswith(new.strftime("%Y-%m-%dT%H:%M"))
    shown = run_cli("--json", "show", str(sid), check=True).json()
    assert (shown["video_state"], shown["youtube_publish_at"]) == ("ready", new.isoformat())

    cancelled = run_cli("--json", "cancel", str(sid), "--delete", env=env)
    assert cancelled.code == 0, cancelled.stderr
    assert (cancelled.json()["status"], cancelled.json()["video_state"]) == (
        "cancelled",
        "deleted",
    )
    assert vid in fake.deleted_videos
    again = run_cli("cancel", str(sid), env=env)
    assert again.code == 1
    assert "cannot cancel schedule" in again.stderr
    assert manager.recalculate_quota().corrections == ()
