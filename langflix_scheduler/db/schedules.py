"""Reads and locks of ``youtube_schedules`` rows by id (ORM rows, detached or locked)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Schedule

__all__ = ["LEASE_CLEARED", "clear_lease", "lock_schedule", "peek_schedule", "read_schedules"]

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
