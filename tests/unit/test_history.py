"""history: the timeline's entries and the merge ``show ID`` reads (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from langflix_scheduler import history
from langflix_scheduler.db.timeline import TimelineEntry
from langflix_scheduler.errors import InvalidScheduleError
from langflix_scheduler.reports import ApiCallRecord, TimelineEvent

T = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def test_check_actor() -> None:
    assert history.check_actor(None) == "library"
    assert history.check_actor("alice") == "alice"
    for bad in ("", "   ", "x" * 129, 3):
        with pytest.raises(InvalidScheduleError):
            history.check_actor(bad)


def test_details_are_utc_to_the_second() -> None:
    seoul = timezone(timedelta(hours=9))
    entry = history.rescheduled(
        1, at=T, old=datetime(2026, 5, 5, 19, 0, tzinfo=seoul), new=T, actor="cli"
    )
    assert entry.detail == "2026-05-05 10:00:00 UTC -> 2026-05-04 09:00:00 UTC"
    retry = history.waiting(1, kind="retry", at=T, error="HTTP 503", next_at=T, worker="w")
    assert retry.detail == "HTTP 503; next attempt at 2026-05-04 09:00:00 UTC"
    assert history.attempt(1, at=T, number=2, worker="w", resuming=True).detail.startswith(
        "attempt 2 (resuming"
    )


def test_merge_keeps_written_order_and_fills_in_older_rows() -> None:
    written = [
        history.attempt(1, at=T, number=1, worker="w", resuming=False),
        history.waiting(1, kind="retry", at=T, error="e", next_at=None, worker="w"),
    ]
    call = ApiCallRecord(
        id=1,
        operation="videos.insert",
        bucket="uploads",
        cost=1,
        quota_date=date(2026, 5, 4),
        sent_at=T + timedelta(seconds=1),
        outcome="sent",
        worker_id="w",
    )
    merged = history.merge(
        written,
        created_at=T - timedelta(days=1),
        uploaded_at=T + timedelta(minutes=1),
        publish=T + timedelta(days=1),
        calls=[call],
    )
    assert [e.kind for e in merged] == ["booked", "attempt", "retry", "api_call", "uploaded"]
    assert merged[0] == TimelineEvent(
        at=T - timedelta(days=1),
        kind="booked",
        actor=None,
        detail="publish at 2026-05-05 09:00:00 UTC (from the schedule row)",
    )
    assert merged[3].detail == "videos.insert: 1 uploads (sent)"


def test_merge_does_not_duplicate_written_entries() -> None:
    written = [
        history.booked(1, at=T, publish=T, actor="cli"),
        TimelineEntry(schedule_id=1, at=T + timedelta(minutes=5), kind="uploaded", actor="w"),
    ]
    merged = history.merge(written, created_at=T, uploaded_at=T + timedelta(minutes=5), publish=T)
    assert [(e.kind, e.actor) for e in merged] == [("booked", "cli"), ("uploaded", "w")]
