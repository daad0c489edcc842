"""Channel pauses: ``youtube_upload_channels.paused_at`` / ``pause_reason`` (Core statements).

A channel is paused when its token was refused (``invalid_grant``): the claim's due predicate
(:func:`langflix_scheduler.db.due.due_condition`) skips its schedules until the pause is
lifted (``auth`` stored a new token, ``auth --check`` found it good, or
``ScheduleManager.resume_channel``). The channel row is first in the lock order
(:mod:`langflix_scheduler.ledger`): a transaction that pauses a channel touches nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from .locking import insert_if_absent
from .statements import CHANNELS, rowcount

__all__ = ["PausedChannel", "pause", "paused", "resume"]

_REASON_MAX = 2000


@dataclass(frozen=True, kw_only=True)
class PausedChannel:
    """A paused channel's row."""

    channel_id: str
    paused_at: datetime
    reason: str | None


def pause(conn: Connection, dialect: str, channel: str, *, at: datetime, reason: str) -> bool:
    """Pause ``channel`` (creating its row if needed). A channel already paused keeps its first
    ``paused_at``; its reason is brought up to date. True when it was not paused before."""
    insert_if_absent(conn, dialect, CHANNELS, {"channel_id": channel, "last_claim_at": None})
    short = reason[:_REASON_MAX]
    fresh = rowcount(
        conn.execute(
            update(CHANNELS)
            .where(CHANNELS.c.channel_id == channel, CHANNELS.c.paused_at.is_(None))
            .values(paused_at=at, pause_reason=short)
        )
    )
    if not fresh:
        conn.execute(
            update(CHANNELS).where(CHANNELS.c.channel_id == channel).values(pause_reason=short)
        )
    return fresh > 0


def resume(conn: Connection, channel: str) -> PausedChannel | None:
    """Lift ``channel``'s pause; the pause lifted, or None when it was not paused."""
    row = conn.execute(
        select(CHANNELS.c.paused_at, CHANNELS.c.pause_reason)
        .where(CHANNELS.c.channel_id == channel, CHANNELS.c.paused_at.is_not(None))
        .with_for_update()
    ).first()
    if row is None:
        return None
    conn.execute(
        update(CHANNELS)
        .where(CHANNELS.c.channel_id == channel)
        .values(paused_at=None, pause_reason=None)
    )
    return PausedChannel(channel_id=channel, paused_at=row[0], reason=row[1])


def paused(conn: Connection, channel: str | None = None) -> list[PausedChannel]:
    """Paused channels (or ``channel`` alone, when paused), oldest pause first."""
    query = select(CHANNELS.c.channel_id, CHANNELS.c.paused_at, CHANNELS.c.pause_reason).where(
        CHANNELS.c.paused_at.is_not(None)
    )
    if channel is not None:
        query = query.where(CHANNELS.c.channel_id == channel)
    rows = conn.execute(query.order_by(CHANNELS.c.paused_at, CHANNELS.c.channel_id)).all()
    return [PausedChannel(channel_id=r[0], paused_at=r[1], reason=r[2]) for r in rows]
