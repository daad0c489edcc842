"""The claim statements: which due rows a processor takes, under its channel row's lock.

The due predicate is :func:`langflix_scheduler.db.due.due_condition` (the one definition). The
dialect difference lives in :func:`claim_rows` only: PostgreSQL counts, picks and marks in one
``UPDATE ... RETURNING`` whose subquery runs after the channel lock; the other engines count,
pick ``FOR UPDATE SKIP LOCKED`` (SQLite: ``BEGIN IMMEDIATE`` serialises writers) and mark in one
``UPDATE``. Statements are built once per processor (bound values as ``k_*`` parameters).
Each claimed row gets its timeline ``attempt`` entry in the claim's transaction: on PostgreSQL
a CTE of the claim statement, elsewhere one multi-row INSERT.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Text,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from ..domain import UploadStatus
from . import timeline
from .due import due_condition
from .locking import insert_if_absent
from .statements import (
    CHANNELS,
    CLAIM_COLUMNS,
    COUNT_LIVE,
    COUNT_LIVE_OF_CHANNEL,
    LOCK_CHANNEL,
    SCHEDULES,
    TOUCH_CHANNEL,
)

__all__ = ["ClaimStatements", "all_channels", "build", "claim_rows", "first_channels"]

_UPLOADING = UploadStatus.UPLOADING.value
_S = SCHEDULES


@dataclass(frozen=True)
class ClaimStatements:
    """The claim path's statements for one (API project, channel filter, worker)."""

    key: tuple[Any, ...]
    first: Any
    all_channels: Any
    pg_claim: Any
    pick: Any


def build(api_project: str, channels: tuple[str, ...] | None, worker_id: str) -> ClaimStatements:
    """Build the statements once (cache the result per processor)."""
    due = due_condition(
        _S.c,
        now=bindparam("k_now"),
        horizon=bindparam("k_horizon"),
        api_project=api_project,
        channels=channels,
    )
    by_due = (_S.c.scheduled_publish_time, _S.c.id)
    first = (
        select(_S.c.channel_id)
        .where(due)
        .order_by(*by_due)
        .limit(bindparam("k_peek", type_=Integer))
    )
    first_due = func.min(_S.c.scheduled_publish_time)
    grouped = (
        select(_S.c.channel_id, first_due)
        .where(due)
        .group_by(_S.c.channel_id)
        .order_by(first_due, _S.c.channel_id)
        .limit(bindparam("k_limit", type_=Integer))
    )
    pick = (
        select(*CLAIM_COLUMNS)
        .where(due, _S.c.channel_id == bindparam("k_channel"))
        .order_by(*by_due)
        .limit(bindparam("k_room", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    return ClaimStatements(
        key=(api_project, channels, worker_id),
        first=first,
        all_channels=grouped,
        pg_claim=_pg_claim(due, by_due, worker_id),
        pick=pick,
    )


def _pg_claim(due: Any, by_due: Sequence[Any], worker_id: str) -> Any:
    """PostgreSQL, one statement: the subquery counts the channel's uploading rows (its snapshot
    is taken after the channel lock), takes at most the room left under the cap with SKIP
    LOCKED, the UPDATE marks them, each with its own random lease token, and the channel row is
    stamped when any was taken."""
    room_left = func.greatest(
        0,
        func.least(
            bindparam("k_limit", type_=Integer),
            bindparam("k_cap", type_=Integer) - COUNT_LIVE_OF_CHANNEL,
        ),
    )
    ids = (
        select(_S.c.id)
        .where(due, _S.c.channel_id == bindparam("k_channel"))
        .order_by(*by_due)
        .limit(room_left)
        .with_for_update(skip_locked=True)
    )
    token_sql = literal(f"{worker_id}#") + func.substr(func.md5(func.random().cast(Text)), 1, 12)
    claim = (
        update(_S)
        .where(_S.c.id.in_(ids))
        .values(
            upload_status=_UPLOADING,
            lease_owner=token_sql,
            lease_expires_at=bindparam("k_expires"),
            heartbeat_at=bindparam("k_now"),
            updated_at=bindparam("k_now"),
        )
        .returning(*CLAIM_COLUMNS, _S.c.lease_owner)
        .cte("claimed")
    )
    # The timeline's ``attempt`` entries, in the same statement (no extra round trip).
    resuming = or_(claim.c.upload_session_uri.is_not(None), claim.c.youtube_video_id.is_not(None))
    detail = (
        literal(timeline.ATTEMPT_PREFIX)
        + cast(claim.c.attempts + 1, Text)
        + case((resuming, literal(timeline.RESUMING_NOTE)), else_=literal(""))
    )
    noted = insert(timeline.EVENTS).from_select(
        ["schedule_id", "at", "kind", "actor", "detail"],
        select(
            claim.c.id,
            bindparam("k_now", type_=timeline.EVENTS.c.at.type),
            literal("attempt"),
            literal(worker_id[:128]),
            detail,
        ),
    )
    touch = (
        update(CHANNELS)
        .where(
            CHANNELS.c.channel_id == bindparam("k_channel"),
            exists(select(literal(1)).select_from(claim)),
        )
        .values(last_claim_at=bindparam("k_now"))
        .cte("touched")
    )
    return select(claim).add_cte(touch, noted.cte("noted"))


def first_channels(
    conn: Connection, sql: ClaimStatements, now: datetime, horizon: datetime, peek: int
) -> tuple[list[str], bool]:
    """Channels of the next ``peek`` due rows, in due order; and whether there may be more."""
    rows = conn.execute(sql.first, {"k_now": now, "k_horizon": horizon, "k_peek": peek}).all()
    return list(dict.fromkeys(r[0] for r in rows)), len(rows) >= peek


def all_channels(
    conn: Connection, sql: ClaimStatements, now: datetime, horizon: datetime, limit: int
) -> list[str]:
    """Channels with due rows, by their earliest due row (a ``GROUP BY`` over all due rows)."""
    params = {"k_now": now, "k_horizon": horizon, "k_limit": limit}
    return [r[0] for r in conn.execute(sql.all_channels, params).all()]


def lock_channel(conn: Connection, dialect: str, channel: str) -> None:
    """Lock (creating it if needed) the channel's ``youtube_upload_channels`` row: it serialises
    claimers of the channel on every engine, so the per-channel cap holds across machines."""
    params = {"k_channel": channel}
    if conn.execute(LOCK_CHANNEL, params).first() is None:
        insert_if_absent(conn, dialect, CHANNELS, {"channel_id": channel, "last_claim_at": None})
        conn.execute(LOCK_CHANNEL, params).one()


def claim_rows(
    conn: Connection,
    dialect: str,
    sql: ClaimStatements,
    *,
    channel: str,
    now: datetime,
    horizon: datetime,
    limit: int,
    cap: int,
    lease: timedelta,
    worker_id: str,
) -> list[tuple[Row[Any], str]]:
    """Claim up to ``limit`` due rows of ``channel`` (at most ``cap`` uploading at once), each
    with its own lease token; the channel row must be locked (:func:`lock_channel`). Returns
    ``(row, token)`` in due order."""
    if conn.dialect.update_returning and dialect == "postgresql":
        params = {
            "k_now": now,
            "k_horizon": horizon,
            "k_channel": channel,
            "k_limit": limit,
            "k_cap": cap,
            "k_expires": now + lease,
        }
        returned = conn.execute(sql.pg_claim, params).all()
        rows = sorted(returned, key=lambda r: (r.scheduled_publish_time, r.id))
        return [(r, str(r.lease_owner)) for r in rows]
    live = conn.execute(COUNT_LIVE, {"k_channel": channel}).scalar_one()
    room = min(limit, cap - int(live))
    if room <= 0:
        return []
    params = {"k_now": now, "k_horizon": horizon, "k_channel": channel, "k_room": room}
    picked = list(conn.execute(sql.pick, params).all())
    tokens = {r.id: f"{worker_id}#{secrets.token_hex(6)}" for r in picked}
    if picked:
        # The rows are locked by this transaction: one UPDATE takes them all, each with its
        # own lease token.
        owner: Any = case(tokens, value=_S.c.id) if len(tokens) > 1 else next(iter(tokens.values()))
        conn.execute(
            update(_S)
            .where(_S.c.id.in_(list(tokens)))
            .values(
                upload_status=_UPLOADING,
                lease_owner=owner,
                lease_expires_at=now + lease,
                heartbeat_at=now,
                updated_at=now,
            )
        )
        conn.execute(TOUCH_CHANNEL, {"k_channel": channel, "k_now": now})
        timeline.append_many(conn, (_attempt_entry(r, now, worker_id) for r in picked))
    return [(r, tokens[r.id]) for r in picked]


def _attempt_entry(row: Row[Any], now: datetime, worker_id: str) -> timeline.TimelineEntry:
    """The ``attempt`` entry of a claimed row (the PostgreSQL statement builds it in SQL)."""
    detail = f"{timeline.ATTEMPT_PREFIX}{row.attempts + 1}"
    if row.upload_session_uri or row.youtube_video_id:
        detail += timeline.RESUMING_NOTE
    return timeline.TimelineEntry(
        schedule_id=row.id, at=now, kind="attempt", actor=worker_id, detail=detail
    )
