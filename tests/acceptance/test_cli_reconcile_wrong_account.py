"""``reconcile --apply`` with a token that sees none of the channel's recorded videos (a token of
another Google account): nothing is marked gone, the warning says why, the exit status is 1."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from langflix_scheduler import ScheduleManager
from langflix_scheduler.testing import FakeYouTube

from ._cli import CliResult
from .test_cli_reconcile_pause import _token_dir, manager, youtube  # noqa: F401


def test_reconcile_apply_refuses_when_no_recorded_video_is_found(
    manager: ScheduleManager,  # noqa: F811
    run_cli: Callable[..., CliResult],
    youtube: FakeYouTube,  # noqa: F811
    tmp_path: Path,
) -> None:
    ids = []
    for n in range(2):
        video = tmp_path / f"lesson{n}.mp4"
        video.write_bytes(bytes([n]) * 2048)
        when = manager.now() + timedelta(days=1, minutes=n)
        ids.append(manager.schedule_video(video, "short", preferred_time=when).id)
    mark = "?" if manager.database.dialect == "sqlite" else "%s"
    with manager.database.connection("test") as conn:
        for n, sid in enumerate(ids):
            conn.exec_driver_sql(
                "UPDATE youtube_schedules SET upload_status = 'completed', reserved_quota = '{}',"
                f" youtube_video_id = {mark}, video_state = 'ready' WHERE id = {mark}",
                (f"vidOTHER{n}", sid),
            )
    env = {
        "LANGFLIX_SCHEDULER_CHANNEL": "main",
        "LANGFLIX_SCHEDULER_TOKEN_DIR": str(_token_dir(tmp_path, "main", expired=False)),
        "LANGFLIX_SCHEDULER_API_ENDPOINT": youtube.api_endpoint,
    }

    applied = run_cli("reconcile", "--apply", "--json", env=env)

    assert applied.code == 1, applied.stderr
    report = applied.json()
    assert "another account" in report["warning"]
    assert [g["marked"] for g in report["gone"]] == [False, False]
    for sid in ids:
        assert str(manager.get(sid).video_state) == "ready"
    text = run_cli("reconcile", "--apply", env=env)
    assert text.code == 1
    assert "warning: videos.list found none of the channel's 2 recorded videos" in text.stdout
