"""Claiming due schedules: one short transaction per channel under the channel row's lock,
the per-channel cap counted in the database (see the package docstring).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Text,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..db.due import due_condition
from ..db.locking import (
    insert_if_absent,
)
from ..db.models import Schedule
from ..db.statements import (
    CHANNELS as _CHANNELS,
)
from ..db.statements import (
    CLAIM_COLUMNS as _CLAIM_COLUMNS,
)
from ..db.statements import (
    COUNT_LIVE as _COUNT_LIVE,
)
from ..db.statements import (
    COUNT_LIVE_OF_CHANNEL as _COUNT_LIVE_OF_CHANNEL,
)
from ..db.statements import (
    LOCK_CHANNEL as _LOCK_CHANNEL,
)
from ..db.statements import (
    SCHEDULES as _S,
)
from ..db.statements import (
    TOUCH_CHANNEL as _TOUCH_CHANNEL,
)
from ..errors import (
    LockTimeoutError,
)
from ..youtube.uploader import (
    UploadStep,
)
from ._core import _Core
from ._state import (
    _MAX_CHANNELS_PER_CLAIM,
    _STEP_VALUES,
    _UPLOADING,
    _Attempt,
)

logger = logging.getLogger(__name__)


class _Claims(_Core):
    """The claim policy and its statements."""

    def _due(self, now: datetime) -> ColumnElement[bool]:
        return due_condition(
            Schedule,
            now=now,
            horizon=now + self.upload_lead_time,
            api_project=self.api_project,
            channels=self.channels,
        )

    def _claim_sql(self) -> dict[str, Any]:
        """The claim path's statements, built once per processor (bound values as parameters)."""
        key = (self.api_project, self.channels, self.worker_id)
        if self._claim_sql_cache is not None and self._claim_sql_cache[0] == key:
            return self._claim_sql_cache[1]
        due = due_condition(
            _S.c,
            now=bindparam("k_now"),
            horizon=bindparam("k_horizon"),
            api_project=self.api_project,
            channels=self.channels,
        )
        by_due = (_S.c.scheduled_publish_time, _S.c.id)
        first = (
            select(_S.c.channel_id)
            .where(due)
            .order_by(*by_due)
            .limit(bindparam("k_peek", type_=Integer))
        )
        # PostgreSQL, one statement: the subquery counts the channel's uploading rows (its
        # snapshot is taken after the channel lock), takes at most the room left under the cap
        # with SKIP LOCKED, the UPDATE marks them, each with its own random lease token, and the
        # channel row is stamped when any was taken.
        room_left = func.greatest(
            0,
            func.least(
                bindparam("k_limit", type_=Integer),
                bindparam("k_cap", type_=Integer) - _COUNT_LIVE_OF_CHANNEL,
            ),
        )
        ids = (
            select(_S.c.id)
            .where(due, _S.c.channel_id == bindparam("k_channel"))
            .order_by(*by_due)
            .limit(room_left)
            .with_for_update(skip_locked=True)
        )
        token_sql = literal(f"{self.worker_id}#") + func.substr(
            func.md5(func.random().cast(Text)), 1, 12
        )
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
            .returning(*_CLAIM_COLUMNS, _S.c.lease_owner)
            .cte("claimed")
        )
        touch = (
            update(_CHANNELS)
            .where(
                _CHANNELS.c.channel_id == bindparam("k_channel"),
                exists(select(literal(1)).select_from(claim)),
            )
            .values(last_claim_at=bindparam("k_now"))
            .cte("touched")
        )
        pick = (
            select(*_CLAIM_COLUMNS)
            .where(due, _S.c.channel_id == bindparam("k_channel"))
            .order_by(*by_due)
            .limit(bindparam("k_room", type_=Integer))
            .with_for_update(skip_locked=True)
        )
        sql: dict[str, Any] = {
            "first": first,
            "pg_claim": select(claim).add_cte(touch),
            "pick": pick,
        }
        self._claim_sql_cache = (key, sql)
        return sql

    def _claim(self, room: int) -> list[_Attempt]:
        """Claim up to ``room`` due schedules, one short transaction per channel.

        Channels are taken in order of their earliest due schedule. The first look is a cheap
        top-N read of the due index (the channels of the next few due rows); only when those
        channels could not fill ``room`` (capped, or their rows taken by other processors) are
        the remaining channels found with a ``GROUP BY`` over all due rows.
        """
        now = self._now()
        peek = min(_MAX_CHANNELS_PER_CLAIM * 4, max(room * 4, 16))

        def first_channels(conn: Connection) -> tuple[list[str], bool]:
            rows = conn.execute(
                self._claim_sql()["first"],
                {"k_now": now, "k_horizon": now + self.upload_lead_time, "k_peek": peek},
            ).all()
            return list(dict.fromkeys(r[0] for r in rows)), len(rows) >= peek

        def all_channels(conn: Connection) -> list[str]:
            first_due = func.min(_S.c.scheduled_publish_time)
            rows = conn.execute(
                select(_S.c.channel_id, first_due)
                .where(self._due(self._now()))
                .group_by(_S.c.channel_id)
                .order_by(first_due, _S.c.channel_id)
                .limit(_MAX_CHANNELS_PER_CLAIM)
            ).all()
            return [r[0] for r in rows]

        claimed: list[_Attempt] = []
        tried: set[str] = set()

        def claim_from(channels: Iterable[str]) -> None:
            for channel in channels:
                limit = min(self.batch_size, room - len(claimed))
                if limit <= 0:
                    return
                if channel in tried:
                    continue
                tried.add(channel)
                try:
                    claimed.extend(
                        self._db.run_core(
                            "claim uploads",
                            lambda c, ch=channel, n=limit: self._claim_channel(c, ch, n),  # type: ignore[misc]
                        )
                    )
                except LockTimeoutError as exc:
                    # Another claimer held the channel longer than the lock timeout: nothing
                    # was written; try the other channels now and this one in the next round.
                    logger.warning("claiming channel %s timed out: %s", channel, exc)

        # The first channel is claimed in the transaction that found it (the read takes no
        # lock, so the lock order is unchanged); the others each in their own transaction.
        found: list[tuple[list[str], bool]] = []

        def find_and_claim_first(conn: Connection) -> list[_Attempt]:
            found[:] = [first_channels(conn)]
            channels = found[0][0]
            if not channels:
                return []
            return self._claim_channel(conn, channels[0], min(self.batch_size, room))

        try:
            claimed.extend(self._db.run_core("claim uploads", find_and_claim_first))
        except LockTimeoutError as exc:
            if not found:
                raise
            logger.warning("claiming channel %s timed out: %s", found[0][0][0], exc)
        channels, more = found[0]
        tried.update(channels[:1])
        claim_from(channels)
        if more and len(claimed) < room:
            claim_from(self._db.run_core("find due uploads", all_channels, read_only=True))
        return claimed

    def _lock_channel(self, conn: Connection, channel: str) -> None:
        params = {"k_channel": channel}
        if conn.execute(_LOCK_CHANNEL, params).first() is None:
            insert_if_absent(
                conn, self._db.dialect, _CHANNELS, {"channel_id": channel, "last_claim_at": None}
            )
            conn.execute(_LOCK_CHANNEL, params).one()

    def _claim_channel(self, conn: Connection, channel: str, limit: int) -> list[_Attempt]:
        now = self._now()
        # The channel row serialises claimers of this channel on every engine, so the count
        # of its uploading rows below cannot be raced by another processor: the cap holds
        # across machines.
        self._lock_channel(conn, channel)
        if conn.dialect.update_returning and self._db.dialect == "postgresql":
            # One statement: the subquery counts the channel's uploading rows (its snapshot is
            # taken after the channel lock), takes at most the room left under the cap with
            # SKIP LOCKED, and the UPDATE marks them, each with its own random lease token.
            returned = conn.execute(
                self._claim_sql()["pg_claim"],
                {
                    "k_now": now,
                    "k_horizon": now + self.upload_lead_time,
                    "k_channel": channel,
                    "k_limit": limit,
                    "k_cap": self.per_channel_limit,
                    "k_expires": now + self.lease,
                },
            ).all()
            rows = sorted(returned, key=lambda r: (r.scheduled_publish_time, r.id))
            tokens = {r.id: str(r.lease_owner) for r in rows}
        else:
            live = conn.execute(_COUNT_LIVE, {"k_channel": channel}).scalar_one()
            room = min(limit, self.per_channel_limit - int(live))
            if room <= 0:
                return []
            rows = list(
                conn.execute(
                    self._claim_sql()["pick"],
                    {
                        "k_now": now,
                        "k_horizon": now + self.upload_lead_time,
                        "k_channel": channel,
                        "k_room": room,
                    },
                ).all()
            )
            tokens = {r.id: f"{self.worker_id}#{secrets.token_hex(6)}" for r in rows}
            if rows:
                # The rows are locked by this transaction: one UPDATE takes them all, each with
                # its own lease token.
                owner: Any = (
                    case(tokens, value=_S.c.id) if len(tokens) > 1 else next(iter(tokens.values()))
                )
                conn.execute(
                    update(_S)
                    .where(_S.c.id.in_(list(tokens)))
                    .values(
                        upload_status=_UPLOADING,
                        lease_owner=owner,
                        lease_expires_at=now + self.lease,
                        heartbeat_at=now,
                        updated_at=now,
                    )
                )
                conn.execute(_TOUCH_CHANNEL, {"k_channel": channel, "k_now": now})
        out: list[_Attempt] = []
        for row in rows:
            steps = {UploadStep(s) for s in (row.completed_steps or []) if s in _STEP_VALUES}
            out.append(
                _Attempt(
                    schedule_id=row.id,
                    channel_id=row.channel_id,
                    api_project=row.api_project,
                    token=tokens[row.id],
                    attempts=row.attempts,
                    video_path=row.video_path,
                    metadata=dict(row.video_metadata or {}),
                    publish_time=row.scheduled_publish_time,
                    session_uri=row.upload_session_uri,
                    video_id=row.youtube_video_id,
                    steps_done=steps,
                    bytes_uploaded=row.bytes_uploaded,
                    bytes_total=row.bytes_total,
                    reported_uri=row.upload_session_uri,
                    reported_bytes=row.bytes_uploaded,
                    reported_total=row.bytes_total,
                    claimed_qday=row.quota_date,
                    claimed_reserved=dict(row.reserved_quota or {}),
                    content_sha256=row.content_sha256,
                    file_size=row.file_size,
                    file_mtime_ns=row.file_mtime_ns,
                )
            )
            logger.info(
                "claimed schedule %d (channel %s, attempt %d%s)",
                row.id,
                row.channel_id,
                row.attempts + 1,
                ", resuming" if row.upload_session_uri or row.youtube_video_id else "",
            )
        return out
