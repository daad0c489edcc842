"""The quota ledger seen from an upload: calls written before they are sent, refusals
taken back, and the calls an uploader that does not report them is charged at completion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime

from ..db import api_calls
from ..errors import (
    OutcomeUnknownError,
    SchedulerError,
    TransientUploadError,
)
from ..quota import quota_date_of
from ..youtube.uploader import (
    ApiCallReport,
    CallCallback,
    CallPhase,
    UploadStep,
)
from ._state import (
    _FOLLOW_UPS,
    _Attempt,
    _LeaseLost,
)
from .lease import _Leases

logger = logging.getLogger(__name__)


class _Metering(_Leases):
    """Quota-ledger callbacks and completion charges."""

    def _attempted_steps(self, attempt: _Attempt) -> frozenset[UploadStep]:
        """Follow-up steps not done whose call an earlier attempt sent (or may have sent): the
        ledger row is written before a call is sent, so it is the "attempted" marker. When the
        ledger cannot be read, every pending follow-up counts as attempted (a check costs one
        unit; a duplicate playlist entry cannot be taken back)."""
        pending = {UploadStep.PLAYLIST} - attempt.steps_done
        if not attempt.metadata.get("playlist_id") or not pending:
            return frozenset()
        try:
            sent = self._retry(
                "read the quota ledger",
                lambda: self._db.run_core(
                    "read the quota ledger",
                    lambda c: api_calls.attempted_operations(c, attempt.schedule_id),
                    read_only=True,
                ),
                self._record_deadline(),
                idempotent=True,
            )
        except SchedulerError as exc:
            logger.warning(
                "could not read the quota ledger of schedule %d (%s); checking the playlist "
                "before inserting",
                attempt.schedule_id,
                exc,
            )
            return frozenset(pending)
        return frozenset(s for s in pending if s.value in sent)

    def _call_callback(self, attempt: _Attempt) -> CallCallback:
        """``on_call`` for one attempt: each quota-bearing call is written to the ledger (and
        ``used``) before it is sent; a quota refusal is taken back off. A call that cannot be
        written is not sent (the upload stops as a transient failure)."""

        def on_call(report: ApiCallReport) -> None:
            if report.phase is CallPhase.SENDING:
                if attempt.lost.is_set():
                    raise _LeaseLost
                self._ledger_record(attempt, report)
            elif report.phase is CallPhase.REFUSED:
                self._ledger_refuse(attempt, report)

        return on_call

    def _ledger_record(self, attempt: _Attempt, report: ApiCallReport) -> None:
        priced = self._policy.costs.get(report.operation)
        if priced is None:
            logger.warning(
                "quota policy %s has no cost for %s; the call is not counted",
                self._policy.name,
                report.operation,
            )
            return
        now = self._now()
        call = api_calls.CallRecord(
            api_project=attempt.api_project,
            quota_date=quota_date_of(now, self._quota_tz),
            bucket=priced[0],
            operation=report.operation,
            cost=priced[1],
            sent_at=now,
            call_key=api_calls.new_call_key(),
            schedule_id=attempt.schedule_id,
            channel_id=attempt.channel_id,
            worker_id=attempt.token,
        )
        self._write_call(call)
        with attempt.lock:
            attempt.call_keys[report.call_id] = call.call_key

    def _write_call(self, call: api_calls.CallRecord) -> None:
        """Append ``call`` to the ledger (and ``used``), retried until the recording deadline;
        after a lost COMMIT answer its call key tells whether it was written.

        Raises:
            TransientUploadError: it could not be written (so the call is not sent: an uncounted
                call would let the scheduler book more than YouTube allows that day).
        """
        limits = self._policy.buckets
        deadline = self._record_deadline()
        failed = f"could not record {call.operation} in the quota ledger"
        while True:
            try:
                self._retry(
                    "record an API call",
                    lambda: self._db.run_core(
                        "record an API call",
                        lambda c: api_calls.record_call(c, self._db.dialect, call, limits),
                    ),
                    deadline,
                )
                return
            except OutcomeUnknownError as exc:
                # The answer to the COMMIT was lost: the call key tells whether it committed.
                try:
                    written = self._retry(
                        "read the quota ledger",
                        lambda: self._db.run_core(
                            "read the quota ledger",
                            lambda c: api_calls.call_exists(c, call.call_key),
                            read_only=True,
                        ),
                        deadline,
                        idempotent=True,
                    )
                except SchedulerError as read_exc:
                    raise TransientUploadError(
                        f"{failed}: {read_exc}", reason="storageError"
                    ) from exc
                if written:
                    return
                if time.monotonic() >= deadline:
                    raise TransientUploadError(f"{failed}: {exc}", reason="storageError") from exc
            except SchedulerError as exc:
                raise TransientUploadError(f"{failed}: {exc}", reason="storageError") from exc

    def _ledger_refuse(self, attempt: _Attempt, report: ApiCallReport) -> None:
        with attempt.lock:
            key = attempt.call_keys.get(report.call_id)
        if key is None:
            return
        limits = self._policy.buckets
        try:
            self._retry(
                "refund a refused API call",
                lambda: self._db.run_core(
                    "refund a refused API call",
                    lambda c: api_calls.refuse_call(c, self._db.dialect, key, limits),
                ),
                self._record_deadline(),
                idempotent=True,  # setting cost 0 on a 'sent' row twice changes nothing
            )
        except SchedulerError as exc:
            # Over-counting is safe (it can only refuse a booking YouTube would have taken).
            logger.warning(
                "could not mark %s of schedule %d as refused (%s); the ledger over-counts it",
                report.operation,
                attempt.schedule_id,
                exc,
            )

    def _consumed(self, steps: Iterable[UploadStep], inserts: int) -> dict[str, int]:
        return self._policy.cost(self._operations(steps, inserts))

    @staticmethod
    def _operations(steps: Iterable[UploadStep], inserts: int) -> list[str]:
        ops = [UploadStep.INSERT.value] * max(1, inserts)
        ops += [s.value for s in _FOLLOW_UPS if s in set(steps)]
        return ops

    def _counted_at_completion(self, consumed: Mapping[str, int]) -> dict[str, int]:
        """What a completion adds to ``used``: nothing when the uploader reported each call to
        the ledger as it was sent (already counted), else ``consumed``."""
        return {} if self._metered else dict(consumed)

    def _completion_calls(
        self,
        schedule_id: int,
        channel_id: str | None,
        operations: Iterable[str],
        *,
        qday: date,
        now: datetime,
        worker: str | None,
    ) -> list[api_calls.CallRecord]:
        """Ledger rows for an uploader that does not report its calls: what the upload says it
        did, on the day it completed (as ``used`` always counted them)."""
        if self._metered:
            return []
        out = []
        for op in operations:
            bucket, cost = self._policy.costs[op]
            out.append(
                api_calls.CallRecord(
                    api_project=self.api_project,
                    quota_date=qday,
                    bucket=bucket,
                    operation=op,
                    cost=cost,
                    sent_at=now,
                    call_key=api_calls.new_call_key(),
                    schedule_id=schedule_id,
                    channel_id=channel_id,
                    worker_id=worker,
                )
            )
        return out
