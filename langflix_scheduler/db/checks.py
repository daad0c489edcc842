"""The verification statements: which uploaded videos are due for a check on YouTube, taking
them, and writing what the check found (Core statements only).

Taking due checks is one short transaction: pick the due rows (``video_state`` not final,
``next_check_at <= now``, or ``uploaded`` with no check time: uploads recorded before migration
0006; channels not paused) ``FOR UPDATE SKIP LOCKED`` (PostgreSQL, MariaDB 10.6+, MySQL 8; SQLite
serialises writers with ``BEGIN IMMEDIATE``) and move their ``next_check_at`` to a short lease
(``until``), then commit: another processor skips them, and no lock is held across the
``videos.list`` call. Every later write is fenced on ``next_check_at = until`` and the state the
check started from, so a processor whose lease passed (the rows were taken again) or whose rows
were changed meanwhile (a change of plan) writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection

from ..domain import UploadStatus, VideoState
from . import timeline
from .statements import CHANNELS, SCHEDULES, rowcount

__all__ = [
    "CHECKABLE_STATES",
    "CheckRow",
    "CheckWrite",
    "claim_due",
    "defer_due",
    "hold",
    "release",
    "write_checks",
]

_S = SCHEDULES
_COMPLETED = UploadStatus.COMPLETED.value
_UPLOADED = VideoState.UPLOADED.value
#: The video states the processor still checks on its own.
CHECKABLE_STATES = tuple(s.value for s in VideoState if not s.is_final)


@dataclass(frozen=True, kw_only=True)
class CheckRow:
    """A schedule taken for a check: what the check needs, and its fence."""

    id: int
    channel_id: str
    video_id: str
    metadata: dict[str, Any]
    publish_time: datetime
    uploaded_at: datetime | None
    state: str
    check_count: int
    #: ``next_check_at`` before it was taken (a released row goes back to it).
    was_due_at: datetime | None
    #: ``next_check_at`` while taken: the fence of every later write.
    until: datetime


@dataclass(frozen=True, kw_only=True)
class CheckWrite:
    """What one check writes on its row (and the timeline entry when the state changed)."""

    row: CheckRow
    state: str
    privacy: str | None
    publish_at: datetime | None
    problem: str | None
    next_check_at: datetime | None
    #: The ``check_count`` written (None: one more than before).
    check_count: int | None = None


def _due(api_project: str, channels: Sequence[str] | None, now: datetime) -> list[Any]:
    conds = [
        _S.c.api_project == api_project,
        _S.c.video_state.in_(CHECKABLE_STATES),
        # Uploads completed before migration 0006 are ``uploaded`` with no check time yet.
        or_(
            _S.c.next_check_at <= now,
            and_(_S.c.video_state == _UPLOADED, _S.c.next_check_at.is_(None)),
        ),
        _S.c.upload_status == _COMPLETED,
        _S.c.youtube_video_id.is_not(None),
    ]
    if channels is not None:
        conds.append(_S.c.channel_id.in_(list(channels)))
    # A paused channel's token was refused: its videos wait for ``auth`` like its uploads.
    paused = select(CHANNELS.c.channel_id).where(CHANNELS.c.paused_at.is_not(None))
    conds.append(_S.c.channel_id.not_in(paused))
    return conds


def claim_due(
    conn: Connection,
    dialect: str,
    *,
    api_project: str,
    channels: Sequence[str] | None,
    now: datetime,
    until: datetime,
    limit: int,
) -> list[CheckRow]:
    """Take at most ``limit`` due checks (oldest due first): ``next_check_at = until``."""
    stmt = (
        select(
            _S.c.id,
            _S.c.channel_id,
            _S.c.youtube_video_id,
            _S.c["metadata"].label("video_metadata"),
            _S.c.scheduled_publish_time,
            _S.c.uploaded_at,
            _S.c.video_state,
            _S.c.check_count,
            _S.c.next_check_at,
        )
        .where(*_due(api_project, channels, now))
        .order_by(_S.c.next_check_at, _S.c.id)
        .limit(limit)
    )
    if dialect != "sqlite":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    conn.execute(update(_S).where(_S.c.id.in_([r.id for r in rows])).values(next_check_at=until))
    return [
        CheckRow(
            id=r.id,
            channel_id=r.channel_id,
            video_id=r.youtube_video_id,
            metadata=dict(r.video_metadata or {}),
            publish_time=r.scheduled_publish_time,
            uploaded_at=r.uploaded_at,
            state=r.video_state,
            check_count=int(r.check_count or 0),
            was_due_at=r.next_check_at,
            until=until,
        )
        for r in rows
    ]


def _still_ours(conn: Connection, rows: Iterable[CheckRow]) -> set[int]:
    """Lock ``rows`` by id and keep those still taken by this check, in their checked state."""
    by_id = {r.id: r for r in rows}
    if not by_id:
        return set()
    found = conn.execute(
        select(_S.c.id, _S.c.next_check_at, _S.c.video_state, _S.c.upload_status)
        .where(_S.c.id.in_(sorted(by_id)))
        .order_by(_S.c.id)
        .with_for_update()
    ).all()
    return {
        f.id
        for f in found
        if f.next_check_at == by_id[f.id].until
        and f.video_state == by_id[f.id].state
        and f.upload_status == _COMPLETED
    }


_WRITE = (
    update(_S)
    .where(_S.c.id == bindparam("k_id"))
    .values(
        video_state=bindparam("k_state"),
        youtube_privacy=bindparam("k_privacy"),
        youtube_publish_at=bindparam("k_publish_at", type_=_S.c.youtube_publish_at.type),
        video_problem=bindparam("k_problem"),
        checked_at=bindparam("k_now", type_=_S.c.checked_at.type),
        next_check_at=bindparam("k_next", type_=_S.c.next_check_at.type),
        check_count=bindparam("k_count"),
        updated_at=bindparam("k_now", type_=_S.c.updated_at.type),
    )
)


def write_checks(
    conn: Connection, writes: Sequence[CheckWrite], *, now: datetime, actor: str
) -> list[CheckWrite]:
    """Write each check still ours (locked by id, fenced), and a timeline entry for each
    change of state; returns the writes made."""
    ours = _still_ours(conn, (w.row for w in writes))
    made = [w for w in writes if w.row.id in ours]
    if not made:
        return []
    conn.execute(
        _WRITE,
        [
            {
                "k_id": w.row.id,
                "k_state": w.state,
                "k_privacy": w.privacy,
                "k_publish_at": w.publish_at,
                "k_problem": w.problem,
                "k_now": now,
                "k_next": w.next_check_at,
                "k_count": w.row.check_count + 1 if w.check_count is None else w.check_count,
            }
            for w in made
        ],
    )
    timeline.append_many(
        conn,
        (
            timeline.TimelineEntry(
                schedule_id=w.row.id, at=now, kind=w.state, actor=actor, detail=w.problem
            )
            for w in made
            if w.state != w.row.state
        ),
    )
    return made


def hold(
    conn: Connection, rows: Iterable[CheckRow], *, problem: str, now: datetime, to: datetime
) -> int:
    """Rows still taken by this check keep their state and count; their problem says
    ``problem`` and their next check is ``to`` (an answer not to be trusted). Rows matched."""
    params = [
        {"k_id": r.id, "k_until": r.until, "k_state": r.state, "k_to": to, "k_now": now}
        for r in rows
    ]
    if not params:
        return 0
    return rowcount(
        conn.execute(
            update(_S)
            .where(
                _S.c.id == bindparam("k_id"),
                _S.c.next_check_at == bindparam("k_until", type_=_S.c.next_check_at.type),
                _S.c.video_state == bindparam("k_state"),
            )
            .values(
                video_problem=problem,
                checked_at=bindparam("k_now", type_=_S.c.checked_at.type),
                next_check_at=bindparam("k_to", type_=_S.c.next_check_at.type),
                updated_at=bindparam("k_now", type_=_S.c.updated_at.type),
            ),
            params,
        )
    )


def release(conn: Connection, rows: Iterable[CheckRow], to: datetime | None = None) -> int:
    """Give rows still taken by this check back: ``next_check_at`` = ``to`` (default: what it
    was before they were taken). Rows matched."""
    params = [
        {"k_id": r.id, "k_until": r.until, "k_to": r.was_due_at if to is None else to} for r in rows
    ]
    if not params:
        return 0
    return rowcount(
        conn.execute(
            update(_S)
            .where(
                _S.c.id == bindparam("k_id"),
                _S.c.next_check_at == bindparam("k_until", type_=_S.c.next_check_at.type),
            )
            .values(next_check_at=bindparam("k_to", type_=_S.c.next_check_at.type)),
            params,
        )
    )


def defer_due(
    conn: Connection,
    *,
    api_project: str,
    channels: Sequence[str] | None,
    now: datetime,
    to: datetime,
) -> int:
    """Move every check due at ``now`` (not taken by a processor) to ``to``. Rows moved."""
    return rowcount(
        conn.execute(update(_S).where(*_due(api_project, channels, now)).values(next_check_at=to))
    )
