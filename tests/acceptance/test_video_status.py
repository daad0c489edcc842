"""``status`` shows what the checks after upload found (rejected, processing failed, mismatch,
held private, missing, deleted) with what to do; ``list`` and ``show`` show the video state.
Rows are put in those states with plain SQL (the processor's checks are tested in
tests/integration/test_video_checks.py); what is checked is what the CLI printed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler import ScheduleManager, SchedulerConfig, VideoMetadata
from tests.conftest import unique_bytes
from tests.integration.db_helpers import RawDB

from ._cli import CliResult

SQLITE_ONLY = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True, ids=["sqlite"])

STATES = {
    "rejected": "YouTube rejected the upload (reason: duplicate); fix the cause",
    "processing_failed": "YouTube could not process the video (reason: codec)",
    "mismatch": "YouTube holds privacy public, publishAt none; planned privacy private",
    "held_private": "still holds the video private: the API project may be locked private",
    "missing": "not found on YouTube: deleted, or the token belongs to another account",
    "deleted": "the video is no longer on YouTube",
}


def _book(db_url: str, tmp_path: Path, n: int) -> list[int]:
    past = datetime.now(UTC) - timedelta(days=2)
    ids = []
    with ScheduleManager(SchedulerConfig(database_url=db_url), clock=lambda: past) as manager:
        for i in range(n):
            video = tmp_path / f"video-{i}.mp4"
            video.write_bytes(unique_bytes(1000))
            booked = manager.schedule_video(
                video, "short", metadata=VideoMetadata(title=f"Lesson {i}")
            )
            ids.append(booked.id)
    return ids


@SQLITE_ONLY
def test_status_list_and_show_the_video_states(
    run_cli: Callable[..., CliResult], db_url: str, tmp_path: Path, raw_db: RawDB
) -> None:
    ids = dict(zip(STATES, _book(db_url, tmp_path, len(STATES)), strict=True))
    for n, (state, problem) in enumerate(STATES.items()):
        raw_db.execute(
            "UPDATE youtube_schedules SET upload_status = 'completed', reserved_quota = '{}', "
            "youtube_video_id = :v, video_state = :s, video_problem = :p WHERE id = :i",
            v=f"vid{n}",
            s=state,
            p=problem,
            i=ids[state],
        )
    data = run_cli("--json", "status", check=True).json()
    for state, problem in STATES.items():
        assert [s["id"] for s in data[state]] == [ids[state]], state
        assert data[state][0]["video_problem"] == problem
    human = run_cli("status", check=True)
    assert "after upload: 1 rejected, 1 processing failed, 1 mismatch, 1 held private, " in (
        human.stdout
    )
    assert "1 held private, 1 missing, 1 deleted" in human.stdout
    for problem in STATES.values():
        assert problem in human.stdout
    listed = run_cli("list", check=True)
    assert "on YouTube" in listed.stdout
    assert "held_private" in listed.stdout
    shown = run_cli("show", str(ids["rejected"]), check=True)
    assert "video_state" in shown.stdout
    assert "rejected" in shown.stdout


@SQLITE_ONLY
def test_status_shows_a_video_still_processing_after_the_last_check(
    run_cli: Callable[..., CliResult], db_url: str, tmp_path: Path, raw_db: RawDB
) -> None:
    stuck, busy = _book(db_url, tmp_path, 2)
    problem = "still processing on YouTube after 48 checks; no further automatic check"
    for sid, next_check in ((stuck, None), (busy, datetime.now(UTC) + timedelta(minutes=5))):
        raw_db.execute(
            "UPDATE youtube_schedules SET upload_status = 'completed', reserved_quota = '{}', "
            "youtube_video_id = :v, video_state = 'processing', video_problem = :p, "
            "next_check_at = :n WHERE id = :i",
            v=f"vid{sid}",
            p=problem if next_check is None else None,
            n=next_check,
            i=sid,
        )
    data = run_cli("--json", "status", check=True).json()
    assert [s["id"] for s in data["processing_stuck"]] == [stuck]
    human = run_cli("status", check=True)
    assert "1 processing stuck" in human.stdout
    assert "processing_stuck" in human.stdout
    assert problem in human.stdout
