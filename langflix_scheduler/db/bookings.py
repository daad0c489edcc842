"""Booking statements: the reads that tell a booking what the table already holds for it
(issue 9) and the writes of the booking hot path.

* :func:`holders`: the schedules of a channel that hold the request's idempotency key or its
  content fingerprint. Both are UNIQUE(channel_id, ...) columns, so this is two index lookups
  and at most two rows.
* :func:`at_slot`: the live schedule of a channel at one instant (UNIQUE(channel_id, slot_key)),
  to resolve a commit in doubt of a booking that has neither key nor fingerprint.
* :func:`known_sha256`: the SHA-256 stored for a file with the same path, size and mtime, so an
  unchanged file is not read again.

* :func:`fingerprint_holder`: the schedule of a channel that holds a content fingerprint.
* :func:`taken_among`: which candidate instants of a channel are booked (index lookups).
* :func:`insert_schedule`: the INSERT of a new schedule, its unique-key refusals named
  (:class:`SlotTaken`, :class:`KeyHeld`); :func:`flush_schedule` does the same for an ORM row
  that was moved or put back.

Each takes a ``Session`` or ``Connection`` and never commits; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .._time import ensure_aware
from .models import Schedule

__all__ = [
    "KeyHeld",
    "SlotTaken",
    "at_slot",
    "fingerprint_holder",
    "flush_schedule",
    "holders",
    "insert_schedule",
    "known_sha256",
    "taken_among",
]

_SCHEDULES: Table = Schedule.__table__  # type: ignore[assignment]
# Built once (no state, no connection): the booking hot path runs on Core (docs/performance.md).
_INSERT_SCHEDULE = insert(_SCHEDULES)
_SLOT_TAKEN = select(_SCHEDULES.c.id).where(
    _SCHEDULES.c.channel_id == bindparam("channel"), _SCHEDULES.c.slot_key == bindparam("slot")
)


class SlotTaken(Exception):
    """The slot was booked by someone else (UNIQUE(channel_id, slot_key) or an in-lock check)."""


class KeyHeld(Exception):
    """The content fingerprint or idempotency key is held by another row (unique per channel)."""


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


def fingerprint_holder(session: Session, channel: str, key: str) -> tuple[int, str] | None:
    """``(id, upload_status)`` of the schedule of ``channel`` holding fingerprint ``key``."""
    row = session.execute(
        select(Schedule.id, Schedule.upload_status).where(
            Schedule.channel_id == channel, Schedule.fingerprint_key == key
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def taken_among(conn: Connection, channel: str, slots: Sequence[datetime]) -> set[datetime]:
    """Which of ``slots`` are booked on ``channel``: an index lookup on (channel, slot_key).

    Only the candidate instants are asked for, so the cost does not grow with the number of
    schedules on the day (an unlimited day may hold thousands).
    """
    if not slots:
        return set()
    if len(slots) == 1:
        found = conn.execute(_SLOT_TAKEN, {"channel": channel, "slot": slots[0]})
        return {slots[0]} if found.first() is not None else set()
    rows = conn.execute(
        select(_SCHEDULES.c.slot_key).where(
            _SCHEDULES.c.channel_id == channel, _SCHEDULES.c.slot_key.in_(list(slots))
        )
    )
    booked = {ensure_aware(r[0]) for r in rows if r[0] is not None}
    return {s for s in slots if s in booked}


def insert_schedule(conn: Connection, values: Mapping[str, Any]) -> int | None:
    """Insert a schedule row and return its id (None if the driver did not report it).

    Raises:
        KeyHeld: UNIQUE(channel_id, fingerprint_key / idempotency_key) refused it.
        SlotTaken: UNIQUE(channel_id, slot_key) refused it.
    """
    try:
        result = conn.execute(_INSERT_SCHEDULE, dict(values))
    except IntegrityError as exc:
        if "fingerprint_key" in str(exc.orig) or "idempotency_key" in str(exc.orig):
            raise KeyHeld(str(exc.orig)) from exc
        if "slot_key" in str(exc.orig):
            raise SlotTaken(str(values["slot_key"])) from exc
        raise
    (new_id,) = result.inserted_primary_key or (None,)
    return None if new_id is None else int(new_id)


def flush_schedule(session: Session, slot: datetime) -> None:
    """Flush a moved or re-booked schedule row.

    Raises:
        KeyHeld: UNIQUE(channel_id, fingerprint_key) refused it.
        SlotTaken: another unique key (``slot``'s) refused it.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        if "fingerprint_key" in str(exc.orig):
            raise KeyHeld(str(exc.orig)) from exc
        raise SlotTaken(str(slot)) from exc
