"""Leases on ``youtube_schedules`` rows: fenced writes, forward-only heartbeats and progress,
and the rescue of expired leases.

Fence: a write of an attempt matches only ``id = :id AND lease_owner = :token AND
upload_status = 'uploading'``; a worker whose lease was taken over changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, and_, case, literal, or_, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..domain import UploadStatus
from .models import Schedule
from .schedules import LEASE_CLEARED
from .statements import latest

__all__ = [
    "expired_leases",
    "fenced_update",
    "lease_values",
    "progress_values",
    "rescue_update",
]

_UPLOADING = UploadStatus.UPLOADING.value
_SCHEDULED = UploadStatus.SCHEDULED.value


def fenced_update(schedule_id: int, token: str, values: Mapping[str, Any]) -> Any:
    """``UPDATE`` of one schedule that only matches while ``token`` holds its lease."""
    fence = and_(
        Schedule.id == schedule_id,
        Schedule.lease_owner == token,
        Schedule.upload_status == _UPLOADING,
    )
    return update(Schedule).where(fence).values(**values)


def lease_values(now: datetime, lease: timedelta) -> dict[str, Any]:
    """Extend the lease to ``now + lease``. Only ever forward: the run thread's heartbeat and
    the upload thread's progress write race, and the one that read the clock first may commit
    last."""
    return {
        "lease_expires_at": latest(Schedule.lease_expires_at, now + lease),
        "heartbeat_at": latest(Schedule.heartbeat_at, now),
        "updated_at": latest(Schedule.updated_at, now),
    }


def progress_values(uri: str | None, sent: int, total: int | None) -> dict[str, Any]:
    """Store progress of the session the row currently stores, only upwards: an out-of-order
    report (or a heartbeat carrying an older snapshot) never lowers it."""
    same_session: ColumnElement[bool] = (
        true() if uri is None else Schedule.upload_session_uri == uri
    )
    sent_value = literal(sent, BigInteger())
    values: dict[str, Any] = {
        "bytes_uploaded": case(
            (and_(same_session, Schedule.bytes_uploaded < sent_value), sent_value),
            else_=Schedule.bytes_uploaded,
        )
    }
    if total is not None:
        values["bytes_total"] = case(
            (same_session, literal(total, BigInteger())), else_=Schedule.bytes_total
        )
    return values


def _expired(now: datetime) -> ColumnElement[bool]:
    return or_(Schedule.lease_expires_at.is_(None), Schedule.lease_expires_at < now)


def expired_leases(session: Session, api_project: str, now: datetime, limit: int) -> list[Schedule]:
    """``uploading`` rows of ``api_project`` whose lease passed (detached), by id."""
    rows = list(
        session.execute(
            select(Schedule)
            .where(
                Schedule.api_project == api_project,
                Schedule.upload_status == _UPLOADING,
                _expired(now),
            )
            .order_by(Schedule.id)
            .limit(limit)
        ).scalars()
    )
    for r in rows:
        session.expunge(r)
    return rows


def rescue_update(
    schedule_id: int, owner: str | None, now: datetime, *, attempts: int, last_error: str
) -> Any:
    """Back to ``scheduled`` (one attempt counted), only while ``owner``'s lease is still the
    expired one."""
    expired = and_(
        Schedule.id == schedule_id,
        Schedule.upload_status == _UPLOADING,
        Schedule.lease_owner == owner if owner is not None else Schedule.lease_owner.is_(None),
        _expired(now),
    )
    return (
        update(Schedule)
        .where(expired)
        .values(
            upload_status=_SCHEDULED,
            attempts=attempts,
            **LEASE_CLEARED,
            next_attempt_at=None,
            last_error=last_error,
            updated_at=now,
        )
    )
