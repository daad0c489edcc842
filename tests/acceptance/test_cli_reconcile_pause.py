"""``reconcile --json`` and a paused channel in ``status`` / ``process`` / ``auth --check``.

The CLI runs as a subprocess against a ``FakeYouTube`` served by this test process, with token
files like the ones ``auth`` writes (``auth --check``: SQLite only, like its other tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler import ScheduleManager, SchedulerConfig
from langflix_scheduler.db import channels as channels_db
from langflix_scheduler.testing import FakeYouTube

from ._cli import CliResult

SQLITE_ONLY = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True, ids=["sqlite"])
SCOPES = [
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.force-ssl",
]


@pytest.fixture
def manager(db_url: str) -> Iterator[ScheduleManager]:
    with ScheduleManager(SchedulerConfig(database_url=db_url, channel="main")) as m:
        yield m


def _token_dir(tmp_path: Path, channel: str, *, expired: bool) -> Path:
    """A token file like the one `auth` writes (access token valid unless ``expired``)."""
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700, exist_ok=True)
    expiry = datetime.now(UTC) + (timedelta(hours=-1) if expired else timedelta(hours=1))
    path = directory / f"{channel}.json"
    path.write_text(
        json.dumps(
            {
                "token": "access-token",
                "refresh_token": f"refresh-{channel}-secret",
                "client_id": "client.apps.googleusercontent.com",
                "client_secret": "client-secret-value",
                "scopes": SCOPES,
                "expiry": expiry.replace(tzinfo=None).isoformat() + "Z",
            }
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return directory


def test_reconcile_json_against_fake_youtube(
    manager: ScheduleManager,
    run_cli: Callable[..., CliResult],
    youtube: FakeYouTube,
    tmp_path: Path,
) -> None:
    video = tmp_path / "lesson.mp4"
    video.write_bytes(b"0" * 2048)
    when = manager.now() + timedelta(days=1)
    booked = manager.schedule_video(video, "short", preferred_time=when, metadata={"title": "L1"})
    with manager.database.connection("test") as conn:
        mark = "?" if manager.database.dialect == "sqlite" else "%s"
        conn.exec_driver_sql(
            f"UPDATE youtube_schedules SET upload_status = 'needs_review' WHERE id = {mark}",
            (booked.id,),
        )
    found = youtube.add_channel_video("L1", privacy_status="private", publish_at=when)
    env = {
        "LANGFLIX_SCHEDULER_CHANNEL": "main",
        "LANGFLIX_SCHEDULER_TOKEN_DIR": str(_token_dir(tmp_path, "main", expired=False)),
        "LANGFLIX_SCHEDULER_API_ENDPOINT": youtube.api_endpoint,
    }

    text = run_cli("reconcile", env=env)
    assert text.code == 1, text.stderr
    assert "listed 1 upload(s)" in text.stderr
    assert "videos no schedule records" in text.stdout
    assert "1 finding(s) left unfixed; run with --apply" in text.stdout

    first = run_cli("reconcile", "--json", env=env)
    assert first.code == 1, first.stderr
    report = first.json()
    assert (report["clean"], report["unfixed"], report["applied"]) == (False, 1, False)
    (video_found,) = report["unrecorded"]
    assert (video_found["video_id"], video_found["state"], video_found["candidates"]) == (
        found.id,
        "matched",
        [booked.id],
    )

    second = run_cli("reconcile", "--apply", "--json", env=env)
    assert second.code == 0, second.stderr
    report = second.json()
    assert report["clean"] is True
    assert report["unrecorded"][0]["state"] == "attached"
    assert manager.get(booked.id).youtube_video_id == found.id
    # Every call YouTube charged is in the quota ledger.
    with manager.database.connection("read") as conn:
        ledger = conn.exec_driver_sql("SELECT SUM(cost) FROM youtube_api_calls").scalar()
    assert int(ledger) == sum(youtube.charged().values()) == 6  # 3 x (channels + playlist)
    assert manager.recalculate_quota().corrections == ()
    assert "secret" not in first.stdout + first.stderr + second.stdout + second.stderr


def _pause(manager: ScheduleManager, channel: str) -> None:
    manager.database.run_core(
        "pause",
        lambda c: channels_db.pause(
            c,
            manager.database.dialect,
            channel,
            at=datetime(2026, 1, 5, 12, tzinfo=UTC),
            reason="authorization failed: the refresh token was refused (invalid_grant)",
        ),
    )


@pytest.fixture
def youtube() -> Iterator[FakeYouTube]:
    with FakeYouTube() as fake:
        yield fake


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700)
    path = directory / "main.json"
    path.write_text(
        json.dumps(
            {
                "token": "old-access",
                "refresh_token": "refresh-main-secret",
                "client_id": "client.apps.googleusercontent.com",
                "client_secret": "client-secret-value",
                "scopes": SCOPES,
                "expiry": "2000-01-01T00:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return directory


@SQLITE_ONLY
def test_paused_channel_in_status_process_and_auth_check(
    manager: ScheduleManager,
    run_cli: Callable[..., CliResult],
    youtube: FakeYouTube,
    tokens: Path,
) -> None:
    _pause(manager, "main")
    env = {
        "LANGFLIX_SCHEDULER_CHANNEL": "main",
        "LANGFLIX_SCHEDULER_TOKEN_DIR": str(tokens),
        "LANGFLIX_SCHEDULER_API_ENDPOINT": youtube.api_endpoint,
        "LANGFLIX_SCHEDULER_TOKEN_URI": youtube.token_uri,
    }
    status = run_cli("status", "--json", env=env, check=True).json()
    (paused,) = status["paused_channels"]
    assert paused["channel"] == "main"
    assert "invalid_grant" in paused["reason"]
    assert paused["command"] == "langflix-scheduler auth --channel main"
    text = run_cli("status", env=env, check=True).stdout
    assert "channel main PAUSED" in text
    assert "langflix-scheduler auth --channel main" in text

    refused = run_cli("process", "--once", env=env)
    assert refused.code == 1
    assert "paused" in refused.stderr
    assert "auth --channel main" in refused.stderr

    checked = run_cli("auth", "--check", "--channel", "main", "--json", env=env)
    assert checked.code == 0, checked.stderr
    assert checked.json()["resumed_channels"] == ["main"]
    assert run_cli("status", "--json", env=env, check=True).json()["paused_channels"] == []
    assert manager.paused_channels() == []
