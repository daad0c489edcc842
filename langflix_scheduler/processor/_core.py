"""State and helpers shared by the processor's parts: clock, events, durable recording."""

from __future__ import annotations

import concurrent.futures
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from .. import ledger
from .._backoff import retry_until
from .._time import ensure_aware
from ..db import channels as channels_db
from ..db import claims, timeline
from ..db.engine import Database
from ..db.models import Schedule
from ..db.schedules import read_schedules
from ..db.statements import (
    rowcount as _rowcount,
)
from ..db.types import Session
from ..errors import (
    OutcomeUnknownError,
    SchedulerError,
)
from ..manager import ScheduleManager
from ..quota import QuotaPolicy
from ..youtube.uploader import (
    SessionProber,
    Uploader,
)
from ._state import (
    _MAX_RECORD_TRIES,
    _RECORD_RETRY_BASE,
    _RECORD_RETRY_CAP,
    _UPLOADING,
    _Attempt,
    _Kind,
    _LeaseLost,
    _Outcome,
    _short,
)
from .events import ProcessorEvent, ProcessorEventKind
from .settings import ProcessorSettings

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class _Core:
    """State and helpers every part of :class:`~.loop.UploadProcessor` uses.

    The attributes are set by ``UploadProcessor.__init__``; each part (lease, metering,
    outcomes, failures, deferral, rescue, upload, claim, runs) is a class in its own module that
    adds one concern's methods.
    """

    manager: ScheduleManager
    uploader: Uploader
    settings: ProcessorSettings
    worker_id: str
    max_concurrent_uploads: int
    per_channel_limit: int
    lease: timedelta
    heartbeat_interval: timedelta
    max_attempts: int
    upload_lead_time: timedelta
    batch_size: int
    retry_base: timedelta
    progress_interval: timedelta
    exclusive: bool
    channels: tuple[str, ...] | None
    api_project: str
    _on_event: Callable[[ProcessorEvent], None] | None
    _on_claim: Callable[[float], None] | None
    _clock: Callable[[], datetime]
    _db: Database
    _policy: QuotaPolicy
    _quota_tz: str
    _rng: random.Random
    _prober: SessionProber | None
    _record_budget: timedelta
    _metered: bool
    _sleep: Callable[[float], None]
    _last_run_id: int
    _state_lock: threading.Lock
    _run_lock: threading.Lock
    _active: dict[int, _Attempt]
    _claim_sql_cache: claims.ClaimStatements | None
    _executor: concurrent.futures.ThreadPoolExecutor | None
    _stop: threading.Event
    _external_stop: threading.Event | None
    _closed: bool

    def _now(self) -> datetime:
        return ensure_aware(self._clock())

    def _stopping(self) -> bool:
        external = self._external_stop
        return self._stop.is_set() or (external is not None and external.is_set())

    def _emit(self, events: Iterable[ProcessorEvent]) -> None:
        if self._on_event is None:
            return
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                logger.exception(
                    "on_event callback failed for %s of schedule %d; processing continues",
                    event.kind.value,
                    event.schedule_id,
                )

    def _report_claim_time(self, seconds: float) -> None:
        if self._on_claim is None:
            return
        try:
            self._on_claim(seconds)
        except Exception:
            logger.exception("on_claim callback failed; processing continues")

    def _event(
        self,
        kind: ProcessorEventKind,
        row: Schedule | _Attempt,
        *,
        attempts: int,
        video_id: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        at: datetime | None = None,
    ) -> ProcessorEvent:
        schedule_id = row.schedule_id if isinstance(row, _Attempt) else row.id
        return ProcessorEvent(
            kind=kind,
            schedule_id=schedule_id,
            channel_id=row.channel_id,
            worker_id=self.worker_id,
            at=at or self._now(),
            attempts=attempts,
            video_id=video_id,
            error=error,
            next_attempt_at=next_attempt_at,
        )

    def _execute_count(
        self, operation: str, stmt: Any, entry: timeline.TimelineEntry | None = None
    ) -> int:
        """Run one UPDATE in its own short transaction; return the number of rows matched.
        ``entry`` is appended to the timeline in the same transaction when a row matched."""

        def txn(session: Session) -> int:
            matched = _rowcount(session.connection().execute(stmt))
            if matched and entry is not None:
                timeline.append(session.connection(), entry)
            return matched

        return self._db.run(operation, txn)

    def _guarded(self, attempt: _Attempt, work: Callable[[], _Outcome]) -> _Outcome:
        """Run ``work`` for ``attempt``; a lost lease or a failure to record becomes an outcome
        (an unrecorded attempt's lease expires and the next run resumes it). Never raises."""
        try:
            return work()
        except _LeaseLost:
            return self._lost(attempt)
        except SchedulerError as exc:
            logger.error(
                "could not record the outcome of schedule %d: %s; its lease will expire and the "
                "next run resumes it",
                attempt.schedule_id,
                exc,
            )
            return _Outcome(_Kind.UNRECORDED, error=str(exc))
        except Exception:
            logger.exception("unexpected error processing schedule %d", attempt.schedule_id)
            return _Outcome(_Kind.UNRECORDED)

    def _lost(self, attempt: _Attempt) -> _Outcome:
        logger.warning(
            "schedule %d: lease %s was taken over (this worker stalled past its lease); "
            "writing nothing",
            attempt.schedule_id,
            attempt.token,
        )
        return _Outcome(_Kind.LOST)

    def _record_deadline(self) -> float:
        """``time.monotonic()`` value until which one outcome's recording is retried: at most
        a third of the lease (so the lease outlives it) and :data:`_MAX_RECORD_BUDGET`."""
        return time.monotonic() + self._record_budget.total_seconds()

    def _retry(
        self, what: str, fn: Callable[[], _T], deadline: float, *, idempotent: bool = False
    ) -> _T:
        return retry_until(
            fn,
            deadline=deadline,
            base=_RECORD_RETRY_BASE,
            cap=_RECORD_RETRY_CAP,
            rng=self._rng,
            what=what,
            idempotent=idempotent,
            sleep=self._sleep,
        )

    def _pause_channel(self, channel: str, reason: str, at: datetime) -> bool | None:
        """Pause ``channel``: its refresh token was refused (``invalid_grant``). Its own short
        transaction (the channel row is first in the lock order), retried like an outcome.
        True when this call paused it, False when it was paused already, None when the pause
        could not be written (logged; the caller falls back to stopping the run)."""
        try:
            return self._retry(
                "pause channel",
                lambda: self._db.run_core(
                    "pause channel",
                    lambda c: channels_db.pause(c, self._db.dialect, channel, at=at, reason=reason),
                ),
                self._record_deadline(),
                idempotent=True,
            )
        except SchedulerError as err:
            logger.error("could not pause channel %s: %s", channel, err)
            return None

    def _read_rows(self, ids: Iterable[int]) -> dict[int, Schedule]:
        return self._db.run("read schedules", lambda s: read_schedules(s, ids), read_only=True)

    def _durable(
        self,
        operation: str,
        schedule_id: int,
        write: Callable[[], _T | None],
        *,
        pending: Callable[[Schedule], bool],
        settled: Callable[[Schedule], bool],
        deadline: float | None = None,
    ) -> _T | Schedule | None:
        """Record one outcome: ``write`` (fenced; None when the fence failed), retried with
        backoff on storage errors until ``deadline`` (default: :meth:`_record_deadline`).

        After a write whose answer was lost (:class:`OutcomeUnknownError`) the row is read back:
        still ``pending`` (ours, unchanged) means the write did not commit, so it is written
        again; ``settled`` (in the state this write produces, which only this attempt can
        produce) means it did commit, and the row is returned; anything else means the row is
        no longer ours (None).
        """
        if deadline is None:
            deadline = self._record_deadline()
        lost_answer: OutcomeUnknownError | None = None
        while True:
            try:
                result = self._retry(operation, write, deadline)
            except OutcomeUnknownError as exc:
                logger.warning(
                    "%s of schedule %d: %s; reading the row back", operation, schedule_id, exc
                )
                lost_answer = exc
            else:
                if result is not None or lost_answer is None:
                    return result
            rows = self._retry(
                "read schedule", lambda: self._read_rows([schedule_id]), deadline, idempotent=True
            )
            row = rows.get(schedule_id)
            if row is None or not pending(row):
                return row if row is not None and settled(row) else None
            if lost_answer is not None and time.monotonic() >= deadline:
                raise lost_answer
            # Still ours and unchanged: the write did not commit. Write it again.

    @staticmethod
    def _wrote(
        status: str, attempts: int, last_error: str | None, video_id: str | None = None
    ) -> Callable[[Schedule], bool]:
        """Is a row in the state one outcome write of an attempt leaves it in? Every takeover
        of a lease counts an attempt and writes its own ``last_error``, so ``attempts`` and
        ``last_error`` tell this attempt's write from anyone else's."""
        error = _short(last_error) if last_error else None
        return lambda row: (
            row.upload_status == status
            and row.attempts == attempts
            and row.last_error == error
            and (video_id is None or row.youtube_video_id == video_id)
        )

    @staticmethod
    def _owned_by(attempt: _Attempt) -> Callable[[Schedule], bool]:
        return lambda row: row.lease_owner == attempt.token and row.upload_status == _UPLOADING

    def _with_counter_locks(
        self,
        operation: str,
        schedule_id: int,
        *,
        allowed: Callable[[Schedule], bool],
        new_keys: Callable[[Schedule], Iterable[tuple[date, str]]],
        apply: ledger.Apply,
    ) -> Schedule | None:
        """:func:`langflix_scheduler.ledger.change_schedule` with this processor's database."""
        return ledger.change_schedule(
            self._db,
            operation,
            schedule_id,
            limits=self._policy.buckets,
            allowed=allowed,
            new_keys=new_keys,
            apply=apply,
            tries=_MAX_RECORD_TRIES,
        )
