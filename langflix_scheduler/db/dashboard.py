"""Read-only Core statements for the dashboard, the metrics and other reports.

Every SQL statement the web dashboard (:mod:`langflix_scheduler.web`) and the metrics need lives
here; :class:`~langflix_scheduler.manager.ScheduleManager` exposes them through thin public
methods (``calendar``, ``quota_usage``, ``api_calls``, ``known_names``, ``stored_totals``). No
statement here takes a lock: each runs in one short read transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, and_, func, select
from sqlalchemy.engine import Connection

from .models import ApiCall, ProcessorRun, QuotaUsage, Schedule
from .statements import CHANNELS

__all__ = [
    "api_call_totals",
    "api_calls_of_schedule",
    "calendar_rows",
    "due_rows",
    "known_channels",
    "known_projects",
    "quota_rows",
    "run_totals",
    "status_counts",
]

_S: Table = Schedule.__table__  # type: ignore[assignment]
_Q: Table = QuotaUsage.__table__  # type: ignore[assignment]
_R: Table = ProcessorRun.__table__  # type: ignore[assignment]
_A: Table = ApiCall.__table__  # type: ignore[assignment]

# Built once: the columns the calendar shows (the title only, extracted by the database).
CALENDAR_COLUMNS = (
    "id",
    "video_type",
    "scheduled_publish_time",
    "upload_status",
    "bytes_uploaded",
    "bytes_total",
    "title",
    "next_attempt_at",
)
_CALENDAR = (
    select(
        _S.c.id,
        _S.c.video_type,
        _S.c.scheduled_publish_time,
        _S.c.upload_status,
        _S.c.bytes_uploaded,
        _S.c.bytes_total,
        _S.c.metadata["title"].as_string().label("title"),
        _S.c.next_attempt_at,
    )
    .where(_S.c.upload_status != "cancelled")
    .order_by(_S.c.scheduled_publish_time, _S.c.id)
)


def calendar_rows(conn: Connection, channel: str, start: datetime, end: datetime) -> list[Any]:
    """Schedules of ``channel`` (every status but ``cancelled``) publishing in [start, end), as
    tuples in :data:`CALENDAR_COLUMNS` order."""
    stmt = _CALENDAR.where(
        _S.c.channel_id == channel,
        _S.c.scheduled_publish_time >= start,
        _S.c.scheduled_publish_time < end,
    )
    return list(conn.execute(stmt).all())


def quota_rows(
    conn: Connection, start: date, end: date, api_project: str | None = None
) -> list[dict[str, Any]]:
    """Quota counter rows with ``start <= quota_date <= end`` (one project or all)."""
    stmt = (
        select(_Q.c.api_project, _Q.c.quota_date, _Q.c.bucket, _Q.c.reserved, _Q.c.used)
        .where(_Q.c.quota_date >= start, _Q.c.quota_date <= end)
        .order_by(_Q.c.api_project, _Q.c.quota_date, _Q.c.bucket)
    )
    if api_project is not None:
        stmt = stmt.where(_Q.c.api_project == api_project)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def api_calls_of_schedule(conn: Connection, schedule_id: int) -> list[dict[str, Any]]:
    """The quota ledger rows of one schedule, oldest first."""
    stmt = (
        select(
            _A.c.id,
            _A.c.operation,
            _A.c.bucket,
            _A.c.cost,
            _A.c.quota_date,
            _A.c.sent_at,
            _A.c.outcome,
            _A.c.worker_id,
        )
        .where(_A.c.schedule_id == schedule_id)
        .order_by(_A.c.sent_at, _A.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def known_channels(conn: Connection) -> list[str]:
    """Every channel that has schedules, sorted."""
    stmt = select(_S.c.channel_id).distinct().order_by(_S.c.channel_id)
    return [r[0] for r in conn.execute(stmt)]


def known_projects(conn: Connection) -> list[str]:
    """Every API project that has schedules or quota rows, sorted."""
    a = {r[0] for r in conn.execute(select(_S.c.api_project).distinct())}
    b = {r[0] for r in conn.execute(select(_Q.c.api_project).distinct())}
    return sorted(a | b)


def status_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """``(channel, status, count)`` of every schedule."""
    stmt = select(_S.c.channel_id, _S.c.upload_status, func.count()).group_by(
        _S.c.channel_id, _S.c.upload_status
    )
    return [(r[0], r[1], int(r[2])) for r in conn.execute(stmt)]


def run_totals(conn: Connection) -> list[dict[str, Any]]:
    """Per stored outcome: number of runs and the sums of their counters."""
    stmt = select(
        _R.c.outcome,
        func.count().label("runs"),
        *(
            func.coalesce(func.sum(_R.c[name]), 0).label(name)
            for name in ("claimed", "uploaded", "failed", "retried", "deferred", "rescued")
        ),
        func.coalesce(func.sum(_R.c.skipped_overlap), 0).label("skipped_overlap"),
    ).group_by(_R.c.outcome)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def api_call_totals(conn: Connection) -> list[dict[str, Any]]:
    """Per (api_project, operation, outcome): number of calls and quota units charged."""
    stmt = select(
        _A.c.api_project,
        _A.c.operation,
        _A.c.outcome,
        func.count().label("calls"),
        func.coalesce(func.sum(_A.c.cost), 0).label("cost"),
    ).group_by(_A.c.api_project, _A.c.operation, _A.c.outcome)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def due_rows(conn: Connection, before: datetime) -> list[tuple[datetime, datetime | None]]:
    """``(publish time, next_attempt_at)`` of ``scheduled`` rows publishing before ``before``,
    leaving out paused channels (their token was refused: nothing of theirs is due, as in
    :func:`langflix_scheduler.db.due.due_condition`)."""
    paused = select(CHANNELS.c.channel_id).where(CHANNELS.c.paused_at.is_not(None))
    stmt = select(_S.c.scheduled_publish_time, _S.c.next_attempt_at).where(
        and_(
            _S.c.upload_status == "scheduled",
            _S.c.scheduled_publish_time < before,
            _S.c.channel_id.not_in(paused),
        )
    )
    return [(r[0], r[1]) for r in conn.execute(stmt)]
