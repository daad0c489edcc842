"""Reads that tell a booking what the table already holds for it (issue 9).

* :func:`holders`: the schedules of a channel that hold the request's idempotency key or its
  content fingerprint. Both are UNIQUE(channel_id, ...) columns, so this is two index lookups
  and at most two rows.
* :func:`at_slot`: the live schedule of a channel at one instant (UNIQUE(channel_id, slot_key)),
  to resolve a commit in doubt of a booking that has neither key nor fingerprint.
* :func:`known_sha256`: the SHA-256 stored for a file with the same path, size and mtime, so an
  unchanged file is not read again.

Each takes a ``Session`` and never commits; the caller owns the (read-only) transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .models import Schedule

__all__ = ["at_slot", "holders", "known_sha256"]


def holders(
    session: Session, channel: str, *, fingerprint_key: str | None, idempotency_key: str | None
) -> list[Schedule]:
    """Schedules of ``channel`` holding ``fingerprint_key`` or ``idempotency_key`` (detached)."""
    conds = []
    if fingerprint_key is not None:
        conds.append(Schedule.fingerprint_key == fingerprint_key)
    if idempotency_key is not None:
        conds.append(Schedule.idempotency_key == idempotency_key)
    if not conds:
        return []
    rows = list(
        session.execute(
            select(Schedule).where(Schedule.channel_id == channel, or_(*conds))
        ).scalars()
    )
    session.expunge_all()
    return rows


def at_slot(session: Session, channel: str, slot: datetime) -> Schedule | None:
    """The live schedule of ``channel`` at ``slot`` (detached), if any."""
    row = session.execute(
        select(Schedule).where(Schedule.channel_id == channel, Schedule.slot_key == slot)
    ).scalar_one_or_none()
    session.expunge_all()
    return row


def known_sha256(session: Session, path: str, size: int, mtime_ns: int) -> str | None:
    """The content hash stored with this exact file stat, or None.

    No index covers these columns (a full scan of ``youtube_schedules``); the booking path only
    asks for files large enough that reading them costs more than the scan.
    """
    return session.execute(
        select(Schedule.content_sha256)
        .where(
            Schedule.video_path == path,
            Schedule.file_size == size,
            Schedule.file_mtime_ns == mtime_ns,
            Schedule.content_sha256.is_not(None),
        )
        .limit(1)
    ).scalar_one_or_none()
