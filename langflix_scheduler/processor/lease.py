"""Fenced writes while an upload runs: session URI, progress, steps, heartbeats.

Every write is conditional on the attempt's lease token and ``uploading`` status (the fence);
lease expiry and heartbeat only move forward (see the package docstring).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..db import leases
from ..db.timeline import TimelineEntry
from ..errors import (
    SchedulerError,
    TransientUploadError,
)
from ..youtube.uploader import (
    UploadStep,
)
from ._core import _Core
from ._state import (
    _FOLLOW_UPS,
    _Attempt,
    _LeaseLost,
    _StopRequested,
)

logger = logging.getLogger(__name__)


class _Leases(_Core):
    """Fencing, progress and heartbeats of the uploads in flight."""

    def _fenced_update(
        self,
        operation: str,
        attempt: _Attempt,
        values: Mapping[str, Any],
        entry: TimelineEntry | None = None,
    ) -> int:
        """One write of ``attempt``, only while it holds the lease; rows matched (0: lost).
        ``entry`` goes to the timeline in the same transaction when the write matched."""
        return self._execute_count(
            operation, leases.fenced_update(attempt.schedule_id, attempt.token, values), entry
        )

    def _lease_values(self, now: datetime) -> dict[str, Any]:
        return leases.lease_values(now, self.lease)

    @staticmethod
    def _progress_values(uri: str | None, sent: int, total: int | None) -> dict[str, Any]:
        return leases.progress_values(uri, sent, total)

    def _write_session(self, attempt: _Attempt, uri: str, sent: int, total: int | None) -> None:
        values = self._lease_values(self._now())
        values.update(upload_session_uri=uri, bytes_uploaded=sent)
        if total is not None:
            values["bytes_total"] = total
        if self._fenced_update("record upload session", attempt, values) == 0:
            attempt.lost.set()
            raise _LeaseLost
        attempt.session_uri = uri

    def _write_progress(self, attempt: _Attempt) -> bool:
        """Extend the lease and store the newest progress; False when the lease is lost."""
        uri, sent, total = attempt.progress_snapshot()
        values = self._lease_values(self._now())
        values.update(self._progress_values(uri, sent, total))
        if self._fenced_update("record upload progress", attempt, values) == 0:
            if attempt.finished.is_set():
                return True  # the upload thread recorded the outcome meanwhile: not a takeover
            attempt.lost.set()
            return False
        return True

    def _heartbeat_all(self) -> None:
        with self._state_lock:
            active = list(self._active.values())
        for attempt in active:
            if attempt.lost.is_set() or attempt.finished.is_set():
                continue
            try:
                if not self._write_progress(attempt):
                    logger.warning(
                        "lease of schedule %d was taken over; its upload stops at the next chunk",
                        attempt.schedule_id,
                    )
            except SchedulerError as exc:
                logger.warning("heartbeat for schedule %d failed: %s", attempt.schedule_id, exc)

    def _progress_callback(self, attempt: _Attempt) -> Callable[[int, int, str | None], None]:
        interval = self.progress_interval.total_seconds()

        def progress(sent: int, total: int, uri: str | None) -> None:
            if attempt.lost.is_set():
                raise _LeaseLost
            with attempt.lock:
                stale = uri is not None and uri in attempt.retired_uris
                if stale:
                    pass  # a late report about a session this attempt already left: ignored
                elif uri is not None and uri != attempt.reported_uri:
                    # A new session (the old one expired): its count legitimately restarts.
                    if attempt.reported_uri is not None:
                        attempt.retired_uris.add(attempt.reported_uri)
                    attempt.reported_uri, attempt.reported_bytes = uri, sent
                    attempt.reported_total = total
                else:
                    attempt.reported_bytes = max(attempt.reported_bytes, sent)
                    attempt.reported_total = total
            if stale:
                if self._stopping():
                    raise _StopRequested
                return
            if uri is not None and uri != attempt.session_uri:
                # A new session: persist its URI before any of its bytes are sent, so a crash
                # from here on resumes it instead of starting over. If it cannot be stored, no
                # byte is sent: a completed session nobody can find again would mean a second
                # upload of the same video on the next attempt.
                try:
                    self._write_session(attempt, uri, sent, total)
                except SchedulerError as exc:
                    raise TransientUploadError(
                        f"could not store the resumable session: {exc}", reason="storageError"
                    ) from exc
                attempt.last_progress_write = time.monotonic()
            elif time.monotonic() - attempt.last_progress_write >= interval:
                try:
                    if not self._write_progress(attempt):
                        raise _LeaseLost
                    attempt.last_progress_write = time.monotonic()
                except SchedulerError as exc:
                    # Progress is advisory (the server knows the offset): keep uploading.
                    logger.warning(
                        "could not record progress of schedule %d: %s", attempt.schedule_id, exc
                    )
            if self._stopping():
                raise _StopRequested

        return progress

    def _step_callback(self, attempt: _Attempt) -> Callable[[UploadStep, str], None]:
        def on_step(step: UploadStep, video_id: str) -> None:
            with attempt.lock:
                attempt.video_id = video_id
                if step in _FOLLOW_UPS:
                    attempt.steps_done.add(step)
                steps = sorted(s.value for s in attempt.steps_done)
            values = {
                "youtube_video_id": video_id,
                "completed_steps": steps,
                "updated_at": self._now(),
            }
            try:
                written = self._fenced_update("record upload step", attempt, values)
            except SchedulerError as exc:
                logger.warning(
                    "could not record %s of schedule %d: %s", step.value, attempt.schedule_id, exc
                )
                return
            if written == 0:
                attempt.lost.set()
                raise _LeaseLost
            logger.info(
                "schedule %d: %s done (video %s)", attempt.schedule_id, step.value, video_id
            )

        return on_step
