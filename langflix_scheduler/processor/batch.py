"""Recording successes (batched by the run thread, or one by one) and lease releases."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..db import api_calls, completions
from ..db.types import Connection
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
    _UPLOADING,
    _Attempt,
    _Kind,
    _Outcome,
    _Regroup,
)
from .events import ProcessorEventKind
from .outcomes import _Outcomes
from .verdict import first_check_at

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Plan:
    """What recording one successful upload writes."""

    attempt: _Attempt
    result: UploadResult
    #: Added to ``used`` at completion (nothing for an uploader that reports its calls).
    consumed: dict[str, int]
    step_values: list[str]
    total: int | None
    #: Ledger rows appended at completion (uploaders that do not report their calls).
    calls: list[api_calls.CallRecord]


class _Batch(_Outcomes):
    """The batched completion of successful uploads."""

    def _settle(self, finished: list[tuple[_Attempt, _Outcome]]) -> list[_Outcome]:
        """Record the successful uploads among ``finished`` (in one transaction); all outcomes."""
        out = [r for _, r in finished if r.kind is not _Kind.SUCCEEDED]
        done = [(a, r.upload) for a, r in finished if r.kind is _Kind.SUCCEEDED and r.upload]
        if done:
            out.extend(self._record_successes(done))
        return out

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
        plans = {a.schedule_id: self._plan(a, r, qday, now) for a, r in done}
        recorded, alone = self._record_batch(plans, qday, now, deadline)
        out = [self._record_one_success(plans[i].attempt, plans[i].result, deadline) for i in alone]
        out += [self._uploaded(plans[i], attempts, now) for i, attempts in recorded.items()]
        return out

    def _plan(self, attempt: _Attempt, result: UploadResult, qday: date, now: datetime) -> _Plan:
        with attempt.lock:
            steps = set(attempt.steps_done)
            steps |= {UploadStep(op) for op in result.operations if op in _FOLLOW_UP_VALUES}
            total = attempt.reported_total
        inserts = result.operations.count(UploadStep.INSERT.value)
        return _Plan(
            attempt=attempt,
            result=result,
            consumed=self._counted_at_completion(self._consumed(steps, inserts)),
            step_values=sorted(s.value for s in steps if s in _FOLLOW_UPS),
            total=total,
            calls=self._completion_calls(
                attempt.schedule_id,
                attempt.channel_id,
                self._operations(steps, inserts),
                qday=qday,
                now=now,
                worker=attempt.token,
            ),
        )

    def _record_batch(
        self, plans: Mapping[int, _Plan], qday: date, now: datetime, deadline: float
    ) -> tuple[dict[int, int], list[int]]:
        """Record as many of ``plans`` together as can be: ``(recorded id -> attempts, ids left
        to record one by one)``. Rolled-back rounds drop the rows that moved and retry."""
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
                        lambda c, i=ids, f=fast: self._batch_txn(c, plans, i, f, qday, now),  # type: ignore[misc]
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
            logger.warning("recording %d uploads together failed (%s); one by one", len(plans), exc)
            alone, recorded = sorted(plans), {}
        return recorded, alone

    @staticmethod
    def _deltas(
        plans: Mapping[int, _Plan], ids: Iterable[int], qday: date
    ) -> dict[tuple[date, str], list[int]]:
        """Per quota row: [reserved to release, used to add] for these schedules."""
        out: dict[tuple[date, str], list[int]] = {}
        for i in ids:
            plan = plans[i]
            attempt = plan.attempt
            assert attempt.claimed_qday is not None
            for bucket, amount in (attempt.claimed_reserved or {}).items():
                out.setdefault((attempt.claimed_qday, bucket), [0, 0])[0] += int(amount)
            for bucket, amount in plan.consumed.items():
                out.setdefault((qday, bucket), [0, 0])[1] += amount
        return out

    def _batch_txn(
        self,
        conn: Connection,
        plans: Mapping[int, _Plan],
        ids: list[int],
        fast: bool,
        qday: date,
        now: datetime,
    ) -> dict[int, int]:
        """Record ``ids``; returns their attempts. Raises _Regroup when some cannot be."""
        change = self._deltas(plans, ids, qday)
        if change:
            self._batch_counters(conn, change, fast)
        rows = completions.lock_done_rows(conn, ids)
        drop = set(ids) - {row.id for row in rows}
        drop |= {row.id for row in rows if self._moved(row, plans[row.id].attempt)}
        if drop:
            raise _Regroup(drop)  # roll the counters back; record the others without them
        # The quota rows are locked (and ``used`` raised) above: append the ledger rows of
        # an uploader that does not report its calls, then record what each schedule's
        # calls cost, every attempt's, from the ledger.
        api_calls.insert_rows(conn, [c for i in sorted(ids) for c in plans[i].calls])
        costs = api_calls.cost_by_schedule(conn, ids)
        params = [self._completion_params(row, plans[row.id], costs, qday, now) for row in rows]
        if completions.complete_rows(conn, params) != len(params):
            raise _Regroup(set(), slow=True)  # cannot happen under the row locks
        completions.append_uploaded(conn, params, self.worker_id)
        return {row.id: row.attempts for row in rows}

    def _batch_counters(
        self, conn: Connection, change: Mapping[tuple[date, str], list[int]], fast: bool
    ) -> None:
        """Release the reservations and add the use, per quota row in sorted key order."""
        if fast:
            # One summed UPDATE per quota row (sorted: the global lock order). Releasing the
            # sum at once, floored at 0, equals releasing each schedule's share in turn.
            if not completions.release_and_use(conn, self.api_project, change):
                raise _Regroup(set(), slow=True)  # a quota row is missing: create it
            return
        completions.set_quota(
            conn, self._db.dialect, self.api_project, change, self._policy.buckets
        )

    @staticmethod
    def _moved(row: Any, attempt: _Attempt) -> bool:
        """Is a locked row no longer this attempt's, or moved since the claim?"""
        return (
            row.lease_owner != attempt.token
            or row.upload_status != _UPLOADING
            or row.quota_date != attempt.claimed_qday
            or dict(row.reserved_quota or {}) != (attempt.claimed_reserved or {})
        )

    @staticmethod
    def _completion_params(
        row: Any, plan: _Plan, costs: Mapping[int, dict[str, int]], qday: date, now: datetime
    ) -> dict[str, Any]:
        final_total = plan.total if plan.total is not None else row.bytes_total
        uploaded = row.bytes_uploaded
        if final_total is not None:
            uploaded = max(uploaded, final_total)
        return {
            "k_id": row.id,
            "k_token": plan.attempt.token,
            "k_qday": qday,
            "k_reserved": {},
            "k_consumed": costs.get(row.id, {}),
            "k_video_id": plan.result.video_id,
            "k_steps": plan.step_values,
            "k_now": now,
            "k_total": final_total,
            "k_uploaded": uploaded,
            "k_next_check": first_check_at(now),
        }

    def _uploaded(self, plan: _Plan, attempts: int, now: datetime) -> _Outcome:
        attempt, result = plan.attempt, plan.result
        logger.info(
            "uploaded schedule %d as video %s (%s, publishAt %s)",
            attempt.schedule_id,
            result.video_id,
            result.privacy_status,
            result.publish_at.isoformat() if result.publish_at else "none",
        )
        event = self._event(
            ProcessorEventKind.UPLOADED,
            attempt,
            attempts=attempts,
            video_id=result.video_id,
            at=now,
        )
        return _Outcome(_Kind.UPLOADED, [event])

    def _completed_by_us(
        self, ids: list[int], plans: Mapping[int, _Plan], deadline: float
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
            plan = plans[i]
            row = rows.get(i)
            wrote = self._wrote(_COMPLETED, plan.attempt.attempts, None, plan.result.video_id)
            if row is not None and wrote(row):
                out[i] = row.attempts
        return out
