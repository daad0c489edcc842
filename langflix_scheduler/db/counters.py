"""Counter rows: which ``youtube_daily_limits`` column counts each video type, and the reads a
recount (``ScheduleManager.recalculate_quota``) rebuilds the counters from."""

from __future__ import annotations

from datetime import date
from types import MappingProxyType
from typing import Any

from sqlalchemy import and_, literal, or_, select
from sqlalchemy.orm import Session

from ..domain import VideoType
from .models import DailyLimit, QuotaUsage, Schedule
from .types import Filter

__all__ = ["COUNT_COLUMN", "count_column", "existing_counter_keys", "recount_rows"]

#: The day-count column of each video type.
COUNT_COLUMN = MappingProxyType({VideoType.FINAL: "final_count", VideoType.SHORT: "short_count"})


def count_column(video_type: VideoType | str) -> str:
    """The ``youtube_daily_limits`` column that counts ``video_type``."""
    return COUNT_COLUMN[VideoType(video_type)]


def _in_range(column: Any, start: date | None, end: date | None) -> Filter:
    conds = []
    if start is not None:
        conds.append(column >= start)
    if end is not None:
        conds.append(column <= end)
    return and_(*conds) if conds else literal(True)


def existing_counter_keys(
    session: Session, start: date | None, end: date | None
) -> tuple[set[tuple[str, date]], set[tuple[str, date, str]]]:
    """The keys of the counter rows in [start, end] (inclusive; None: open): channel-day rows
    ``(channel, publish_date)`` and quota rows ``(api_project, quota_date, bucket)``."""
    days = {
        (r.channel_id, r.publish_date)
        for r in session.execute(
            select(DailyLimit.channel_id, DailyLimit.publish_date).where(
                _in_range(DailyLimit.publish_date, start, end)
            )
        )
    }
    quota = {
        (r.api_project, r.quota_date, r.bucket)
        for r in session.execute(
            select(QuotaUsage.api_project, QuotaUsage.quota_date, QuotaUsage.bucket).where(
                _in_range(QuotaUsage.quota_date, start, end)
            )
        )
    }
    return days, quota


def recount_rows(session: Session, start: date | None, end: date | None) -> list[Any]:
    """What the counters of [start, end] are recounted from: per schedule publishing or
    planned for a quota day in the range, ``(channel_id, publish_date, video_type, slot_key,
    api_project, quota_date, upload_status, reserved_quota)``."""
    return list(
        session.execute(
            select(
                Schedule.channel_id,
                Schedule.publish_date,
                Schedule.video_type,
                Schedule.slot_key,
                Schedule.api_project,
                Schedule.quota_date,
                Schedule.upload_status,
                Schedule.reserved_quota,
            ).where(
                or_(
                    _in_range(Schedule.publish_date, start, end),
                    _in_range(Schedule.quota_date, start, end),
                )
            )
        ).all()
    )
