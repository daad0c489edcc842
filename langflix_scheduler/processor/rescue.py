"""Rescue of expired leases (a worker died or stalled)."""

from __future__ import annotations

import logging
from datetime import datetime

from .. import history
from ..db import leases
from ..db.models import Schedule
from ..youtube.uploader import (
    UploadStep,
)
from ._state import (
    _MAX_RESCUE_PER_RUN,
    _STEP_VALUES,
    _UPLOADING,
    _Kind,
    _short,
)
from .deferral import _Deferrals
from .events import ProcessorEventKind

logger = logging.getLogger(__name__)


class _Rescue(_Deferrals):
    """Takes back expired leases at the start of each run."""

    def _rescue(self) -> tuple[int, int, int]:
        """Take back expired leases of the project. Returns ``(rescued, failed, uploaded)``
        (uploaded: given up, but the video was found on YouTube)."""
        now = self._now()
        expired = self._db.run(
            "find expired leases",
            lambda s: leases.expired_leases(s, self.api_project, now, _MAX_RESCUE_PER_RUN),
            read_only=True,
        )
        rescued = failed = uploaded = 0
        for row in expired:
            kind = self._rescue_one(row, now)
            if kind is not None:
                rescued += 1
                failed += int(kind is _Kind.FAILED)
                uploaded += int(kind is _Kind.UPLOADED)
        return rescued, failed, uploaded

    def _rescue_one(self, row: Schedule, now: datetime) -> _Kind | None:
        """Rescue one expired lease: back to ``scheduled`` with one attempt counted, or given
        up when its attempts are spent. None when someone else took the row meanwhile."""
        owner = row.lease_owner
        attempts = row.attempts + 1
        reason = f"lease of {owner} expired (the worker died or stalled)"
        if attempts >= self.max_attempts:
            return self._give_up_expired(row, now, reason, attempts)
        stmt = leases.rescue_update(
            row.id, owner, now, attempts=attempts, last_error=_short(reason)
        )
        entry = history.waiting(
            row.id, kind="rescued", at=now, error=reason, next_at=None, worker=self.worker_id
        )
        if not self._execute_count("rescue expired lease", stmt, entry):
            return None
        logger.warning(
            "rescued schedule %d: %s; attempt %d of %d counted, its session is resumed",
            row.id,
            reason,
            attempts,
            self.max_attempts,
        )
        event = self._event(
            ProcessorEventKind.RESCUED,
            row,
            attempts=attempts,
            video_id=row.youtube_video_id,
            error=reason,
            at=now,
        )
        self._emit([event])
        return _Kind.RETRIED

    def _give_up_expired(
        self, row: Schedule, now: datetime, reason: str, attempts: int
    ) -> _Kind | None:
        owner = row.lease_owner

        def still_expired(r: Schedule) -> bool:
            return (
                r.upload_status == _UPLOADING
                and r.lease_owner == owner
                and (r.lease_expires_at is None or r.lease_expires_at < now)
            )

        steps = {UploadStep(s) for s in (row.completed_steps or []) if s in _STEP_VALUES}
        done = self._terminal(
            schedule_id=row.id,
            video_id=row.youtube_video_id,
            steps=steps,
            allowed=still_expired,
            reason=f"{reason} (gave up after {attempts} attempts)",
            attempts=attempts,
            session_uri=row.upload_session_uri,
            video_path=row.video_path,
        )
        if done is None:
            return None
        self._emit([done[1]])
        return done[0]
