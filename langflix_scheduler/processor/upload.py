"""One upload, in an upload thread: build the request, call the uploader, act on the outcome
(the choice for an exception is the pure :func:`.decide.decide`).
"""

from __future__ import annotations

import logging

from ..domain import VideoMetadata
from ..errors import (
    QuotaExhaustedError,
    SchedulerError,
    UploadLimitExceededError,
)
from ..fingerprint import content_changed
from ..youtube.uploader import (
    UploadRequest,
)
from ._state import (
    _Attempt,
    _Kind,
    _Outcome,
)
from .decide import Action, AttemptView, decide
from .events import ProcessorEventKind
from .rescue import _Rescue

logger = logging.getLogger(__name__)


class _Uploads(_Rescue):
    """The upload step of one claimed schedule."""

    def _request(self, attempt: _Attempt) -> UploadRequest:
        return UploadRequest(
            video_path=attempt.video_path,
            metadata=VideoMetadata.from_json(attempt.metadata),
            publish_at=attempt.publish_time,
            session_uri=attempt.session_uri,
            video_id=attempt.video_id,
            completed_steps=frozenset(attempt.steps_done),
            attempted_steps=attempt.attempted_steps,
        )

    def _upload(self, attempt: _Attempt) -> _Outcome:
        """Upload one claimed schedule and record the outcome. Never raises."""
        return self._guarded(attempt, lambda: self._upload_and_record(attempt))

    def _upload_and_record(self, attempt: _Attempt) -> _Outcome:
        try:
            request = self._request(attempt)
        except SchedulerError as exc:
            attempt.finished.set()
            return self._record_failure(attempt, f"invalid stored request: {exc}", permanent=True)
        # A file replaced after booking is not uploaded (once the video exists, it is moot).
        changed = attempt.video_id is None and content_changed(
            attempt.video_path,
            sha256=attempt.content_sha256,
            size=attempt.file_size,
            mtime_ns=attempt.file_mtime_ns,
        )
        if changed:
            attempt.finished.set()
            return self._record_failure(attempt, changed, permanent=True)
        if self._metered:
            attempted = self._attempted_steps(attempt)
            if attempted:
                attempt.attempted_steps = attempted
                request = self._request(attempt)
        try:
            try:
                if self._metered:
                    result = self.uploader.upload(  # type: ignore[call-arg]
                        request,
                        progress=self._progress_callback(attempt),
                        on_step=self._step_callback(attempt),
                        on_call=self._call_callback(attempt),
                    )
                else:
                    result = self.uploader.upload(
                        request,
                        progress=self._progress_callback(attempt),
                        on_step=self._step_callback(attempt),
                    )
            finally:
                # From here on the outcome is recorded by this thread; the run thread's
                # heartbeats leave the row alone (they would only race the final write).
                attempt.finished.set()
        except Exception as exc:
            return self._act(attempt, exc)
        if attempt.lost.is_set():
            return self._lost(attempt)
        return _Outcome(_Kind.SUCCEEDED, upload=result)

    def _act(self, attempt: _Attempt, exc: Exception) -> _Outcome:
        """Carry out :func:`.decide.decide` for what the upload raised (called in its
        ``except`` block, so a traceback can be logged)."""
        decision = decide(
            exc,
            AttemptView(attempts=attempt.attempts, lost=attempt.lost.is_set()),
            self.settings,
            now=self._now(),
            quota_timezone=self._quota_tz,
            rng=self._rng,
        )
        action = decision.action
        if action is Action.LOST:
            return self._lost(attempt)
        if action is Action.RELEASE:
            return self._release(attempt, decision.reason)
        if action is Action.PAUSE_CHANNEL:
            return self._pause_and_release(attempt, decision.reason, exc)
        if action is Action.UNAUTHORIZED:
            logger.error(
                "AUTHORIZATION FAILED uploading schedule %d (channel %s): %s. No more uploads are "
                "claimed this run; run `langflix-scheduler auth` to re-authorise",
                attempt.schedule_id,
                attempt.channel_id,
                exc,
            )
            out = self._release(attempt, decision.reason)
            return _Outcome(_Kind.UNAUTHORIZED, out.events, error=str(exc))
        if action is Action.DEFER_QUOTA:
            assert isinstance(exc, QuotaExhaustedError)
            return self._defer_quota(attempt, decision, exc.reason)
        if action is Action.DEFER_CHANNEL:
            assert isinstance(exc, UploadLimitExceededError)
            return self._defer_channel(attempt, decision, exc.reason)
        if decision.unexpected:
            logger.warning(
                "uploader raised %s for schedule %d; treated as transient",
                type(exc).__name__,
                attempt.schedule_id,
                exc_info=True,
            )
        return self._apply_failure(attempt, decision)

    def _pause_and_release(self, attempt: _Attempt, reason: str, exc: Exception) -> _Outcome:
        """The channel's refresh token was refused: pause the channel (its own short
        transaction, first, so no processor claims the released row meanwhile), then release
        the schedule without counting an attempt. Other channels go on uploading. When the
        pause cannot be written, the run stops claiming instead (``UNAUTHORIZED``)."""
        now = self._now()
        fresh = self._pause_channel(attempt.channel_id, reason, now)
        if fresh is None:
            out = self._release(attempt, reason)
            return _Outcome(_Kind.UNAUTHORIZED, out.events, error=str(exc))
        logger.error(
            "CHANNEL PAUSED: %s's token was refused uploading schedule %d (%s); its uploads wait "
            "until `langflix-scheduler auth --channel %s` succeeds",
            attempt.channel_id,
            attempt.schedule_id,
            exc,
            attempt.channel_id,
        )
        out = self._release(attempt, reason)
        if fresh:
            paused = self._event(
                ProcessorEventKind.CHANNEL_PAUSED,
                attempt,
                attempts=attempt.attempts,
                error=reason,
                at=now,
            )
            out.events.append(paused)
        return out
