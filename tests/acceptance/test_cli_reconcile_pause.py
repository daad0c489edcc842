"""``reconcile --json`` and a paused channel in ``status`` / ``process`` / ``auth --check``.

``reconcile`` runs in this process (``cli.main``) with the channel's YouTube client replaced by
a ``MemoryVideoClient``; the pause tests run the CLI as a subprocess, ``auth --check`` against a
``FakeYouTube`` (SQLite only, like the other ``auth --check`` tests).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler import ScheduleManager, SchedulerConfig
from langflix_scheduler.cli import _cmd_reconcile
from langflix_scheduler.cli._app import main
from langflix_scheduler.db import channels as channels_db
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.memory_videos import MemoryVideoClient

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


def _reconcile(
    capsys: pytest.CaptureFixture[str], db_url: str, *args: str
) -> tuple[int, dict[str, Any]]:
    code = main(["--database-url", db_url, "--channel", "main", "reconcile", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_reconcile_json_reports_then_applies(
    manager: ScheduleManager,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key in [k for k in os.environ if k.startswith("LANGFLIX_SCHEDULER_")]:
        monkeypatch.delenv(key)
    video = tmp_path / "lesson.mp4"
    video.write_bytes(b"0" * 2048)
    when = manager.now() + timedelta(days=1)
    booked = manager.schedule_video(video, "short", preferred_time=when, metadata={"title": "L1"})
    with manager.database.connection("test") as conn:
        conn.exec_driver_sql(
            "UPDATE youtube_schedules SET upload_status = 'needs_review' WHERE id = ?"
            if manager.database.dialect == "sqlite"
            else "UPDATE youtube_schedules SET upload_status = 'needs_review' WHERE id = %s",
            (booked.id,),
        )
    yt = MemoryVideoClient()
    yt.add("vid1", title="L1", publish_at=booked.scheduled_publish_time, uploaded_at=manager.now())
    monkeypatch.setattr(_cmd_reconcile, "_video_client", lambda *_a: yt)

    code, report = _reconcile(capsys, db_url)
    assert code == 1
    assert report["clean"] is False
    assert report["unfixed"] == 1
    assert report["api_calls"] == 2
    (found,) = report["unrecorded"]
    assert (found["video_id"], found["state"], found["candidates"]) == (
        "vid1",
        "matched",
        [booked.id],
    )

    code, report = _reconcile(capsys, db_url, "--apply")
    assert code == 0
    assert report["applied"] is True
    assert report["unrecorded"][0]["state"] == "attached"
    assert manager.get(booked.id).youtube_video_id == "vid1"
    assert manager.recalculate_quota().corrections == ()


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
