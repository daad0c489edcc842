"""Failures: retry or give up (the decision is :func:`.decide.failure_decision`); giving up
asks a stored upload session first (:mod:`langflix_scheduler._give_up`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .. import history
from .._give_up import GiveUp, Verdict, decide_give_up
from ..db import timeline
from ..db.models import Schedule
from ..db.schedules import LEASE_CLEARED, clear_lease
from ..db.types import Session
from ..quota import quota_date_of
from ..youtube.uploader import (
    SessionProbe,
    UploadStep,
)
from ._state import (
    _COMPLETED,
    _FAILED,
    _NEEDS_REVIEW,
    _SCHEDULED,
    _Attempt,
    _Kind,
    _Outcome,
    _short,
)
from .batch import _Batch
from .decide import Action, Decision, failure_decision
from .events import ProcessorEvent, ProcessorEventKind

logger = logging.getLogger(__name__)


class _Failures(_Batch):
    """Retries and terminal outcomes (failed, completed-after-all, needs_review)."""

    def _ask_session(
        self, session_uri: str | None, video_path: str
    ) -> tuple[SessionProbe | None, str | None]:
        """Ask a stored upload session how far it got (no database lock is held here):
        ``(answer, None)``, or ``(None, why asking failed)``; ``(None, None)``: no prober."""
        if session_uri is None or self._prober is None:
            return None, None
        try:
            return self._prober.probe_session(session_uri, video_path), None
        except Exception as exc:  # any failure to ask means "unknown"
            return None, f"{type(exc).__name__}: {exc}"

    def _terminal(
        self,
        *,
        schedule_id: int,
        video_id: str | None,
        steps: Iterable[UploadStep],
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
        session_uri: str | None = None,
        video_path: str = "",
    ) -> tuple[_Kind, ProcessorEvent] | None:
        """Give up on a schedule. A schedule that opened an upload session but has no video id
        asks that session first (see :mod:`langflix_scheduler._give_up`): ``completed`` when
        the video exists, ``failed`` when it certainly does not, else ``needs_review``."""
        if video_id is None:
            probe, probe_error = self._ask_session(session_uri, video_path)
            decision = decide_give_up(
                video_id=None, session_uri=session_uri, probe=probe, probe_error=probe_error
            )
        else:
            decision = GiveUp(verdict=Verdict.COMPLETE, video_id=video_id)
        if decision.verdict is Verdict.COMPLETE:
            return self._give_up_uploaded(
                schedule_id,
                decision,
                found=video_id is None,
                steps=steps,
                allowed=allowed,
                reason=reason,
                attempts=attempts,
            )
        if decision.verdict is Verdict.REVIEW:
            return self._give_up_unknown(
                schedule_id, decision, allowed=allowed, reason=reason, attempts=attempts
            )
        if decision.why:
            reason = f"{reason}; {decision.why}"
        now = self._now()
        failed = self._durable(
            "record failed upload",
            schedule_id,
            lambda: self._fail(
                schedule_id, allowed=allowed, reason=reason, attempts=attempts, now=now
            ),
            pending=allowed,
            settled=self._wrote(_FAILED, attempts, reason),
        )
        if failed is None:
            return None
        logger.error("schedule %d failed after %d attempts: %s", schedule_id, attempts, reason)
        return _Kind.FAILED, self._event(
            ProcessorEventKind.FAILED, failed, attempts=attempts, error=reason, at=now
        )

    def _give_up_uploaded(
        self,
        schedule_id: int,
        decision: GiveUp,
        *,
        found: bool,
        steps: Iterable[UploadStep],
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
    ) -> tuple[_Kind, ProcessorEvent] | None:
        """The video exists: ``completed`` with a note (follow-up steps not done stay undone,
        as for any schedule whose attempts are spent); the reserved quota is released."""
        now = self._now()
        video_id = decision.video_id
        assert video_id is not None
        steps = set(steps)
        if found:
            note = f"video found through its upload session after: {reason}"
        else:
            note = f"video uploaded, but a follow-up step failed: {reason}"
        done = self._durable(
            "record completed upload",
            schedule_id,
            lambda: self._complete(
                None,
                video_id=video_id,
                consumed=self._consumed(steps, 1),
                steps=steps,
                total=None,
                qday=quota_date_of(now, self._quota_tz),
                now=now,
                note=note,
                schedule_id=schedule_id,
                allowed=allowed,
                attempts=attempts,
            ),
            pending=allowed,
            settled=self._wrote(_COMPLETED, attempts, note, video_id),
        )
        if done is None:
            return None
        logger.warning("schedule %d: video %s is on YouTube; %s", schedule_id, video_id, note)
        return _Kind.UPLOADED, self._event(
            ProcessorEventKind.UPLOADED,
            done,
            attempts=attempts,
            video_id=video_id,
            error=reason,
            at=now,
        )

    def _give_up_unknown(
        self,
        schedule_id: int,
        decision: GiveUp,
        *,
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
    ) -> tuple[_Kind, ProcessorEvent] | None:
        """Whether the video is on YouTube is unknown: ``needs_review``. Slot, day count and
        quota reservation are kept, the lease is cleared, and nothing claims the row again."""
        now = self._now()
        note = (
            f"{reason}; {decision.why}, so whether the video reached YouTube is unknown: look for "
            "it on the channel before booking it again (it keeps its slot and quota meanwhile)"
        )

        def apply(session: Session, row: Schedule, days: Any, quota: Any) -> None:
            row.upload_status = _NEEDS_REVIEW
            row.attempts = attempts
            row.last_error = _short(note)
            clear_lease(row)
            row.next_attempt_at = None
            row.updated_at = now
            entry = history.problem(
                row.id, kind="needs_review", at=now, error=note, worker=self.worker_id
            )
            timeline.append(session.connection(), entry)

        row = self._durable(
            "record upload for review",
            schedule_id,
            lambda: self._with_counter_locks(
                "record upload for review",
                schedule_id,
                allowed=allowed,
                new_keys=lambda _r: (),
                apply=apply,
            ),
            pending=allowed,
            settled=self._wrote(_NEEDS_REVIEW, attempts, note),
        )
        if row is None:
            return None
        logger.error("schedule %d NEEDS REVIEW: %s", schedule_id, note)
        return _Kind.REVIEW, self._event(
            ProcessorEventKind.NEEDS_REVIEW, row, attempts=attempts, error=note, at=now
        )

    def _record_failure(self, attempt: _Attempt, reason: str, *, permanent: bool) -> _Outcome:
        """Retry or give up (see :func:`.decide.failure_decision`)."""
        decision = failure_decision(
            reason,
            permanent=permanent,
            attempts=attempt.attempts,
            settings=self.settings,
            now=self._now(),
            rng=self._rng,
        )
        return self._apply_failure(attempt, decision)

    def _apply_failure(self, attempt: _Attempt, decision: Decision) -> _Outcome:
        if decision.action is Action.GIVE_UP:
            return self._give_up(attempt, decision)
        return self._retry_later(attempt, decision)

    def _give_up(self, attempt: _Attempt, decision: Decision) -> _Outcome:
        with attempt.lock:
            video_id = attempt.video_id
            steps = set(attempt.steps_done)
        done = self._terminal(
            schedule_id=attempt.schedule_id,
            video_id=video_id,
            steps=steps,
            allowed=self._owned_by(attempt),
            reason=decision.reason,
            attempts=decision.attempts,
            session_uri=attempt.session_uri,
            video_path=attempt.video_path,
        )
        if done is None:
            return self._lost(attempt)
        return _Outcome(done[0], [done[1]], error=decision.reason)

    def _retry_later(self, attempt: _Attempt, decision: Decision) -> _Outcome:
        with attempt.lock:
            video_id = attempt.video_id
        now, attempts, reason, retry_at = (
            decision.at,
            decision.attempts,
            decision.reason,
            decision.retry_at,
        )
        assert retry_at is not None
        entry = history.waiting(
            attempt.schedule_id,
            kind="retry",
            at=now,
            error=reason,
            next_at=retry_at,
            worker=self.worker_id,
        )
        written = self._durable(
            "record upload retry",
            attempt.schedule_id,
            lambda: (
                self._fenced_update(
                    "record upload retry",
                    attempt,
                    {
                        "upload_status": _SCHEDULED,
                        "attempts": attempts,
                        "next_attempt_at": retry_at,
                        "last_error": _short(reason),
                        **LEASE_CLEARED,
                        "updated_at": now,
                    },
                    entry,
                )
                or None
            ),
            pending=self._owned_by(attempt),
            settled=self._wrote(_SCHEDULED, attempts, reason),
        )
        if written is None:
            return self._lost(attempt)
        logger.warning(
            "schedule %d: attempt %d of %d failed (%s); retrying at %s",
            attempt.schedule_id,
            attempts,
            self.max_attempts,
            reason,
            retry_at.isoformat(),
        )
        return _Outcome(
            _Kind.RETRIED,
            [
                self._event(
                    ProcessorEventKind.RETRIED,
                    attempt,
                    attempts=attempts,
                    video_id=video_id,
                    error=reason,
                    next_attempt_at=retry_at,
                    at=now,
                )
            ],
            error=reason,
        )
