"""The manager's reads of schedules, processor runs and counters (no locks, no writes).

Each takes a ``Session`` and returns ORM rows attached to it (the caller turns them into domain
objects inside the same read-only transaction); the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .due import due_condition
from .models import DailyLimit, ProcessorRun, QuotaUsage, Schedule

__all__ = ["day_counter", "due", "processor_runs", "quota_counters", "schedules"]


def schedules(
    session: Session,
    *,
    statuses: Sequence[str] | None,
    channel: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    video_states: Sequence[str] | None = None,
) -> list[Schedule]:
    """Schedules ordered by publish time (then id), filtered by status, channel,
    [start, end) of the publish time and video state, at most ``limit`` (None: any)."""
    stmt = select(Schedule).order_by(Schedule.scheduled_publish_time, Schedule.id)
    if statuses is not None:
        stmt = stmt.where(Schedule.upload_status.in_(list(statuses)))
    if video_states is not None:
        stmt = stmt.where(Schedule.video_state.in_(list(video_states)))
    if channel is not None:
        stmt = stmt.where(Schedule.channel_id == channel)
    if start is not None:
        stmt = stmt.where(Schedule.scheduled_publish_time >= start)
    if end is not None:
        stmt = stmt.where(Schedule.scheduled_publish_time < end)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.execute(stmt).scalars())


def due(
    session: Session,
    *,
    now: datetime,
    horizon: datetime,
    api_project: str | None,
    channels: Iterable[str] | None,
) -> list[Schedule]:
    """The due schedules (:func:`langflix_scheduler.db.due.due_condition`), by publish time."""
    stmt = (
        select(Schedule)
        .where(
            due_condition(
                Schedule, now=now, horizon=horizon, api_project=api_project, channels=channels
            )
        )
        .order_by(Schedule.scheduled_publish_time, Schedule.id)
    )
    return list(session.execute(stmt).scalars())


def processor_runs(session: Session, limit: int) -> list[ProcessorRun]:
    """The ``limit`` most recent ``processor_runs`` rows, newest first."""
    stmt = (
        select(ProcessorRun)
        .order_by(ProcessorRun.started_at.desc(), ProcessorRun.id.desc())
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def day_counter(session: Session, channel: str, day: date) -> DailyLimit | None:
    """The channel-day counter row, if any."""
    return session.get(DailyLimit, (channel, day))


def quota_counters(
    session: Session, api_project: str, quota_dates: Iterable[date]
) -> dict[tuple[date, str], QuotaUsage]:
    """The quota counter rows of ``api_project`` on ``quota_dates``, by (quota day, bucket)."""
    rows = session.execute(
        select(QuotaUsage).where(
            QuotaUsage.api_project == api_project,
            QuotaUsage.quota_date.in_(list(quota_dates)),
        )
    ).scalars()
    return {(r.quota_date, r.bucket): r for r in rows}
