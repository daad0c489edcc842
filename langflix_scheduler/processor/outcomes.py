"""Recording successes (batched by the run thread, or one by one) and lease releases."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from .. import history, ledger
from ..db import api_calls, timeline
from ..db.models import QuotaUsage, Schedule
from ..db.schedules import LEASE_CLEARED, clear_lease
from ..db.types import Connection, Session
from ..domain import UploadStatus, VideoState
from ..quota import quota_date_of
from ..youtube.uploader import (
    UploadResult,
    UploadStep,
)
from ._state import (
    _COMPLETED,
    _FOLLOW_UP_VALUES,
    _FOLLOW_UPS,
    _SCHEDULED,
    _UPLOADING,
    _Attempt,
    _Kind,
    _Outcome,
    _short,
)
from .events import ProcessorEventKind
from .metering import _Metering
from .verdict import first_check_at

logger = logging.getLogger(__name__)


class _Outcomes(_Metering):
    """Completions (batch and single), failures' counter changes, releases."""

    def _record_one_success(
        self, attempt: _Attempt, result: UploadResult, deadline: float | None = None
    ) -> _Outcome:
        """:meth:`_record_success` with :meth:`_upload`'s error handling. Never raises."""
        return self._guarded(
            attempt, lambda: self._record_success(attempt, result, deadline=deadline)
        )

    def _record_success(
        self, attempt: _Attempt, result: UploadResult, *, deadline: float | None = None
    ) -> _Outcome:
        now = self._now()
        qday = quota_date_of(now, self._quota_tz)
        with attempt.lock:
            steps = set(attempt.steps_done)
            steps |= {UploadStep(op) for op in result.operations if op in _FOLLOW_UP_VALUES}
            total = attempt.reported_total
        inserts = result.operations.count(UploadStep.INSERT.value)
        consumed = self._consumed(steps, inserts)
        done = self._durable(
            "record completed upload",
            attempt.schedule_id,
            lambda: self._complete(
                attempt,
                video_id=result.video_id,
                consumed=consumed,
                inserts=inserts,
                steps=steps,
                total=total,
                qday=qday,
                now=now,
                note=None,
            ),
            pending=self._owned_by(attempt),
            settled=self._wrote(_COMPLETED, attempt.attempts, None, result.video_id),
            deadline=deadline,
        )
        if done is None:
            return self._lost(attempt)
        logger.info(
            "uploaded schedule %d as video %s (%s, publishAt %s)",
            attempt.schedule_id,
            result.video_id,
            result.privacy_status,
            result.publish_at.isoformat() if result.publish_at else "none",
        )
        return _Outcome(
            _Kind.UPLOADED,
            [
                self._event(
                    ProcessorEventKind.UPLOADED,
                    attempt,
                    attempts=done.attempts,
                    video_id=result.video_id,
                    at=now,
                )
            ],
        )

    def _complete(
        self,
        attempt: _Attempt | None,
        *,
        video_id: str,
        consumed: Mapping[str, int],
        steps: Iterable[UploadStep],
        total: int | None,
        qday: date,
        now: datetime,
        note: str | None,
        schedule_id: int | None = None,
        allowed: Callable[[Schedule], bool] | None = None,
        attempts: int | None = None,
        inserts: int = 1,
    ) -> Schedule | None:
        steps = set(steps)
        counted = self._counted_at_completion(consumed)
        apply = self._completion(
            video_id=video_id,
            counted=counted,
            operations=self._operations(steps, inserts),
            step_values=sorted(s.value for s in steps if s in _FOLLOW_UPS),
            total=total,
            qday=qday,
            now=now,
            note=note,
            attempts=attempts,
        )
        if attempt is not None:
            schedule_id = attempt.schedule_id
            allowed = self._owned_by(attempt)
        assert schedule_id is not None
        assert allowed is not None
        return self._with_counter_locks(
            "record completed upload",
            schedule_id,
            allowed=allowed,
            new_keys=lambda _row: [(qday, b) for b in counted],
            apply=apply,
        )

    def _completion(
        self,
        *,
        video_id: str,
        counted: Mapping[str, int],
        operations: list[str],
        step_values: list[str],
        total: int | None,
        qday: date,
        now: datetime,
        note: str | None,
        attempts: int | None,
    ) -> ledger.Apply:
        """The change a completion makes to its locked row and counters: reservation released,
        ``used`` raised by ``counted`` on ``qday``, ledger rows appended (uploaders that do not
        report their calls), the row ``completed`` with its cost from the ledger."""

        def apply(
            session: Session, row: Schedule, days: Any, quota: Mapping[tuple[date, str], QuotaUsage]
        ) -> None:
            ledger.release_reservation(quota, row.quota_date, dict(row.reserved_quota or {}))
            for bucket, amount in counted.items():
                quota[(qday, bucket)].used += amount
            conn = session.connection()
            api_calls.insert_rows(
                conn,
                self._completion_calls(
                    row.id,
                    row.channel_id,
                    operations,
                    qday=qday,
                    now=now,
                    worker=row.lease_owner,
                ),
            )
            merged = api_calls.cost_by_schedule(conn, [row.id])[row.id]
            row.quota_date = qday
            row.reserved_quota = {}
            row.consumed_quota = merged
            row.upload_status = UploadStatus.COMPLETED.value
            row.youtube_video_id = video_id
            row.upload_session_uri = None  # a secret that is no use once the video exists
            row.completed_steps = step_values
            row.uploaded_at = now
            row.updated_at = now
            row.heartbeat_at = now
            clear_lease(row)
            row.next_attempt_at = None
            row.last_error = _short(note) if note else None
            if attempts is not None:
                row.attempts = attempts
            final_total = total if total is not None else row.bytes_total
            if final_total is not None:
                row.bytes_total = final_total
                row.bytes_uploaded = max(row.bytes_uploaded, final_total)
            _start_video_life(conn, row, video_id, now, self.worker_id)

        return apply

    @staticmethod
    def _owned_by(attempt: _Attempt) -> Callable[[Schedule], bool]:
        return lambda row: row.lease_owner == attempt.token and row.upload_status == _UPLOADING

    def _fail(
        self,
        schedule_id: int,
        *,
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
        now: datetime,
    ) -> Schedule | None:
        """``failed``: slot freed, day count decremented, reserved quota released."""

        def apply(
            session: Session, row: Schedule, days: Any, quota: Mapping[tuple[date, str], QuotaUsage]
        ) -> None:
            if row.slot_key is not None:
                ledger.count_down(days[row.publish_date], row.video_type)
            ledger.release_reservation(quota, row.quota_date, dict(row.reserved_quota or {}))
            row.upload_status = UploadStatus.FAILED.value
            row.slot_key = None
            row.fingerprint_key = None
            row.reserved_quota = {}
            row.attempts = attempts
            row.last_error = _short(reason)
            clear_lease(row)
            row.next_attempt_at = None
            row.updated_at = now
            entry = history.problem(
                row.id, kind="failed", at=now, error=reason, worker=self.worker_id
            )
            timeline.append(session.connection(), entry)

        return self._with_counter_locks(
            "record failed upload",
            schedule_id,
            allowed=allowed,
            new_keys=lambda _r: (),
            apply=apply,
        )

    def _release(self, attempt: _Attempt, reason: str) -> _Outcome:
        """Back to ``scheduled`` at once, no attempt counted (stop, authorization)."""
        now = self._now()
        uri, sent, total = attempt.progress_snapshot()
        values: dict[str, Any] = {
            "upload_status": _SCHEDULED,
            **LEASE_CLEARED,
            "last_error": _short(reason),
            "updated_at": now,
        }
        values.update(self._progress_values(uri, sent, total))
        written = self._durable(
            "release upload lease",
            attempt.schedule_id,
            lambda: self._fenced_update("release upload lease", attempt, values) or None,
            pending=self._owned_by(attempt),
            settled=self._wrote(_SCHEDULED, attempt.attempts, reason),
        )
        if written is None:
            return self._lost(attempt)
        logger.info("schedule %d released: %s", attempt.schedule_id, reason)
        return _Outcome(_Kind.RELEASED)


def _start_video_life(
    conn: Connection, row: Schedule, video_id: str, now: datetime, actor: str
) -> None:
    """The video exists: ``uploaded``, first checked on YouTube soon (same transaction)."""
    row.video_state = VideoState.UPLOADED.value
    row.youtube_privacy = None
    row.youtube_publish_at = None
    row.video_problem = None
    row.checked_at = None
    row.next_check_at = first_check_at(now)
    row.check_count = 0
    timeline.append(
        conn,
        timeline.TimelineEntry(
            schedule_id=row.id, at=now, kind="uploaded", actor=actor, detail=f"video {video_id}"
        ),
    )
