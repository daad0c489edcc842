"""Recording successes (batched by the run thread, or one by one) and lease releases."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .. import ledger
from ..db import api_calls
from ..db.locking import (
    lock_quota_counts,
)
from ..db.models import QuotaUsage, Schedule
from ..db.statements import (
    COMPLETE_ROW as _COMPLETE_ROW,
)
from ..db.statements import (
    LOCK_DONE_ROWS as _LOCK_DONE_ROWS,
)
from ..db.statements import (
    RELEASE_AND_USE as _RELEASE_AND_USE,
)
from ..db.statements import (
    SET_QUOTA as _SET_QUOTA,
)
from ..db.statements import (
    rowcount as _rowcount,
)
from ..domain import UploadStatus
from ..errors import (
    OutcomeUnknownError,
    SchedulerError,
)
from ..quota import quota_date_of
from ..youtube.uploader import (
    UploadResult,
    UploadStep,
)
from ._state import (
    _COMPLETED,
    _FOLLOW_UP_VALUES,
    _FOLLOW_UPS,
    _MAX_RECORD_TRIES,
    _SCHEDULED,
    _UPLOADING,
    _Attempt,
    _Kind,
    _Outcome,
    _Regroup,
    _short,
)
from .events import ProcessorEventKind
from .metering import _Metering

logger = logging.getLogger(__name__)


class _Outcomes(_Metering):
    """Completions (batch and single), failures' counter changes, releases."""

    def _settle(self, finished: list[tuple[_Attempt, _Outcome]]) -> list[_Outcome]:
        """Record the successful uploads among ``finished`` (in one transaction); all outcomes."""
        out = [r for _, r in finished if r.kind is not _Kind.SUCCEEDED]
        done = [(a, r.upload) for a, r in finished if r.kind is _Kind.SUCCEEDED and r.upload]
        if done:
            out.extend(self._record_successes(done))
        return out

    def _record_one_success(
        self, attempt: _Attempt, result: UploadResult, deadline: float | None = None
    ) -> _Outcome:
        """:meth:`_record_success` with :meth:`_upload`'s error handling. Never raises."""
        return self._guarded(
            attempt, lambda: self._record_success(attempt, result, deadline=deadline)
        )

    def _record_successes(self, done: list[tuple[_Attempt, UploadResult]]) -> list[_Outcome]:
        """Record uploads that succeeded, all in one transaction, in the global lock order.

        First one summed ``UPDATE`` per quota row, in sorted key order (it takes the row's lock):
        the reserved buckets of the quota day each schedule was claimed with are released
        (floored at 0, which equals releasing each share in turn) and the consumed buckets are
        added to today's quota day. Then the schedule rows are locked by id and re-checked: when
        a lease is no longer this attempt's, or a quota day or reservation moved since the claim,
        the transaction is rolled back and redone without those schedules, which are recorded
        afterwards on their own (:meth:`_record_success` re-reads them and locks the right rows;
        a lost lease writes nothing). A missing quota row makes the retry lock (and create) the
        rows first. Each schedule's write is fenced on its lease token and status. Events are
        built here and fired by the caller, after the commit.
        """
        # One recording deadline for all of them: the run thread, which also sends the
        # heartbeats, is never held up longer than one recording budget.
        deadline = self._record_deadline()
        if any(a.claimed_qday is None for a, _ in done):
            return [self._record_one_success(a, r, deadline) for a, r in done]
        now = self._now()
        qday = quota_date_of(now, self._quota_tz)
        plans: dict[int, tuple[_Attempt, UploadResult, dict[str, int], list[str], int | None]] = {}
        ledger_rows: dict[int, list[api_calls.CallRecord]] = {}
        for attempt, result in done:
            with attempt.lock:
                steps = set(attempt.steps_done)
                steps |= {UploadStep(op) for op in result.operations if op in _FOLLOW_UP_VALUES}
                total = attempt.reported_total
            inserts = result.operations.count(UploadStep.INSERT.value)
            consumed = self._counted_at_completion(self._consumed(steps, inserts))
            ledger_rows[attempt.schedule_id] = self._completion_calls(
                attempt.schedule_id,
                attempt.channel_id,
                self._operations(steps, inserts),
                qday=qday,
                now=now,
                worker=attempt.token,
            )
            step_values = sorted(s.value for s in steps if s in _FOLLOW_UPS)
            plans[attempt.schedule_id] = (attempt, result, consumed, step_values, total)

        def deltas(ids: Iterable[int]) -> dict[tuple[date, str], list[int]]:
            """Per quota row: [reserved to release, used to add] for these schedules."""
            out: dict[tuple[date, str], list[int]] = {}
            for i in ids:
                attempt, _, consumed, _, _ = plans[i]
                assert attempt.claimed_qday is not None
                for bucket, amount in (attempt.claimed_reserved or {}).items():
                    out.setdefault((attempt.claimed_qday, bucket), [0, 0])[0] += int(amount)
                for bucket, amount in consumed.items():
                    out.setdefault((qday, bucket), [0, 0])[1] += amount
            return out

        def txn(conn: Connection, ids: list[int], fast: bool) -> dict[int, int]:
            """Record ``ids``; returns their attempts. Raises _Regroup when some cannot be."""
            change = deltas(ids)
            if not change:
                pass
            elif fast:
                # One summed UPDATE per quota row (sorted: the global lock order). Releasing the
                # sum at once, floored at 0, equals releasing each schedule's share in turn.
                hit = _rowcount(
                    conn.execute(
                        _RELEASE_AND_USE,
                        [
                            {
                                "k_project": self.api_project,
                                "k_qday": k[0],
                                "k_bucket": k[1],
                                "k_release": d[0],
                                "k_use": d[1],
                            }
                            for k, d in sorted(change.items())
                        ],
                    )
                )
                if hit != len(change):
                    raise _Regroup(set(), slow=True)  # a quota row is missing: create it
            else:
                quota = lock_quota_counts(
                    conn, self._db.dialect, self.api_project, change, self._policy.buckets
                )
                conn.execute(
                    _SET_QUOTA,
                    [
                        {
                            "k_project": self.api_project,
                            "k_qday": k[0],
                            "k_bucket": k[1],
                            "k_reserved": max(0, quota[k][0] - d[0]),
                            "k_used": quota[k][1] + d[1],
                        }
                        for k, d in sorted(change.items())
                    ],
                )
            rows = conn.execute(_LOCK_DONE_ROWS, {"k_ids": sorted(ids)}).all()
            drop = set(ids) - {row.id for row in rows}
            for row in rows:
                attempt = plans[row.id][0]
                if (
                    row.lease_owner != attempt.token
                    or row.upload_status != _UPLOADING
                    or row.quota_date != attempt.claimed_qday
                    or dict(row.reserved_quota or {}) != (attempt.claimed_reserved or {})
                ):
                    drop.add(row.id)
            if drop:
                raise _Regroup(drop)  # roll the counters back; record the others without them
            # The quota rows are locked (and ``used`` raised) above: append the ledger rows of
            # an uploader that does not report its calls, then record what each schedule's
            # calls cost, every attempt's, from the ledger.
            api_calls.insert_rows(conn, [c for i in sorted(ids) for c in ledger_rows[i]])
            costs = api_calls.cost_by_schedule(conn, ids)
            params: list[dict[str, Any]] = []
            for row in rows:
                attempt, result, _counted, step_values, total = plans[row.id]
                merged = costs.get(row.id, {})
                final_total = total if total is not None else row.bytes_total
                uploaded = row.bytes_uploaded
                if final_total is not None:
                    uploaded = max(uploaded, final_total)
                params.append(
                    {
                        "k_id": row.id,
                        "k_token": attempt.token,
                        "k_qday": qday,
                        "k_reserved": {},
                        "k_consumed": merged,
                        "k_video_id": result.video_id,
                        "k_steps": step_values,
                        "k_now": now,
                        "k_total": final_total,
                        "k_uploaded": uploaded,
                    }
                )
            if _rowcount(conn.execute(_COMPLETE_ROW, params)) != len(params):
                raise _Regroup(set(), slow=True)  # cannot happen under the row locks
            return {row.id: row.attempts for row in rows}

        ids = sorted(plans)
        alone: list[int] = []  # recorded one by one (lease lost or row moved since the claim)
        recorded: dict[int, int] = {}
        fast = True
        try:
            for _ in range(_MAX_RECORD_TRIES):
                if not ids:
                    break
                try:
                    recorded = self._db.run_core(
                        "record completed uploads",
                        lambda c, i=ids, f=fast: txn(c, i, f),  # type: ignore[misc]
                    )
                    ids = []
                except _Regroup as regroup:
                    alone.extend(regroup.drop)
                    ids = [i for i in ids if i not in regroup.drop]
                    fast = fast and not regroup.slow
            alone.extend(ids)  # still not recorded together: one by one
        except OutcomeUnknownError as exc:
            # The answer to the COMMIT was lost: the rows tell whether it committed.
            logger.warning("the answer to recording %d uploads was lost (%s)", len(ids), exc)
            recorded = self._completed_by_us(ids, plans, deadline)
            alone.extend(i for i in ids if i not in recorded)
        except SchedulerError as exc:
            logger.warning("recording %d uploads together failed (%s); one by one", len(done), exc)
            alone, recorded = sorted(plans), {}
        out = [self._record_one_success(plans[i][0], plans[i][1], deadline) for i in alone]
        for schedule_id, attempts in recorded.items():
            attempt, result = plans[schedule_id][0], plans[schedule_id][1]
            logger.info(
                "uploaded schedule %d as video %s (%s, publishAt %s)",
                attempt.schedule_id,
                result.video_id,
                result.privacy_status,
                result.publish_at.isoformat() if result.publish_at else "none",
            )
            out.append(
                _Outcome(
                    _Kind.UPLOADED,
                    [
                        self._event(
                            ProcessorEventKind.UPLOADED,
                            attempt,
                            attempts=attempts,
                            video_id=result.video_id,
                            at=now,
                        )
                    ],
                )
            )
        return out

    def _completed_by_us(
        self,
        ids: list[int],
        plans: Mapping[int, tuple[_Attempt, UploadResult, Any, Any, Any]],
        deadline: float,
    ) -> dict[int, int]:
        """Of ``ids``, those whose rows this batch's completion wrote (id -> attempts)."""
        try:
            rows = self._retry(
                "read schedules",
                lambda: self._read_rows(ids),
                deadline,
                idempotent=True,
            )
        except SchedulerError as exc:
            logger.warning("could not read the uploads back (%s); recording them one by one", exc)
            return {}
        out: dict[int, int] = {}
        for i in ids:
            attempt, result = plans[i][0], plans[i][1]
            row = rows.get(i)
            if row is not None and self._wrote(_COMPLETED, attempt.attempts, None, result.video_id)(
                row
            ):
                out[i] = row.attempts
        return out

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
        step_values = sorted(s.value for s in steps if s in _FOLLOW_UPS)
        counted = self._counted_at_completion(consumed)
        operations = self._operations(steps, inserts)

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
            row.completed_steps = step_values
            row.uploaded_at = now
            row.updated_at = now
            row.heartbeat_at = now
            row.lease_owner = None
            row.lease_expires_at = None
            row.next_attempt_at = None
            row.last_error = _short(note) if note else None
            if attempts is not None:
                row.attempts = attempts
            final_total = total if total is not None else row.bytes_total
            if final_total is not None:
                row.bytes_total = final_total
                row.bytes_uploaded = max(row.bytes_uploaded, final_total)

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
            row.lease_owner = None
            row.lease_expires_at = None
            row.next_attempt_at = None
            row.updated_at = now

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
            "lease_owner": None,
            "lease_expires_at": None,
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
