"""``youtube_video_changes``: changes of plan for uploaded videos (Core statements only).

A change is written ``pending`` in the transaction that moves the schedule locally, *before* its
API call; it ends ``applied``, ``failed`` or ``rolled_back``. Every end is fenced on
``state = 'pending'``, so of two finishers (the caller and a processor run recovering an expired
lease) exactly one wins. A pending change's ``lease_expires_at`` says until when its requester
may still be sending the call; after it, a processor run takes it over (:func:`take_over`).

Lock order: these rows come after the schedule row they belong to (see
:mod:`langflix_scheduler.ledger`); they are only read without locks or updated by id.
Every function takes a ``Connection`` and never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection

from .models import Schedule, VideoChange
from .statements import CHANNELS

__all__ = [
    "PENDING",
    "ChangeRow",
    "changes_of",
    "expired_pending",
    "finish",
    "insert_change",
    "note_refusal",
    "pending_of",
    "pending_changes",
    "read_change",
    "slot_holder",
    "take_over",
]

PENDING = "pending"

_CHANGES: Table = VideoChange.__table__  # type: ignore[assignment]
_SCHEDULES: Table = Schedule.__table__  # type: ignore[assignment]
_ERROR_MAX = 2000


@dataclass(frozen=True, kw_only=True)
class ChangeRow:
    """One ``youtube_video_changes`` row as stored."""

    id: int
    schedule_id: int
    kind: str
    state: str
    target: dict[str, Any]
    previous: dict[str, Any]
    requested_at: datetime
    requested_by: str | None
    lease_expires_at: datetime | None
    finished_at: datetime | None
    error: str | None


_COLUMNS = (
    _CHANGES.c.id,
    _CHANGES.c.schedule_id,
    _CHANGES.c.kind,
    _CHANGES.c.state,
    _CHANGES.c.target,
    _CHANGES.c.previous,
    _CHANGES.c.requested_at,
    _CHANGES.c.requested_by,
    _CHANGES.c.lease_expires_at,
    _CHANGES.c.finished_at,
    _CHANGES.c.error,
)


def _row(r: Any) -> ChangeRow:
    return ChangeRow(
        id=r[0],
        schedule_id=r[1],
        kind=r[2],
        state=r[3],
        target=dict(r[4] or {}),
        previous=dict(r[5] or {}),
        requested_at=r[6],
        requested_by=r[7],
        lease_expires_at=r[8],
        finished_at=r[9],
        error=r[10],
    )


def insert_change(
    conn: Connection,
    *,
    schedule_id: int,
    kind: str,
    target: dict[str, Any],
    previous: dict[str, Any],
    requested_at: datetime,
    requested_by: str | None,
    lease_expires_at: datetime,
) -> int:
    """Insert a ``pending`` change; returns its id."""
    result = conn.execute(
        insert(_CHANGES).values(
            schedule_id=schedule_id,
            kind=kind,
            state=PENDING,
            target=target,
            previous=previous,
            requested_at=requested_at,
            requested_by=None if requested_by is None else requested_by[:128],
            lease_expires_at=lease_expires_at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def read_change(conn: Connection, change_id: int) -> ChangeRow | None:
    """The change of ``change_id``, or None."""
    r = conn.execute(select(*_COLUMNS).where(_CHANGES.c.id == change_id)).first()
    return None if r is None else _row(r)


def changes_of(conn: Connection, schedule_id: int) -> list[ChangeRow]:
    """Every change of one schedule, oldest first."""
    query = select(*_COLUMNS).where(_CHANGES.c.schedule_id == schedule_id)
    return [_row(r) for r in conn.execute(query.order_by(_CHANGES.c.id))]


def pending_of(conn: Connection, schedule_id: int) -> ChangeRow | None:
    """The pending change of one schedule (there is at most one), or None."""
    r = conn.execute(
        select(*_COLUMNS)
        .where(_CHANGES.c.schedule_id == schedule_id, _CHANGES.c.state == PENDING)
        .order_by(_CHANGES.c.id)
    ).first()
    return None if r is None else _row(r)


def pending_changes(
    conn: Connection, *, schedule_ids: Collection[int] | None = None, limit: int = 1000
) -> list[ChangeRow]:
    """Pending changes (of ``schedule_ids`` when given), oldest first."""
    query = select(*_COLUMNS).where(_CHANGES.c.state == PENDING)
    if schedule_ids is not None:
        query = query.where(_CHANGES.c.schedule_id.in_(list(schedule_ids)))
    return [_row(r) for r in conn.execute(query.order_by(_CHANGES.c.id).limit(limit))]


def expired_pending(
    conn: Connection,
    *,
    now: datetime,
    api_project: str,
    channels: Sequence[str] | None,
    limit: int,
) -> list[tuple[ChangeRow, str, str | None]]:
    """Pending changes whose lease expired before ``now``, of schedules of ``api_project``
    (and ``channels`` when given; never of a paused channel), oldest first, with the
    schedule's channel and video id."""
    query = (
        select(*_COLUMNS, _SCHEDULES.c.channel_id, _SCHEDULES.c.youtube_video_id)
        .join(_SCHEDULES, _SCHEDULES.c.id == _CHANGES.c.schedule_id)
        .where(
            _CHANGES.c.state == PENDING,
            _CHANGES.c.lease_expires_at < now,
            _SCHEDULES.c.api_project == api_project,
        )
    )
    if channels is not None:
        query = query.where(_SCHEDULES.c.channel_id.in_(list(channels)))
    # A paused channel's token was refused: its changes wait for ``auth`` like its uploads.
    paused = select(CHANNELS.c.channel_id).where(CHANNELS.c.paused_at.is_not(None))
    query = query.where(_SCHEDULES.c.channel_id.not_in(paused))
    rows = conn.execute(query.order_by(_CHANGES.c.id).limit(limit)).all()
    return [(_row(r), r[11], r[12]) for r in rows]


def take_over(
    conn: Connection, change_id: int, *, seen_lease: datetime | None, new_lease: datetime
) -> bool:
    """Extend the lease of a pending change whose lease is still ``seen_lease`` (so of two
    processors only one takes it over). True when this caller got it."""
    result = conn.execute(
        update(_CHANGES)
        .where(
            _CHANGES.c.id == change_id,
            _CHANGES.c.state == PENDING,
            _CHANGES.c.lease_expires_at == seen_lease,
        )
        .values(lease_expires_at=new_lease)
    )
    return result.rowcount == 1


def note_refusal(conn: Connection, change_id: int, *, error: str, lease: datetime) -> bool:
    """Note on a pending change that YouTube (or our quota ledger) refused it, nothing having
    changed there, and set its lease to ``lease``: the next processor run puts it back instead
    of sending it (its requester could not). False when it was no longer pending."""
    if len(error) > _ERROR_MAX:
        error = error[: _ERROR_MAX - 1] + "…"
    result = conn.execute(
        update(_CHANGES)
        .where(_CHANGES.c.id == change_id, _CHANGES.c.state == PENDING)
        .values(error=error, lease_expires_at=lease)
    )
    return result.rowcount == 1


def finish(
    conn: Connection, change_id: int, *, state: str, now: datetime, error: str | None = None
) -> bool:
    """End a pending change as ``state`` (applied, failed, rolled_back). False when it was no
    longer pending (another finisher won)."""
    if error is not None and len(error) > _ERROR_MAX:
        error = error[: _ERROR_MAX - 1] + "…"
    result = conn.execute(
        update(_CHANGES)
        .where(_CHANGES.c.id == change_id, _CHANGES.c.state == PENDING)
        .values(state=state, finished_at=now, lease_expires_at=None, error=error)
    )
    return result.rowcount == 1


def slot_holder(conn: Connection, channel: str, slot: datetime) -> int | None:
    """The id of the live schedule of ``channel`` at ``slot``, or None (no ORM rows touched)."""
    found = conn.execute(
        select(_SCHEDULES.c.id).where(
            _SCHEDULES.c.channel_id == channel, _SCHEDULES.c.slot_key == slot
        )
    ).first()
    return None if found is None else int(found[0])
