"""Claiming due schedules: one short transaction per channel under the channel row's lock,
the per-channel cap counted in the database (see the package docstring).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..db import claims
from ..db.types import Connection
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
    _Attempt,
)
from .events import ProcessorEventKind

logger = logging.getLogger(__name__)


class _Claims(_Core):
    """The claim policy and its statements."""

    def _claim_sql(self) -> claims.ClaimStatements:
        """The claim path's statements, built once per processor."""
        key = (self.api_project, self.channels, self.worker_id)
        cached = self._claim_sql_cache
        if cached is None or cached.key != key:
            cached = self._claim_sql_cache = claims.build(*key)
        return cached

    def _claim(self, room: int) -> list[_Attempt]:
        """Claim up to ``room`` due schedules, one short transaction per channel.

        Channels are taken in order of their earliest due schedule. The first look is a cheap
        top-N read of the due index (the channels of the next few due rows); only when those
        channels could not fill ``room`` (capped, or their rows taken by other processors) are
        the remaining channels found with a ``GROUP BY`` over all due rows.
        """
        claimed, channels, more = self._claim_first(room)
        tried = set(channels[:1])
        self._claim_from(channels, room, claimed, tried)
        if more and len(claimed) < room:

            def all_channels(conn: Connection) -> list[str]:
                at = self._now()
                horizon = at + self.upload_lead_time
                sql = self._claim_sql()
                return claims.all_channels(conn, sql, at, horizon, _MAX_CHANNELS_PER_CLAIM)

            others = self._db.run_core("find due uploads", all_channels, read_only=True)
            self._claim_from(others, room, claimed, tried)
        if claimed and self._on_event is not None:
            now = self._now()
            self._emit(
                self._event(ProcessorEventKind.CLAIMED, a, attempts=a.attempts, at=now)
                for a in claimed
            )
        return claimed

    def _claim_first(self, room: int) -> tuple[list[_Attempt], list[str], bool]:
        """Find the channels of the next due rows and claim the first one in the same
        transaction (the read takes no lock, so the lock order is unchanged). Returns what was
        claimed, the channels found and whether there may be more."""
        now = self._now()
        peek = min(_MAX_CHANNELS_PER_CLAIM * 4, max(room * 4, 16))
        found: list[tuple[list[str], bool]] = []

        def find_and_claim_first(conn: Connection) -> list[_Attempt]:
            horizon = now + self.upload_lead_time
            found[:] = [claims.first_channels(conn, self._claim_sql(), now, horizon, peek)]
            channels = found[0][0]
            if not channels:
                return []
            return self._claim_channel(conn, channels[0], min(self.batch_size, room))

        claimed: list[_Attempt] = []
        try:
            claimed.extend(self._db.run_core("claim uploads", find_and_claim_first))
        except LockTimeoutError as exc:
            if not found:
                raise
            logger.warning("claiming channel %s timed out: %s", found[0][0][0], exc)
        channels, more = found[0]
        return claimed, channels, more

    def _claim_from(
        self, channels: Iterable[str], room: int, claimed: list[_Attempt], tried: set[str]
    ) -> None:
        """Claim from ``channels`` in order, each in its own transaction, until ``room``."""
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

    def _claim_channel(self, conn: Connection, channel: str, limit: int) -> list[_Attempt]:
        now = self._now()
        # The channel row serialises claimers of this channel on every engine, so the count
        # of its uploading rows cannot be raced by another processor: the cap holds
        # across machines.
        claims.lock_channel(conn, self._db.dialect, channel)
        taken = claims.claim_rows(
            conn,
            self._db.dialect,
            self._claim_sql(),
            channel=channel,
            now=now,
            horizon=now + self.upload_lead_time,
            limit=limit,
            cap=self.per_channel_limit,
            lease=self.lease,
            worker_id=self.worker_id,
        )
        # claim_rows writes the timeline's ``attempt`` entries in the claim's transaction.
        return [self._attempt_of(row, token) for row, token in taken]

    @staticmethod
    def _attempt_of(row: Any, token: str) -> _Attempt:
        """The in-flight attempt of a claimed row."""
        steps = {UploadStep(s) for s in (row.completed_steps or []) if s in _STEP_VALUES}
        logger.info(
            "claimed schedule %d (channel %s, attempt %d%s)",
            row.id,
            row.channel_id,
            row.attempts + 1,
            ", resuming" if row.upload_session_uri or row.youtube_video_id else "",
        )
        return _Attempt(
            schedule_id=row.id,
            channel_id=row.channel_id,
            api_project=row.api_project,
            token=token,
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
