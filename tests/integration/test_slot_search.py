"""Slot search reads the horizon in ONE query, and stays exact when that query's window is short.

``get_next_available_slot`` (and ``schedule_video`` without a preferred time) read booked
instants only for the first few channel days that still have room; when every one of those days
is unusable (here: their quota days are spent) the search reads the whole horizon in a second
query. Both paths must give the same answer. Runs on every engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from langflix_scheduler.domain import VideoType
from langflix_scheduler.manager import _SNAPSHOT_WINDOW_DAYS, ScheduleManager
from langflix_scheduler.quota import QuotaPolicy

MakeManager = Callable[..., ScheduleManager]
VideoFile = Callable[..., Path]
TXN_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def statements(mgr: ScheduleManager) -> Iterator[list[str]]:
    """Collect the statements (not transaction control) sent while the block runs."""
    seen: list[str] = []

    def listener(*args: Any) -> None:
        sql = str(args[2]).lstrip()
        if not sql.upper().startswith(TXN_CONTROL):
            seen.append(sql)

    engine = mgr._db.engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_next_slot_is_one_query_on_a_busy_channel(
    make_manager: MakeManager, video_file: VideoFile
) -> None:
    mgr = make_manager(timezone="UTC")
    for _ in range(6 * 5):  # six channel days full of shorts (5 a day)
        mgr.schedule_video(video_file(), "short")
    with statements(mgr) as seen:
        slot = mgr.get_next_available_slot("short")
    assert slot == datetime(2026, 5, 10, 8, 0, tzinfo=UTC)
    assert len(seen) == 1, seen
    assert seen[0].upper().startswith("SELECT")


def test_search_beyond_the_window_reads_the_whole_horizon(
    make_manager: MakeManager, video_file: VideoFile
) -> None:
    # One upload per quota day: each channel day (UTC) gets one short, then its quota day
    # (Pacific, the same date for these slots) is spent, so every day has room but no quota.
    policy = QuotaPolicy(
        name="one-a-day", buckets={"uploads": 1}, costs={"videos.insert": ("uploads", 1)}
    )
    mgr = make_manager(timezone="UTC", quota_policy=policy)
    days = _SNAPSHOT_WINDOW_DAYS + 3
    booked = [mgr.schedule_video(video_file(), "short") for _ in range(days)]
    assert len({b.publish_date for b in booked}) == days
    with statements(mgr) as seen:
        slot = mgr.get_next_available_slot("short")
    assert len(seen) == 2, "the windowed read, then the whole horizon"
    assert slot == datetime(2026, 5, 4 + days, 8, 0, tzinfo=UTC)
    whole = mgr._read_snapshot(
        "default",
        VideoType.SHORT,
        mgr.now() + mgr.config.min_lead_time,
        mgr.now() + mgr.config.horizon,
        windowed=False,
    )
    assert whole.known_until is None
    nxt = mgr.schedule_video(video_file(), "short")
    assert nxt.scheduled_publish_time == slot
