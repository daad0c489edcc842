"""``youtube_schedule_events``: the timeline of each schedule (Core statements only).

Every transition worth showing in ``show ID`` appends one row *in the transaction that makes
the transition*, so the timeline never claims what did not commit. Kinds are short verbs
(:data:`EVENT_KINDS`); ``actor`` says who (a worker id, ``cli``, ``library``); ``detail`` is
one human line (an error, the old and new publish time, YouTube's reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection

from .models import VIDEO_STATES, Schedule, ScheduleEvent

__all__ = [
    "ATTEMPT_PREFIX",
    "EVENTS",
    "EVENT_KINDS",
    "RESUMING_NOTE",
    "TimelineEntry",
    "append",
    "append_many",
    "entries_of",
    "schedule_times",
]

_EVENTS: Table = ScheduleEvent.__table__  # type: ignore[assignment]
#: The events table (for statements that append entries themselves: the PostgreSQL claim).
EVENTS = _EVENTS
_SCHEDULES: Table = Schedule.__table__  # type: ignore[assignment]
# Built once: appends sit on hot paths (booking, claim).
_INSERT = insert(_EVENTS)

#: The kinds written today (a reader must accept others: newer versions may add kinds).
EVENT_KINDS = (
    "booked",
    "rescheduled",
    "cancelled",
    "attempt",
    "retry",
    "deferred",
    "failed",
    "needs_review",
    "rescued",
    "uploaded",
    *(state for state in VIDEO_STATES if state != "uploaded"),
    "change_requested",
    "change_applied",
    "change_failed",
    "change_rolled_back",
    "updated",
    "reconciled",
)

_DETAIL_MAX = 2000

#: The ``attempt`` entry's detail is this and the attempt number (the PostgreSQL claim
#: statement builds it in SQL).
ATTEMPT_PREFIX = "attempt "
#: Added to it when the claimed row resumes a stored upload session or a known video.
RESUMING_NOTE = " (resuming the stored upload session)"


@dataclass(frozen=True, kw_only=True)
class TimelineEntry:
    """One row of a schedule's timeline."""

    schedule_id: int
    at: datetime
    kind: str
    actor: str | None = None
    detail: str | None = None


def _values(entry: TimelineEntry) -> dict[str, Any]:
    detail = entry.detail
    if detail is not None and len(detail) > _DETAIL_MAX:
        detail = detail[: _DETAIL_MAX - 1] + "…"
    actor = None if entry.actor is None else entry.actor[:128]
    return {
        "schedule_id": entry.schedule_id,
        "at": entry.at,
        "kind": entry.kind[:32],
        "actor": actor,
        "detail": detail,
    }


def append(conn: Connection, entry: TimelineEntry) -> None:
    """Append one entry (in the caller's transaction)."""
    conn.execute(_INSERT, _values(entry))


def append_many(conn: Connection, entries: Iterable[TimelineEntry]) -> None:
    """Append several entries in one statement (in the caller's transaction)."""
    rows = [_values(e) for e in entries]
    if rows:
        conn.execute(_INSERT, rows)


def entries_of(conn: Connection, schedule_id: int) -> Sequence[TimelineEntry]:
    """One schedule's timeline, oldest first."""
    rows = conn.execute(
        select(
            _EVENTS.c.schedule_id, _EVENTS.c.at, _EVENTS.c.kind, _EVENTS.c.actor, _EVENTS.c.detail
        )
        .where(_EVENTS.c.schedule_id == schedule_id)
        .order_by(_EVENTS.c.id)
    ).all()
    return [
        TimelineEntry(schedule_id=r[0], at=r[1], kind=r[2], actor=r[3], detail=r[4]) for r in rows
    ]


def schedule_times(
    conn: Connection, schedule_id: int
) -> tuple[str, datetime, datetime | None, datetime] | None:
    """``(channel_id, created_at, uploaded_at, scheduled_publish_time)`` of a schedule, or None:
    what a row booked before the timeline existed still tells about its life."""
    row = conn.execute(
        select(
            _SCHEDULES.c.channel_id,
            _SCHEDULES.c.created_at,
            _SCHEDULES.c.uploaded_at,
            _SCHEDULES.c.scheduled_publish_time,
        ).where(_SCHEDULES.c.id == schedule_id)
    ).first()
    return None if row is None else (str(row[0]), row[1], row[2], row[3])
