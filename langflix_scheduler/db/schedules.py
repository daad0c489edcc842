"""Reads and locks of ``youtube_schedules`` rows by id (ORM rows, detached or locked)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..domain import UploadStatus
from .models import Schedule
from .types import Filter

_SCHEDULED = UploadStatus.SCHEDULED.value

__all__ = [
    "LEASE_CLEARED",
    "clear_lease",
    "lock_matching",
    "lock_schedule",
    "of_channel_publishing_before",
    "of_project_before_quota_day",
    "page_after",
    "peek_schedule",
    "read_schedules",
    "waiting_before",
]

#: Column values of a row no worker holds (for Core ``UPDATE ... VALUES``).
LEASE_CLEARED: dict[str, None] = {"lease_owner": None, "lease_expires_at": None}


def peek_schedule(session: Session, schedule_id: int) -> Schedule | None:
    """The row, detached from ``session`` (no lock), or None."""
    row = session.get(Schedule, schedule_id)
    if row is not None:
        session.expunge(row)
    return row


def lock_schedule(session: Session, schedule_id: int) -> Schedule | None:
    """The row, locked ``FOR UPDATE`` by this transaction, or None."""
    return session.execute(
        select(Schedule).where(Schedule.id == schedule_id).with_for_update()
    ).scalar_one_or_none()


def read_schedules(session: Session, ids: Iterable[int]) -> dict[int, Schedule]:
    """The rows of ``ids`` that exist, detached, by id."""
    rows = list(session.execute(select(Schedule).where(Schedule.id.in_(list(ids)))).scalars())
    for r in rows:
        session.expunge(r)
    return {r.id: r for r in rows}


def clear_lease(row: Schedule) -> None:
    """No worker holds ``row`` any more (its lease owner and expiry are cleared)."""
    row.lease_owner = None
    row.lease_expires_at = None


# -- deferral: predicates and pages -----------------------------------------------------------


def of_project_before_quota_day(api_project: str, quota_date: date) -> Filter:
    """Rows of ``api_project`` planned for a quota day before ``quota_date``."""
    return and_(Schedule.api_project == api_project, Schedule.quota_date < quota_date)


def of_channel_publishing_before(channel_id: str, instant: datetime) -> Filter:
    """Rows of ``channel_id`` publishing before ``instant``."""
    return and_(Schedule.channel_id == channel_id, Schedule.scheduled_publish_time < instant)


def waiting_before(where: Filter, until: datetime) -> Filter:
    """``scheduled`` rows matching ``where`` not already waiting until ``until`` or later."""
    return and_(
        where,
        Schedule.upload_status == _SCHEDULED,
        or_(Schedule.next_attempt_at.is_(None), Schedule.next_attempt_at < until),
    )


def page_after(session: Session, where: Filter, after_id: int, limit: int) -> list[Schedule]:
    """Up to ``limit`` rows matching ``where`` with id above ``after_id``, by id, detached."""
    rows = list(
        session.execute(
            select(Schedule).where(where, Schedule.id > after_id).order_by(Schedule.id).limit(limit)
        ).scalars()
    )
    for r in rows:
        session.expunge(r)
    return rows


def lock_matching(session: Session, ids: Iterable[int], where: Filter) -> list[Schedule]:
    """The rows of ``ids`` that still match ``where``, locked ``FOR UPDATE``, by id."""
    return list(
        session.execute(
            select(Schedule)
            .where(Schedule.id.in_(list(ids)), where)
            .order_by(Schedule.id)
            .with_for_update()
        ).scalars()
    )
